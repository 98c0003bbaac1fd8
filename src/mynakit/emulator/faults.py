"""Fault injection for the virtual card: the failures a real reader and card produce in the field.

Faults compose; configure any subset on ``VirtualCard(..., faults=Faults(...))``:

* ``remove_after`` — the card leaves the reader after N APDUs. ``execute`` then raises
  ``VirtualCardRemovedError``, a ``mynakit.transport.base.CardRemovedError``: the in-process
  connection passes it to the caller as is, and a vpcd bridge catches it and closes its socket.
  With ``remove_mid_command`` the (N+1)th command still runs (a PIN counter it changes is saved)
  but its answer is lost, as when a card is pulled while it works.
* ``latency`` — a slow card: transfer time per byte over a contact or contactless link, plus the
  time of an RSA signature, applied with ``time.sleep``.
* ``corruption`` — responses with a flipped byte or cut short, with a given probability, from a
  seeded random generator so a failing run can be replayed.
* ``t0`` — a T=0 card: case-4 answers come as ``61xx`` and must be fetched with GET RESPONSE, and
  a case-2 command with the wrong Le gets ``6Cxx`` (ISO/IEC 7816-3 §12.2, 7816-4 §5.3.4).
* ``blocked`` — PIN keys whose retry counter is set to 0 when the card is built.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mynakit.errors import UsageError
from mynakit.transport.base import CardRemovedError

CONTACT_BAUD_RANGE = (9600, 115_200)
CONTACTLESS_BIT_RATE_RANGE = (106_000, 424_000)
SIGNATURE_SECONDS_RANGE = (0.3, 1.0)
# An asynchronous character is 10 etu on the contact interface (start bit, 8 data bits, parity;
# ISO/IEC 7816-3 §7.1), ignoring guard time.
_BITS_PER_CONTACT_BYTE = 10
# ISO/IEC 14443-4 frames add prologue and CRC bytes and a frame delay around each block.
_CONTACTLESS_FRAME_OVERHEAD_BYTES = 4
_CONTACTLESS_FRAME_DELAY_SECONDS = 0.0005


class VirtualCardRemovedError(CardRemovedError):
    """The virtual card was taken out of the reader (fault injection)."""


@dataclass(frozen=True)
class LatencyModel:
    """How long a real card would take: link transfer time plus RSA signature time."""

    interface: str  # "contact" or "contactless"
    bit_rate: int  # baud on contact, bit/s on contactless
    signature_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.interface == "contact":
            low, high = CONTACT_BAUD_RANGE
        elif self.interface == "contactless":
            low, high = CONTACTLESS_BIT_RATE_RANGE
        else:
            raise UsageError(f"interface is 'contact' or 'contactless', not {self.interface!r}")
        if not low <= self.bit_rate <= high:
            raise UsageError(f"a {self.interface} bit rate is {low}-{high}, not {self.bit_rate}")
        slow, fast = SIGNATURE_SECONDS_RANGE
        if not slow <= self.signature_seconds <= fast:
            raise UsageError(f"an RSA signature takes {slow}-{fast} s on this card")

    @classmethod
    def contact(cls, baud: int = 9600, *, signature_seconds: float = 0.5) -> LatencyModel:
        return cls("contact", baud, signature_seconds)

    @classmethod
    def contactless(
        cls, bit_rate: int = 106_000, *, signature_seconds: float = 0.5
    ) -> LatencyModel:
        return cls("contactless", bit_rate, signature_seconds)

    def delay(self, command_length: int, response_length: int, *, signed: bool) -> float:
        """Seconds one exchange takes on this link."""
        if self.interface == "contact":
            transfer = (command_length + response_length) * _BITS_PER_CONTACT_BYTE / self.bit_rate
        else:
            frame_bytes = command_length + response_length + 2 * _CONTACTLESS_FRAME_OVERHEAD_BYTES
            transfer = frame_bytes * 8 / self.bit_rate + 2 * _CONTACTLESS_FRAME_DELAY_SECONDS
        return transfer + (self.signature_seconds if signed else 0.0)


@dataclass(frozen=True)
class Corruption:
    """Damage responses with ``probability``: flip one byte, or cut the response short."""

    probability: float
    seed: int = 0
    modes: tuple[str, ...] = ("flip", "truncate")

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise UsageError(f"a probability is 0-1, not {self.probability}")
        unknown = set(self.modes) - {"flip", "truncate"}
        if not self.modes or unknown:
            raise UsageError("corruption modes are 'flip' and 'truncate'")

    def apply(self, response: bytes, generator: random.Random) -> bytes:
        if not response or generator.random() >= self.probability:
            return response
        mode = generator.choice(self.modes)
        if mode == "flip":
            position = generator.randrange(len(response))
            damaged = bytearray(response)
            damaged[position] ^= generator.randrange(1, 256)
            return bytes(damaged)
        return response[: generator.randrange(len(response))]


@dataclass(frozen=True)
class Faults:
    remove_after: int | None = None
    remove_mid_command: bool = False
    latency: LatencyModel | None = None
    corruption: Corruption | None = None
    t0: bool = False
    blocked: tuple[tuple[str, str], ...] = field(default=())  # (AP name, key name)

    def __post_init__(self) -> None:
        if self.remove_after is not None and self.remove_after < 0:
            raise UsageError("remove_after counts APDUs and cannot be negative")
        if self.remove_mid_command and self.remove_after is None:
            raise UsageError("remove_mid_command needs remove_after")

    def corruption_random(self) -> random.Random:
        # Seeded so a failing run replays exactly; nothing secret depends on it.
        return random.Random(self.corruption.seed if self.corruption else 0)  # noqa: S311
