"""The issuer link: what a service asks the certificate issuer (J-LIS, or the sandbox issuer)
about serials, through an interface so that a real operator's link can be plugged in.

* ``previous_serial``: the serial a renewed certificate replaced (新旧シリアル番号の紐付け,
  docs/services.md §B.4), answered only for holders who consented;
* ``status``: revocation status and reason of a serial (docs/services.md §B.5).

:class:`HttpIssuerLink` (``issuer_link.http``) speaks the sandbox issuer's HTTP routes. Services
never import the emulator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from mynakit.services.errors import ForbiddenError, UpstreamError

# A holder renews every five years (docs/services.md §B.4); a chain longer than this is a loop
# or a broken issuer, not a person.
MAX_RENEWAL_CHAIN = 32


class SerialLinkConsentError(ForbiddenError):
    """The holder did not consent to linking this serial to its predecessor."""

    code = "serial_link_refused"


class IssuerLinkError(UpstreamError):
    """The issuer could not be asked (down, bad answer)."""


@dataclass(frozen=True)
class SerialStatus:
    serial: int
    state: str  # "good", "revoked" or "unknown"
    reason: str | None = None  # RFC 5280 §5.3.1 reason name, e.g. "keyCompromise"
    revoked_at: dt.datetime | None = None


class IssuerLink(Protocol):
    def previous_serial(self, serial: int) -> int | None:
        """The serial ``serial`` replaced, None for a first issuance; raises
        :class:`SerialLinkConsentError` without the holder's consent."""
        ...

    def status(self, serial: int) -> SerialStatus: ...


def predecessors(link: IssuerLink, serial: int) -> list[int]:
    """Every earlier serial of ``serial``'s holder, newest first (empty for a first issue)."""
    chain: list[int] = []
    current = serial
    while True:
        previous = link.previous_serial(current)
        if previous is None:
            return chain
        if previous == serial or previous in chain or len(chain) >= MAX_RENEWAL_CHAIN:
            raise IssuerLinkError(f"the issuer's serial links from {serial} do not end")
        chain.append(previous)
        current = previous
