"""One certificate the sandbox issuer issued: a typed record of ``state.json``.

The JSON keys are those of the ``certificates`` object of the issuer's ``state.json`` (format 1),
so issuers made by earlier versions open unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from mynakit.errors import DataError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import RevocationState, RevocationStatus

_END_ENTITY_KINDS = {CertificateKind.AUTH.value, CertificateKind.SIGN.value}


@dataclass(frozen=True)
class IssuedCertificate:
    """Serial, kind, dates, revocation and the serial link (新旧シリアル番号の紐付け,
    docs/services.md §B.4) of one issued certificate."""

    serial: int
    kind: CertificateKind
    issued_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None
    renewal: bool = False
    serial_link_consent: bool = False
    # Kept only with the holder's consent; without it the old serial is not written down.
    previous_serial: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revocation_status(self) -> RevocationStatus:
        """What the issuer's register says about this certificate."""
        if self.revoked_at is None:
            return RevocationStatus(state=RevocationState.GOOD, source="issuer")
        return RevocationStatus(
            state=RevocationState.REVOKED,
            source="issuer",
            reason=self.revocation_reason,
            revocation_time=self.revoked_at,
        )

    def with_revocation(self, at: dt.datetime, reason: x509.ReasonFlags) -> IssuedCertificate:
        return replace(self, revoked_at=at, revocation_reason=reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "issued_at": _encode_time(self.issued_at),
            "not_after": _encode_time(self.not_after),
            "revoked_at": None if self.revoked_at is None else _encode_time(self.revoked_at),
            "revocation_reason": None
            if self.revocation_reason is None
            else self.revocation_reason.value,
            "renewal": self.renewal,
            "serial_link_consent": self.serial_link_consent,
            "previous_serial": self.previous_serial,
        }

    @classmethod
    def from_json(cls, serial: str, data: Any, where: str) -> IssuedCertificate:
        """Parse one record; a problem is a ``DataError`` naming ``where`` and the serial."""
        problem = f"{where}: the record of certificate {serial} is malformed"
        if not isinstance(data, dict) or not serial.isascii() or not serial.isdigit():
            raise DataError(problem)
        try:
            if data["kind"] not in _END_ENTITY_KINDS:
                raise ValueError(data["kind"])
            revoked_at = data.get("revoked_at")
            reason = data.get("revocation_reason")
            previous = data.get("previous_serial")
            return cls(
                serial=int(serial),
                kind=CertificateKind(data["kind"]),
                issued_at=_decode_time(data["issued_at"]),
                not_after=_decode_time(data["not_after"]),
                revoked_at=None if revoked_at is None else _decode_time(revoked_at),
                revocation_reason=None if reason is None else x509.ReasonFlags(reason),
                renewal=bool(data.get("renewal", False)),
                serial_link_consent=bool(data.get("serial_link_consent", False)),
                previous_serial=None if previous is None else int(previous),
            )
        except (KeyError, ValueError, TypeError):
            raise DataError(problem) from None


def _encode_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _decode_time(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise TypeError("a time is ISO 8601 text")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time needs its offset")
    return moment
