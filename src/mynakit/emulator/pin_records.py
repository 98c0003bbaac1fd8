"""PIN reference data and retry counters, and the file that keeps them: read, changed and
written back under a lock held across one command.

A real card executes one command at a time, so two terminals can never both spend the last
try. A virtual card's counters live in ``pins.json`` and any number of processes may open the
card (``--reader virtual:NAME``, ``emulator serve``, parallel test runs). :class:`PinFile` gives
them what the card gives: an exclusive ``fcntl.flock`` on the card's lock file for the whole
command, the counters re-read under it, and the try spent and written to disk before the
comparison (docs/card.md §7.5, §11.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mynakit.atomic_files import PRIVATE_FILE, FileLock, parse_json_object, write_atomic
from mynakit.errors import DataError

KeyRef = tuple[str, int]  # (application name, key or file id)

# VERIFY reports the tries left in the low nibble of 63Cx (docs/card.md §7.5, ISO/IEC 7816-4
# §5.6): a counter above 15 could not be told to a terminal.
MAX_TRIES = 15


@dataclass
class PinRecord:
    """A PIN key's reference data and retry counter."""

    value: bytes
    tries_left: int
    max_tries: int

    def __repr__(self) -> str:
        return f"PinRecord(<redacted>, tries_left={self.tries_left}, max_tries={self.max_tries})"


def encode_pins(pins: dict[KeyRef, PinRecord]) -> bytes:
    """``pins.json``: ``{"jpki/0018": {"value": hex, "tries_left": n, "max_tries": n}, ...}``."""
    document = {
        f"{application}/{key_id:04X}": {
            "value": record.value.hex(),
            "tries_left": record.tries_left,
            "max_tries": record.max_tries,
        }
        for (application, key_id), record in sorted(pins.items())
    }
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def decode_pins(data: bytes, where: Path) -> dict[KeyRef, PinRecord]:
    """Parse and check ``pins.json``; a problem is one ``DataError`` naming the file (never a
    reference value: it is a PIN)."""
    document = parse_json_object(data, where)
    pins: dict[KeyRef, PinRecord] = {}
    for reference, record in document.items():
        pins[_key_ref(reference, where)] = _pin_record(reference, record, where)
    return pins


def _key_ref(reference: str, where: Path) -> KeyRef:
    application, _, key_id = reference.partition("/")
    try:
        number = int(key_id, 16)
    except ValueError:
        number = -1
    if not application or not 0 <= number <= 0xFFFF:
        raise DataError(f"{where}: {reference!r} is not an AP/key-id reference")
    return application, number


def _pin_record(reference: str, record: Any, where: Path) -> PinRecord:
    if not isinstance(record, dict):
        raise DataError(f"{where}: {reference} is not a JSON object")
    tries_left, max_tries = record.get("tries_left"), record.get("max_tries")
    for field_name, number in (("max_tries", max_tries), ("tries_left", tries_left)):
        if not isinstance(number, int) or isinstance(number, bool):
            raise DataError(f"{where}: {reference} {field_name} is not a whole number")
    assert isinstance(tries_left, int) and isinstance(max_tries, int)
    if not 0 <= max_tries <= MAX_TRIES:
        raise DataError(f"{where}: {reference} max_tries {max_tries} is outside 0-{MAX_TRIES}")
    if not 0 <= tries_left <= max_tries:
        raise DataError(f"{where}: {reference} tries_left {tries_left} is outside 0-{max_tries}")
    value = record.get("value")
    try:
        reference_data = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        reference_data = None
    if reference_data is None:
        raise DataError(f"{where}: {reference} value is not hexadecimal")
    return PinRecord(reference_data, tries_left, max_tries)


class PinFile:
    """``pins.json`` of one card with its lock file (both in the card's folder)."""

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self.lock = FileLock(lock_path, "the card's lock file")

    def read(self) -> dict[KeyRef, PinRecord]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"the virtual card is incomplete: {self.path} is missing") from None
        except OSError as error:
            raise DataError(f"cannot read {self.path}: {error.strerror}") from None
        return decode_pins(data, self.path)

    def write(self, pins: dict[KeyRef, PinRecord]) -> None:
        write_atomic(self.path, encode_pins(pins), mode=PRIVATE_FILE)

    def refresh(self, pins: dict[KeyRef, PinRecord]) -> None:
        """Bring ``pins`` up to date with the file (call it with :attr:`lock` held). It is read
        every time: a file signature (inode, mtime, size) can repeat after a replace, and a
        missed update would be a lost try. Records are updated in place."""
        for reference, fresh in self.read().items():
            record = pins.get(reference)
            if record is None:
                pins[reference] = fresh
            else:
                record.value, record.tries_left = fresh.value, fresh.tries_left
                record.max_tries = fresh.max_tries
