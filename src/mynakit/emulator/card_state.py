"""What a virtual card holds, in memory: persona, files, keys and PIN records.

Files and keys never change while the card runs (the card has no write commands); PIN records
do. A state opened from disk carries its :class:`PinFile`: every command that reads or changes
a PIN record runs inside :meth:`CardState.command`, which holds the card's lock and re-reads the
counters, and every change is written back before the command goes on (docs/card.md §7.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.personas import Persona
from mynakit.emulator.pin_records import KeyRef, PinFile, PinRecord
from mynakit.errors import DataError, UsageError
from mynakit.profiles import CardProfile, load_profile


@dataclass
class CardState:
    """Everything a virtual card holds."""

    name: str
    profile_name: str
    persona: Persona
    files: dict[KeyRef, bytes]
    records: dict[KeyRef, tuple[bytes, ...]]
    pins: dict[KeyRef, PinRecord]
    card_keys: dict[KeyRef, CardKey]
    card_ca: CardKey | None
    municipality_key: CardKey | None
    serials: dict[str, int] = field(default_factory=dict)  # "auth"/"sign" -> certificate serial
    directory: Path | None = None
    profile_source: str = ""  # the profile name or TOML path it was built from, if not the kind
    pin_file: PinFile | None = None  # set for a card opened from disk

    def card_profile(self) -> CardProfile:
        """The card profile this state was built for."""
        return stored_card_profile(self.profile_name, self.profile_source)

    def fork(self) -> CardState:
        """An independent in-memory copy: same keys and files, own PIN counters, not saved."""
        return replace(
            self,
            pins={ref: replace(record) for ref, record in self.pins.items()},
            files=dict(self.files),
            records=dict(self.records),
            card_keys=dict(self.card_keys),
            serials=dict(self.serials),
            directory=None,
            pin_file=None,
        )

    @contextmanager
    def command(self) -> Iterator[None]:
        """Run one PIN command: under the card's lock, with counters fresh from disk."""
        if self.pin_file is None:
            yield
            return
        with self.pin_file.lock.held():
            self.pin_file.refresh(self.pins)
            yield

    def save_pins(self) -> None:
        """Write the PIN records if this state is on disk (called after every change, inside
        :meth:`command`)."""
        if self.pin_file is not None:
            self.pin_file.write(self.pins)

    def block(self, application: str, key_name: str, profile: CardProfile | None = None) -> None:
        """Set a PIN key's counter to 0, as a card whose PIN was exhausted (fault injection)."""
        card_profile = profile if profile is not None else self.card_profile()
        key = card_profile.application(application).key(key_name)
        with self.command():
            record = self.pins.get((application, key.key_id))
            if record is None:
                raise UsageError(f"{application} {key_name} is not a PIN key")
            record.tries_left = 0
            self.save_pins()

    def card_ca_public_key(self) -> rsa.RSAPublicKey | None:
        """The key that verifies the CV certificates of text and visual EF0004."""
        return None if self.card_ca is None else self.card_ca.public_key()


def stored_card_profile(kind: str, source: str) -> CardProfile:
    """The profile of kind ``kind``, from ``source`` (a TOML path) when the card was built
    from a file rather than a bundled profile."""
    profile = load_profile(source or kind)
    if profile.kind != kind:
        raise DataError(f"card profile {source or kind!r} is a {profile.kind!r}, not {kind!r}")
    return profile
