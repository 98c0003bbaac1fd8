"""Card profiles: the data in ``card_profiles/*.toml`` that both the client sessions and the
virtual card read (docs/architecture.md §3), so the two can never disagree on an AID, an EF, an
access rule or a PIN policy.

A process reads a bundled profile from a cache of its parsed TOML, without ``tomllib``
(docs/architecture.md §10); a profile given by path is parsed by every process that loads it.
"""

from __future__ import annotations

import functools
import marshal
import os
import sys

from mynakit.errors import DataError, UsageError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Any, Final

    #: A file a cached profile was made from: absolute path, size, st_mtime_ns.
    SourceFile = tuple[str, int, int]

DEFAULT_PROFILE = "mynumber-card"
# The bundled profiles are files inside the package, found by path: importlib.resources (and
# the pathlib, tempfile and zip support it imports) would double the start-up cost of reading one.
BUNDLED_PROFILES = os.path.join(os.path.dirname(__file__), "card_profiles")
#: The layout of a profile cache file; a new layout gets a new number, hence a new file name.
PROFILE_CACHE_FORMAT = 1


def is_ascii_digits(value: str) -> bool:
    """True for a non-empty string of the ASCII digits 0-9 and nothing else."""
    return value.isascii() and value.isdigit()


class FileProfile(ValueObject):
    __slots__ = ("file_id", "name", "personal", "read_keys", "size", "structure")

    def __init__(
        self,
        file_id: int,
        name: str,
        structure: str,  # "binary" or "record"
        read_keys: tuple[int, ...] = (),  # any one of these opens it; empty = free
        personal: bool = False,  # content is personal data: the APDU trace redacts it
        size: int | None = None,
    ) -> None:
        self.file_id: Final = file_id
        self.name: Final = name
        self.structure: Final = structure
        self.read_keys: Final = read_keys
        self.personal: Final = personal
        self.size: Final = size


class KeyProfile(ValueObject):
    __slots__ = (
        "change_instruction",
        "charset",
        "key_id",
        "kind",
        "label",
        "max_length",
        "min_length",
        "name",
        "tries",
        "unlocked_by",
    )

    def __init__(
        self,
        key_id: int,
        name: str,
        kind: str,  # "pin" or "private_key"
        label: str = "",
        charset: str = "digits",  # "digits" or "upper_alphanumeric"
        min_length: int = 0,
        max_length: int = 0,
        tries: int = 0,
        unlocked_by: int | None = None,  # private keys: the PIN that must be verified first
        change_instruction: int = 0x0024,  # CLA INS of the change command: 0024 ISO, 8032 JICSAP
    ) -> None:
        self.key_id: Final = key_id
        self.name: Final = name
        self.kind: Final = kind
        self.label: Final = label
        self.charset: Final = charset
        self.min_length: Final = min_length
        self.max_length: Final = max_length
        self.tries: Final = tries
        self.unlocked_by: Final = unlocked_by
        self.change_instruction: Final = change_instruction

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


class ApplicationProfile(ValueObject):
    __slots__ = ("aid", "files", "keys", "label", "name")

    def __init__(
        self,
        name: str,
        label: str,
        aid: bytes,
        files: dict[int, FileProfile] | None = None,
        keys: dict[int, KeyProfile] | None = None,
    ) -> None:
        self.name: Final = name
        self.label: Final = label
        self.aid: Final = aid
        self.files: Final = {} if files is None else files
        self.keys: Final = {} if keys is None else keys

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


class CardProfile(ValueObject):
    __slots__ = (
        "applications",
        "atr",
        "choices",
        "extended_length",
        "kind",
        "known_atrs",
        "name",
        "token_label",
    )

    def __init__(
        self,
        kind: str,
        name: str,
        token_label: str,
        atr: bytes,
        extended_length: bool,
        known_atrs: tuple[bytes, ...],
        choices: dict[str, Any],
        applications: dict[str, ApplicationProfile],
    ) -> None:
        self.kind: Final = kind
        self.name: Final = name
        self.token_label: Final = token_label
        self.atr: Final = atr
        self.extended_length: Final = extended_length
        self.known_atrs: Final = known_atrs
        self.choices: Final = choices
        self.applications: Final = applications

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


def load_profile(name_or_path: str = DEFAULT_PROFILE) -> CardProfile:
    """Load a bundled profile by name, or any profile file by path, once per process."""
    # The process-wide cache is keyed by the value, not by how it was passed: functools.cache
    # here would keep load_profile() and load_profile(DEFAULT_PROFILE) apart and parse twice.
    return _load_profile(name_or_path)


@functools.cache
def _load_profile(name_or_path: str) -> CardProfile:
    cache_file = _profile_cache_file(name_or_path)
    if cache_file is None:
        return _build(_read_with_base(name_or_path, []))
    profile_path = os.path.abspath(_profile_path(name_or_path))
    cached = _read_profile_cache(cache_file, profile_path)
    if cached is not None:
        try:
            return _build(cached)
        except (DataError, TypeError, ValueError, AttributeError):
            pass  # a document that does not build (damaged or tampered with): parse the TOML
    sources: list[SourceFile] = []
    document = _read_with_base(name_or_path, sources)
    # Kept only once it built a profile: a broken profile is never cached, and its errors
    # always come from the TOML.
    profile = _build(document)
    _write_profile_cache(cache_file, profile_path, sources, document)
    return profile


def _profile_path(name_or_path: str) -> str:
    if name_or_path.endswith(".toml"):
        return name_or_path
    return os.path.join(BUNDLED_PROFILES, f"{name_or_path}.toml")


def _read(name_or_path: str, sources: list[SourceFile]) -> dict[str, Any]:
    path = _profile_path(name_or_path)
    try:
        with open(path, encoding="utf-8") as file:
            # Taken before the read: a change while reading leaves a newer mtime on disk than
            # the one recorded, so the cache of this read is never trusted.
            status = os.fstat(file.fileno())
            text = file.read()
    except FileNotFoundError:
        raise UsageError(
            f"no card profile {name_or_path!r} (bundled: {', '.join(profile_names())})"
        ) from None
    sources.append((os.path.abspath(path), status.st_size, status.st_mtime_ns))
    # Imported only to parse: a profile read from the cache needs neither tomllib nor the re,
    # datetime and string it imports (docs/architecture.md §10).
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"card profile {name_or_path!r}: {error}") from error


def _read_with_base(name_or_path: str, sources: list[SourceFile]) -> dict[str, Any]:
    """The profile's TOML merged with its ``base`` chain; each file read is added to
    ``sources``."""
    document = _read(name_or_path, sources)
    base_name = document.get("base")
    if base_name is None:
        return document
    merged = _read_with_base(base_name, sources)
    merged["card"] = {**merged["card"], **document.get("card", {})}
    merged["choices"] = {**merged.get("choices", {}), **document.get("choices", {})}
    keep = document.get("keep_applications")
    if keep is not None:
        merged["applications"] = [a for a in merged["applications"] if a["name"] in keep]
    merged["file_overrides"] = document.get("file_overrides", [])
    return merged


def profile_cache_directory() -> str | None:
    """Where the parsed bundled profiles are kept (docs/architecture.md §10):
    ``$MYNAKIT_CACHE_DIR/card_profiles``, else ``$XDG_CACHE_HOME/mynakit/card_profiles``
    (``~/.cache/mynakit/card_profiles``); ``None`` when there is no home directory to use."""
    # os.path rather than mynakit.paths: that module imports pathlib, which the CLI's fast path
    # does not pay for (tests/unit/test_cli_startup.py).
    base = os.environ.get("MYNAKIT_CACHE_DIR")
    if not base:
        cache_home = os.environ.get("XDG_CACHE_HOME", "")
        # The XDG Base Directory Specification: a relative path in the variable is invalid.
        if not os.path.isabs(cache_home):
            home = os.path.expanduser("~")
            if not os.path.isabs(home):  # no $HOME and no passwd entry: "~" stayed as it was
                return None
            cache_home = os.path.join(home, ".cache")
        base = os.path.join(cache_home, "mynakit")
    return os.path.join(base, "card_profiles")


def _profile_cache_file(name_or_path: str) -> str | None:
    """The cache file of a bundled profile, or ``None``: a profile given by path, a name that
    is not a plain file name, an interpreter without a cache tag, no cache directory."""
    # marshal's format changes between Python versions: one file per interpreter.
    interpreter = sys.implementation.cache_tag
    directory = profile_cache_directory()
    if (
        name_or_path.endswith(".toml")
        or os.path.basename(name_or_path) != name_or_path
        or interpreter is None
        or directory is None
    ):
        return None
    return os.path.join(directory, f"{name_or_path}.{interpreter}.v{PROFILE_CACHE_FORMAT}.marshal")


def _read_profile_cache(cache_file: str, profile_path: str) -> dict[str, Any] | None:
    """The document kept in ``cache_file`` for the profile at ``profile_path`` if none of the
    files it was made from changed since, else ``None``."""
    try:
        with open(cache_file, "rb") as file:
            status = os.fstat(file.fileno())
            if status.st_uid != os.geteuid() or status.st_mode & 0o022:
                # Only a file this user wrote and nobody else can change is trusted: marshal
                # trusts its input, and the file stands for the card's AIDs and access rules.
                return None
            stored = marshal.loads(file.read())  # noqa: S302
        format_version, stored_path, sources, document = stored
        if (
            format_version != PROFILE_CACHE_FORMAT
            or stored_path != profile_path  # written by another installation or checkout
            or not isinstance(document, dict)
        ):
            return None
        for path, size, modified in sources:
            status = os.stat(path)
            if status.st_size != size or status.st_mtime_ns != modified:
                return None
    except (OSError, ValueError, EOFError, TypeError):
        # Missing, unreadable, truncated, garbage or another layout: the TOML is parsed instead,
        # and its errors, if any, are the ones the caller sees.
        return None
    return document


def _write_profile_cache(
    cache_file: str, profile_path: str, sources: list[SourceFile], document: dict[str, Any]
) -> None:
    """Keep ``document`` for the next process. Only an optimization: when the cache cannot be
    written (a read-only home, an unwritable directory, a full disk) nothing is reported."""
    # Only a process that parsed the TOML writes: the writer's imports stay off the warm path.
    from pathlib import Path

    from mynakit.atomic_files import PUBLIC_FILE, write_atomic

    try:
        # This module's own file is a source too: a change to how _read_with_base merges a
        # profile with its base must not be hidden by a document merged the old way.
        module = os.stat(__file__)
        module_source = (os.path.abspath(__file__), module.st_size, module.st_mtime_ns)
        stored = marshal.dumps(
            (PROFILE_CACHE_FORMAT, profile_path, [module_source, *sources], document)
        )
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        # Atomic, so readers and concurrent writers see the old file or a whole new one; 0644
        # whatever the umask, since a group-writable file is not read back.
        write_atomic(Path(cache_file), stored, mode=PUBLIC_FILE)
    except ValueError:
        return  # a value marshal cannot hold (a TOML date or time): parsed every time instead
    except (OSError, DataError):
        return  # write_atomic removed its temporary file


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
    return CardProfile(
        kind=profile.kind,
        name=profile.name,
        token_label=profile.token_label,
        atr=profile.atr,
        extended_length=profile.extended_length,
        known_atrs=profile.known_atrs,
        choices={**profile.choices, **choices},
        applications=profile.applications,
    )
