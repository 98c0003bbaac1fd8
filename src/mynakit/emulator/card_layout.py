"""Where a virtual card lives on disk, and the code that writes and reads it with the SAME
layout object, so save and load cannot drift apart.

One folder per card under a base folder (default ``$MYNAKIT_HOME/cards``)::

    card.json          name, profile, creation time, certificate serials (written last: a
                       folder without it is an unfinished card)
    persona.json       the synthetic holder, with the PINs it was issued with
    pins.json          every PIN key's reference data and retry counter
    lock               held (flock) by whoever runs a command on the card
    keys/*.pem         private keys, PKCS#8 PEM, unencrypted (sandbox only)
    card-ca.pem        public key of the card CA that signs the CV certificates (for verifiers)
    files/<ap>/<EF>.bin, files/<ap>/<EF>.<n>.rec     file contents

Everything but ``card-ca.pem`` is personal data or a secret: files 0600, folders 0700
(``mynakit.atomic_files``). Loading checks every file and names the broken one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from mynakit.atomic_files import (
    PRIVATE_FILE,
    PRIVATE_FOLDER,
    PUBLIC_FILE,
    check_writable,
    ensure_folder,
    parse_json_object,
    write_atomic,
)
from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.card_state import CardState, stored_card_profile
from mynakit.emulator.personas import Persona
from mynakit.emulator.pin_records import KeyRef, PinFile, PinRecord, encode_pins
from mynakit.errors import DataError, MynakitError, UsageError
from mynakit.profiles import CardProfile

STATE_FORMAT = 1
CARD_FILE = "card.json"
PERSONA_FILE = "persona.json"
PINS_FILE = "pins.json"
LOCK_FILE = "lock"
CERTIFICATE_KINDS = ("auth", "sign")
_EXTRA_KEYS = ("card-ca", "municipality")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_card_name(name: str) -> None:
    """Raise ``UsageError`` unless ``name`` can name a card folder."""
    if not _NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"card name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )


@dataclass(frozen=True)
class CardLayout:
    """The paths of one card's folder."""

    directory: Path

    @classmethod
    def of(cls, base_dir: str | os.PathLike[str], name: str) -> CardLayout:
        check_card_name(name)
        return cls(Path(base_dir) / name)

    @property
    def card_file(self) -> Path:
        return self.directory / CARD_FILE

    @property
    def persona_file(self) -> Path:
        return self.directory / PERSONA_FILE

    @property
    def pins_file(self) -> Path:
        return self.directory / PINS_FILE

    @property
    def lock_file(self) -> Path:
        return self.directory / LOCK_FILE

    @property
    def keys_folder(self) -> Path:
        return self.directory / "keys"

    @property
    def card_ca_public_file(self) -> Path:
        return self.directory / "card-ca.pem"

    def private_key_file(self, application: str, key_id: int) -> Path:
        return self.keys_folder / f"{application}-{key_id:04X}.pem"

    def extra_key_file(self, label: str) -> Path:
        return self.keys_folder / f"{label}.pem"

    def files_folder(self, application: str) -> Path:
        return self.directory / "files" / application

    def binary_file(self, application: str, file_id: int) -> Path:
        return self.files_folder(application) / f"{file_id:04X}.bin"

    def record_file(self, application: str, file_id: int, number: int) -> Path:
        return self.files_folder(application) / f"{file_id:04X}.{number}.rec"

    def exists(self) -> bool:
        return self.card_file.is_file()

    def pin_file(self) -> PinFile:
        return PinFile(self.pins_file, self.lock_file)


@dataclass(frozen=True)
class CardRecord:
    """``card.json``: what a card is, without loading it."""

    name: str
    profile: str
    profile_source: str
    created: str
    serials: dict[str, int] = field(default_factory=dict)
    issuer_directory: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "name": self.name,
            "profile": self.profile,
            "profile_source": self.profile_source,
            "created": self.created,
            "serials": {kind: str(serial) for kind, serial in self.serials.items()},
            "issuer_directory": self.issuer_directory,
        }


def read_card_record(layout: CardLayout) -> CardRecord:
    """Read and check ``card.json``; a problem is one ``DataError`` naming the file."""
    path = layout.card_file
    card = _read_json(path)
    if card.get("format") != STATE_FORMAT:
        raise DataError(f"{path} has an unknown format {card.get('format')!r}")
    for key in ("name", "profile"):
        if not isinstance(card.get(key), str) or not card[key]:
            raise DataError(f"{path}: {key} is missing or not text")
    for key in ("profile_source", "created"):
        if not isinstance(card.get(key, ""), str):
            raise DataError(f"{path}: {key} is not text")
    issuer_directory = card.get("issuer_directory")
    if issuer_directory is not None and not isinstance(issuer_directory, str):
        raise DataError(f"{path}: issuer_directory is not text")
    serials = card.get("serials", {})
    if not isinstance(serials, dict):
        raise DataError(f"{path}: serials is not a JSON object")
    checked: dict[str, int] = {}
    for kind, serial in serials.items():
        if kind not in CERTIFICATE_KINDS:
            raise DataError(f"{path}: {kind!r} is not a certificate kind (auth or sign)")
        # Serials are decimal text (JSON numbers lose precision above 2**53 in other readers).
        if not isinstance(serial, str) or not serial.isascii() or not serial.isdigit():
            raise DataError(f"{path}: the {kind} serial {serial!r} is not a decimal number")
        checked[kind] = int(serial)
    return CardRecord(
        name=card["name"],
        profile=card["profile"],
        profile_source=card.get("profile_source", ""),
        created=card.get("created", ""),
        serials=checked,
        issuer_directory=issuer_directory,
    )


def save_card_state(state: CardState, *, issuer_directory: Path | None = None) -> None:
    """Write the whole state into ``state.directory`` (``card.json`` last)."""
    if state.directory is None:
        raise UsageError("this card state has no directory to save into")
    layout = CardLayout(state.directory)
    ensure_folder(layout.directory, mode=PRIVATE_FOLDER)
    ensure_folder(layout.keys_folder, mode=PRIVATE_FOLDER)
    write_atomic(layout.persona_file, _encode_json(state.persona.to_json()), mode=PRIVATE_FILE)
    write_atomic(layout.pins_file, encode_pins(state.pins), mode=PRIVATE_FILE)
    layout.lock_file.touch(mode=PRIVATE_FILE, exist_ok=True)
    for (application, key_id), key in state.card_keys.items():
        write_atomic(
            layout.private_key_file(application, key_id), key.to_pkcs8_pem(), mode=PRIVATE_FILE
        )
    for label, extra_key in zip(_EXTRA_KEYS, (state.card_ca, state.municipality_key), strict=True):
        if extra_key is not None:
            write_atomic(layout.extra_key_file(label), extra_key.to_pkcs8_pem(), mode=PRIVATE_FILE)
    if state.card_ca is not None:
        public = state.card_ca.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_atomic(layout.card_ca_public_file, public, mode=PUBLIC_FILE)
    for (application, file_id), content in state.files.items():
        ensure_folder(layout.files_folder(application), mode=PRIVATE_FOLDER)
        write_atomic(layout.binary_file(application, file_id), content, mode=PRIVATE_FILE)
    for (application, file_id), records in state.records.items():
        ensure_folder(layout.files_folder(application), mode=PRIVATE_FOLDER)
        for number, record in enumerate(records, start=1):
            write_atomic(
                layout.record_file(application, file_id, number), record, mode=PRIVATE_FILE
            )
    previous = read_card_record(layout) if layout.exists() else None
    card = CardRecord(
        name=state.name,
        profile=state.profile_name,
        profile_source=state.profile_source,
        created=previous.created
        if previous
        else dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        serials=dict(state.serials),
        issuer_directory=str(issuer_directory)
        if issuer_directory
        else (previous.issuer_directory if previous else None),
    )
    write_atomic(layout.card_file, _encode_json(card.to_json()), mode=PRIVATE_FILE)


def load_card_state(base_dir: str | os.PathLike[str], name: str) -> CardState:
    """Read card ``name`` and check every file; its PIN records stay tied to ``pins.json``."""
    layout = CardLayout.of(base_dir, name)
    if not layout.exists():
        raise UsageError(f"no virtual card named {name!r} in {layout.directory.parent}")
    card = read_card_record(layout)
    try:
        profile = stored_card_profile(card.profile, card.profile_source)
    except MynakitError as error:
        raise DataError(f"{layout.card_file}: {error}") from None
    # A card whose counters cannot be saved must not take a VERIFY at all (docs/card.md §7.5).
    check_writable(layout.directory, "card folder")
    persona = _read_persona(layout.persona_file)
    card_keys: dict[KeyRef, CardKey] = {}
    for application in profile.applications.values():
        for key in application.keys.values():
            if key.kind == "private_key":
                path = layout.private_key_file(application.name, key.key_id)
                card_keys[(application.name, key.key_id)] = _read_key(path)
    extra: dict[str, CardKey | None] = {}
    for label in _EXTRA_KEYS:
        path = layout.extra_key_file(label)
        extra[label] = _read_key(path) if path.exists() else None
    files: dict[KeyRef, bytes] = {}
    records: dict[KeyRef, tuple[bytes, ...]] = {}
    for application in profile.applications.values():
        for file in application.files.values():
            reference = (application.name, file.file_id)
            if file.structure == "record":
                collected: list[bytes] = []
                while (
                    path := layout.record_file(application.name, file.file_id, len(collected) + 1)
                ).exists():
                    collected.append(_read_bytes(path))
                records[reference] = tuple(collected)
            else:
                files[reference] = _read_bytes(layout.binary_file(application.name, file.file_id))
    pin_file = layout.pin_file()
    pins = pin_file.read()
    _check_pins_cover_profile(pins, profile, layout.pins_file)
    return CardState(
        name=card.name,
        profile_name=card.profile,
        persona=persona,
        files=files,
        records=records,
        pins=pins,
        card_keys=card_keys,
        card_ca=extra["card-ca"],
        municipality_key=extra["municipality"],
        serials=dict(card.serials),
        directory=layout.directory,
        profile_source=card.profile_source,
        pin_file=pin_file,
    )


def _check_pins_cover_profile(
    pins: dict[KeyRef, PinRecord], profile: CardProfile, where: Path
) -> None:
    for application in profile.applications.values():
        for key in application.keys.values():
            if key.kind == "pin" and (application.name, key.key_id) not in pins:
                raise DataError(f"{where} has no record for {application.name}/{key.key_id:04X}")


def _read_persona(path: Path) -> Persona:
    data = _read_json(path)
    try:
        return Persona.from_json(data)
    except (DataError, TypeError, AttributeError):
        # The type of fault only: a field may be personal data.
        raise DataError(f"{path}: the persona record is malformed") from None


def _read_key(path: Path) -> CardKey:
    try:
        return CardKey.from_pkcs8_pem(_read_bytes(path), str(path))
    except (TypeError, UnsupportedAlgorithm, UsageError):
        raise DataError(f"{path} is not an RSA-2048 private key") from None


def _encode_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _read_json(path: Path) -> dict[str, Any]:
    return parse_json_object(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"the virtual card is incomplete: {path} is missing") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}") from None
