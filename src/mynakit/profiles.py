"""Card profiles: the data in ``card_profiles/*.toml`` that both the client sessions and the
virtual card read (docs/architecture.md §3), so the two can never disagree on an AID, an EF, an
access rule or a PIN policy.
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from mynakit.errors import DataError, UsageError

DEFAULT_PROFILE = "mynumber-card"
# The bundled profiles are files inside the package, found by path: importlib.resources (and
# the pathlib, tempfile and zip support it imports) would double the start-up cost of reading one.
BUNDLED_PROFILES = os.path.join(os.path.dirname(__file__), "card_profiles")


def is_ascii_digits(value: str) -> bool:
    """True for a non-empty string of the ASCII digits 0-9 and nothing else."""
    return value.isascii() and value.isdigit()


@dataclass(frozen=True)
class FileProfile:
    file_id: int
    name: str
    structure: str  # "binary" or "record"
    read_keys: tuple[int, ...] = ()  # any one of these opens it; empty = free
    personal: bool = False  # content is personal data: the APDU trace redacts it
    size: int | None = None


@dataclass(frozen=True)
class KeyProfile:
    key_id: int
    name: str
    kind: str  # "pin" or "private_key"
    label: str = ""
    charset: str = "digits"  # "digits" or "upper_alphanumeric"
    min_length: int = 0
    max_length: int = 0
    tries: int = 0
    unlocked_by: int | None = None  # private keys: the PIN that must be verified first
    change_instruction: int = 0x0024  # CLA INS of the change command: 0024 ISO, 8032 JICSAP

    def check_format(self, value: str) -> None:
        """Raise ``UsageError`` if ``value`` can never be right for this key (no try spent)."""
        what = self.label or self.name
        if not self.min_length <= len(value) <= self.max_length:
            span = (
                str(self.min_length)
                if self.min_length == self.max_length
                else f"{self.min_length}-{self.max_length}"
            )
            raise UsageError(f"the {what} has {span} characters")
        # ASCII digits only: str.isdigit() also accepts full-width (１２３４) and superscript
        # (¹²³⁴) digits, which the card never registers and which cannot be sent as ASCII.
        if self.charset == "digits" and not is_ascii_digits(value):
            raise UsageError(
                f"the {what} is ASCII digits 0-9 only (full-width or other Unicode digits are "
                "not accepted)"
            )
        if self.charset == "upper_alphanumeric" and not (
            value.isascii() and value.isalnum() and value == value.upper()
        ):
            raise UsageError(f"the {what} is upper-case letters A-Z and digits only")


@dataclass(frozen=True)
class ApplicationProfile:
    name: str
    label: str
    aid: bytes
    files: dict[int, FileProfile] = field(default_factory=dict)
    keys: dict[int, KeyProfile] = field(default_factory=dict)

    def file(self, name: str) -> FileProfile:
        for candidate in self.files.values():
            if candidate.name == name:
                return candidate
        raise UsageError(f"the {self.name} AP has no file named {name!r}")

    def key(self, name: str) -> KeyProfile:
        for candidate in self.keys.values():
            if candidate.name == name:
                return candidate
        raise UsageError(f"the {self.name} AP has no key named {name!r}")


@dataclass(frozen=True)
class CardProfile:
    kind: str
    name: str
    token_label: str
    atr: bytes
    extended_length: bool
    known_atrs: tuple[bytes, ...]
    choices: dict[str, Any]
    applications: dict[str, ApplicationProfile]

    def application(self, name: str) -> ApplicationProfile:
        try:
            return self.applications[name]
        except KeyError:
            raise UsageError(f"a {self.name} has no {name} AP") from None

    def application_by_aid(self, aid: bytes) -> ApplicationProfile | None:
        for application in self.applications.values():
            if application.aid == aid:
                return application
        return None


def profile_names() -> list[str]:
    return sorted(
        name.removesuffix(".toml")
        for name in os.listdir(BUNDLED_PROFILES)
        if name.endswith(".toml")
    )


@functools.cache
def load_profile(name_or_path: str = DEFAULT_PROFILE) -> CardProfile:
    """Load a bundled profile by name, or any profile file by path."""
    return _build(_read_with_base(name_or_path))


def _read(name_or_path: str) -> dict[str, Any]:
    try:
        path = (
            name_or_path
            if name_or_path.endswith(".toml")
            else os.path.join(BUNDLED_PROFILES, f"{name_or_path}.toml")
        )
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise UsageError(
            f"no card profile {name_or_path!r} (bundled: {', '.join(profile_names())})"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"card profile {name_or_path!r}: {error}") from error


def _read_with_base(name_or_path: str) -> dict[str, Any]:
    document = _read(name_or_path)
    base_name = document.get("base")
    if base_name is None:
        return document
    merged = _read_with_base(base_name)
    merged["card"] = {**merged["card"], **document.get("card", {})}
    merged["choices"] = {**merged.get("choices", {}), **document.get("choices", {})}
    keep = document.get("keep_applications")
    if keep is not None:
        merged["applications"] = [a for a in merged["applications"] if a["name"] in keep]
    merged["file_overrides"] = document.get("file_overrides", [])
    return merged


def _hex_id(value: str, where: str) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise DataError(f"card profile: {where} {value!r} is not hexadecimal") from None


def _build(document: dict[str, Any]) -> CardProfile:
    try:
        card = document["card"]
        overrides = {
            (item["application"], _hex_id(item["id"], "file id")): item
            for item in document.get("file_overrides", [])
        }
        applications: dict[str, ApplicationProfile] = {}
        for raw in document["applications"]:
            files: dict[int, FileProfile] = {}
            for raw_file in raw.get("files", []):
                file_id = _hex_id(raw_file["id"], "file id")
                raw_file = {**raw_file, **overrides.get((raw["name"], file_id), {})}
                files[file_id] = FileProfile(
                    file_id=file_id,
                    name=raw_file["name"],
                    structure=raw_file.get("structure", "binary"),
                    read_keys=tuple(_hex_id(k, "key id") for k in raw_file.get("read_keys", [])),
                    personal=bool(raw_file.get("personal", False)),
                    size=raw_file.get("size"),
                )
            keys: dict[int, KeyProfile] = {}
            for raw_key in raw.get("keys", []):
                key_id = _hex_id(raw_key["id"], "key id")
                unlocked_by = raw_key.get("unlocked_by")
                keys[key_id] = KeyProfile(
                    key_id=key_id,
                    name=raw_key["name"],
                    kind=raw_key["kind"],
                    label=raw_key.get("label", ""),
                    charset=raw_key.get("charset", "digits"),
                    min_length=raw_key.get("min_length", 0),
                    max_length=raw_key.get("max_length", 0),
                    tries=raw_key.get("tries", 0),
                    unlocked_by=None if unlocked_by is None else _hex_id(unlocked_by, "key id"),
                    change_instruction=_hex_id(raw_key.get("change_instruction", "0024"), "INS"),
                )
            applications[raw["name"]] = ApplicationProfile(
                name=raw["name"],
                label=raw.get("label", raw["name"]),
                aid=bytes.fromhex(raw["aid"]),
                files=files,
                keys=keys,
            )
        return CardProfile(
            kind=card["kind"],
            name=card["name"],
            token_label=card["token_label"],
            atr=bytes.fromhex(card["atr"]),
            extended_length=bool(card.get("extended_length", False)),
            known_atrs=tuple(bytes.fromhex(atr) for atr in card.get("known_atrs", [])),
            choices=dict(document.get("choices", {})),
            applications=applications,
        )
    except KeyError as error:
        raise DataError(f"card profile is missing the field {error.args[0]!r}") from error


def with_choices(profile: CardProfile, **choices: Any) -> CardProfile:
    """A copy of ``profile`` with some UNCONFIRMED-fact choices changed (for tests and users)."""
    return replace(profile, choices={**profile.choices, **choices})
