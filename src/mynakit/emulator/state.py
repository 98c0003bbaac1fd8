"""A virtual card's state, in memory and on disk, so a card made once keeps its keys,
certificates, files and PIN counters across runs and processes.

One directory per card under a base directory (default ``$MYNAKIT_HOME/cards``, else
``~/.local/share/mynakit/cards``)::

    card.json          name, profile, creation time, certificate serials (written last: a
                       directory without it is an unfinished card)
    persona.json       the synthetic holder, with the PINs it was issued with
    pins.json          every PIN key's reference data and retry counter; replaced atomically
                       (os.replace) after every change, so a card pulled mid-command loses nothing
    keys/*.pem         private keys, PKCS#8 PEM, unencrypted (sandbox only, mode 0600)
    card-ca.pem        public key of the card CA that signs the CV certificates (for verifiers)
    files/<ap>/<EF>.bin, files/<ap>/<EF>.<n>.rec     file contents

The sandbox issuer of a base directory lives beside it, in ``<base>/../issuer`` (so
``$MYNAKIT_HOME/issuer`` by default). The card CA and municipality keys that sign the card-face
records (``mynakit.emulator.card_files``) belong to the card and live in its ``keys/``.

Two processes using one card at the same time each keep their own counters; the last write wins.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.emulator.card_files import (
    RSA_MODULUS_BYTES,
    BuiltFiles,
    CertificateFiles,
    build_card_files,
)
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.errors import DataError, UsageError
from mynakit.profiles import DEFAULT_PROFILE, CardProfile, load_profile

if TYPE_CHECKING:
    from mynakit.emulator.card_os import VirtualCard
    from mynakit.emulator.faults import Faults
    from mynakit.emulator.issuer import SandboxIssuer

STATE_FORMAT = 1
CARD_FILE = "card.json"
PERSONA_FILE = "persona.json"
PINS_FILE = "pins.json"
INSERTED_FILE = "inserted"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def default_issuer_directory(base_dir: str | os.PathLike[str]) -> Path:
    """The sandbox issuer that goes with the cards in ``base_dir``: a sibling named ``issuer``."""
    return Path(base_dir).resolve().parent / "issuer"


# -- keys -----------------------------------------------------------------------------------------


class CardKey:
    """An RSA-2048 private key that signs but never hands itself out.

    The card OS and the file builder only ever ask for signatures; serialising the key is this
    module's private business (``_private_pem``), for the card's own directory.
    """

    __slots__ = ("_key", "_numbers")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        if key.key_size != RSA_MODULUS_BYTES * 8:
            raise UsageError(f"card keys are RSA-2048, not {key.key_size} bits")
        self._key = key
        self._numbers = key.private_numbers()

    @classmethod
    def generate(cls) -> CardKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def __repr__(self) -> str:
        return "CardKey(<RSA-2048 private key>)"

    def __deepcopy__(self, memo: dict[int, Any]) -> CardKey:
        return self  # immutable; shared between forks of a state

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign_pkcs1_v15(self, payload: bytes) -> bytes:
        """RSA over ``00 01 FF… 00 payload`` (PKCS#1 v1.5 type 1, RFC 8017 §9.2 step 5); the
        card pads whatever the terminal sends (§5.1), so this takes any payload up to k-11."""
        if not 1 <= len(payload) <= RSA_MODULUS_BYTES - 11:
            raise UsageError(f"a PKCS#1 v1.5 payload has 1-{RSA_MODULUS_BYTES - 11} bytes")
        block = b"\x00\x01" + b"\xff" * (RSA_MODULUS_BYTES - 3 - len(payload)) + b"\x00" + payload
        return self._raw(block)

    def sign_pss_sha256(self, data: bytes, *, prehashed: bool, salt_length: int) -> bytes:
        """RSASSA-PSS with SHA-256 and MGF1-SHA-256 (80 2A P1=04/05, §5.1)."""
        algorithm: hashes.HashAlgorithm | utils.Prehashed = (
            utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        )
        return self._key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length), algorithm
        )

    def _raw(self, block: bytes) -> bytes:
        # cryptography has no raw RSA signing; compute m^d mod n with the CRT private numbers.
        numbers = self._numbers
        message = int.from_bytes(block, "big")
        modulus = numbers.public_numbers.n
        if message >= modulus:
            raise UsageError("the block to sign is not smaller than the modulus")
        half_p = pow(message, numbers.dmp1, numbers.p)
        half_q = pow(message, numbers.dmq1, numbers.q)
        combined = half_q + (numbers.iqmp * (half_p - half_q) % numbers.p) * numbers.q
        return combined.to_bytes(RSA_MODULUS_BYTES, "big")

    def _private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def _from_pem(cls, data: bytes, where: str) -> CardKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError as error:
            raise DataError(f"{where} is not a PEM private key") from error
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DataError(f"{where} is not an RSA key")
        return cls(key)


# -- state ----------------------------------------------------------------------------------------


@dataclass
class PinRecord:
    """A PIN key's reference data and retry counter."""

    value: bytes
    tries_left: int
    max_tries: int

    def __repr__(self) -> str:
        return f"PinRecord(<redacted>, tries_left={self.tries_left}, max_tries={self.max_tries})"


KeyRef = tuple[str, int]  # (application name, key or file id)


@dataclass
class CardState:
    """Everything a virtual card holds. Files and keys never change while the card runs (the
    card has no write commands); PIN records do, and are saved after each change."""

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

    def card_profile(self) -> CardProfile:
        """The card profile this state was built for."""
        return _load_card_profile(self.profile_name, self.profile_source)

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
        )

    def save_pins(self) -> None:
        """Write PIN records if this state has a directory (called after every change)."""
        if self.directory is not None:
            _write_atomic(self.directory / PINS_FILE, _encode_json(_pins_to_json(self.pins)))

    def block(self, application: str, key_name: str, profile: CardProfile | None = None) -> None:
        """Set a PIN key's counter to 0, as a card whose PIN was exhausted (fault injection)."""
        card_profile = profile if profile is not None else self.card_profile()
        key = card_profile.application(application).key(key_name)
        record = self.pins.get((application, key.key_id))
        if record is None:
            raise UsageError(f"{application} {key_name} is not a PIN key")
        record.tries_left = 0
        self.save_pins()

    def card_ca_public_key(self) -> rsa.RSAPublicKey | None:
        """The key that verifies the CV certificates of text and visual EF0004."""
        return None if self.card_ca is None else self.card_ca.public_key()


def build_card_state(
    profile: CardProfile,
    persona: Persona,
    issuer: SandboxIssuer,
    *,
    name: str = "in-memory",
) -> CardState:
    """Generate keys, have ``issuer`` certify the JPKI ones, and fill every file (in memory)."""
    card_keys: dict[KeyRef, CardKey] = {}
    pins: dict[KeyRef, PinRecord] = {}
    for application in profile.applications.values():
        for key in application.keys.values():
            ref = (application.name, key.key_id)
            if key.kind == "private_key":
                card_keys[ref] = CardKey.generate()
            elif key.kind == "pin":
                pins[ref] = PinRecord(
                    _initial_reference(persona, key.name, key.tries, key.max_length),
                    key.tries,
                    key.tries,
                )
            else:
                raise DataError(f"card profile key {key.name} has unknown kind {key.kind!r}")
    card_face_aps = any(
        "ap_certificate" in (file.name for file in application.files.values())
        for application in profile.applications.values()
    )
    card_ca = CardKey.generate() if card_face_aps else None
    municipality_key = CardKey.generate() if card_face_aps else None
    certificates, serials = _issue_certificates(profile, persona, issuer, card_keys)
    state = CardState(
        name=name,
        profile_name=profile.kind,
        persona=persona,
        files={},
        records={},
        pins=pins,
        card_keys=card_keys,
        card_ca=card_ca,
        municipality_key=municipality_key,
        serials=serials,
    )
    _rebuild_files(state, profile, certificates)
    return state


def _initial_reference(persona: Persona, key_name: str, tries: int, max_length: int) -> bytes:
    if tries == 0:
        # A key blocked from issuance (text 0012, §3.2): nothing can ever match it.
        return b"\x00" * max(max_length, 1)
    return persona.reference_data(key_name).encode("ascii")


def _issue_certificates(
    profile: CardProfile,
    persona: Persona,
    issuer: SandboxIssuer,
    card_keys: dict[KeyRef, CardKey],
) -> tuple[CertificateFiles, dict[str, int]]:
    jpki = profile.applications.get("jpki")
    file_names = {file.name for file in jpki.files.values()} if jpki else set()
    serials: dict[str, int] = {}
    auth = sign = None
    if "auth_certificate" in file_names:
        auth_key = card_keys[("jpki", profile.application("jpki").key("auth_key").key_id)]
        auth = issuer.issue_auth_certificate(auth_key.public_key())
        serials["auth"] = auth.serial_number
    if "sign_certificate" in file_names:
        sign_key = card_keys[("jpki", profile.application("jpki").key("sign_key").key_id)]
        sign = issuer.issue_sign_certificate(sign_key.public_key(), persona.basic_info)
        serials["sign"] = sign.serial_number
    return (
        CertificateFiles(
            auth=_der(auth),
            sign=_der(sign),
            auth_ca=issuer.auth_root.public_bytes(serialization.Encoding.DER),
            sign_ca=issuer.sign_root.public_bytes(serialization.Encoding.DER),
        ),
        serials,
    )


def _der(certificate: x509.Certificate | None) -> bytes | None:
    return None if certificate is None else certificate.public_bytes(serialization.Encoding.DER)


class _StateKeys:
    """The ``CardKeys`` view of a state for the file builder."""

    def __init__(self, state: CardState, profile: CardProfile) -> None:
        self._state = state
        self._profile = profile

    def public_key(self, application: str, key_name: str) -> rsa.RSAPublicKey:
        key = self._profile.application(application).key(key_name)
        return self._state.card_keys[(application, key.key_id)].public_key()

    @property
    def card_ca(self) -> CardKey:
        if self._state.card_ca is None:
            raise DataError("this card has no card CA key")
        return self._state.card_ca

    @property
    def municipality(self) -> CardKey:
        if self._state.municipality_key is None:
            raise DataError("this card has no municipality key")
        return self._state.municipality_key


def _rebuild_files(state: CardState, profile: CardProfile, certificates: CertificateFiles) -> None:
    built: BuiltFiles = build_card_files(
        profile, state.persona, _StateKeys(state, profile), certificates
    )
    state.files = built.binary
    state.records = built.records


def new_virtual_card(
    issuer: SandboxIssuer,
    *,
    profile: str | CardProfile = DEFAULT_PROFILE,
    seed: int | str | None = None,
    persona: Persona | None = None,
    faults: Faults | None = None,
) -> VirtualCard:
    """A card in memory only (tests, demos): real keys, certificates from a real ``issuer``."""
    from mynakit.emulator.card_os import VirtualCard

    card_profile = load_profile(profile) if isinstance(profile, str) else profile
    holder = persona if persona is not None else generate_persona(seed)
    return VirtualCard(card_profile, build_card_state(card_profile, holder, issuer), faults=faults)


# -- on disk --------------------------------------------------------------------------------------


def create_card(
    base_dir: str | os.PathLike[str],
    name: str,
    *,
    profile: str = DEFAULT_PROFILE,
    seed: int | str | None = None,
    issuer: SandboxIssuer | None = None,
    blocked: tuple[tuple[str, str], ...] = (),
) -> Path:
    """Make a persistent card ``name``; return its directory. ``issuer`` defaults to the
    sandbox issuer beside ``base_dir`` (created if missing). ``blocked`` lists (AP, key name)
    pairs whose counter starts at 0."""
    directory = _card_directory(base_dir, name)
    if directory.exists():
        raise UsageError(f"a virtual card named {name!r} already exists in {directory.parent}")
    card_profile = load_profile(profile)
    if issuer is None:
        from mynakit.emulator.issuer import SandboxIssuer

        issuer = SandboxIssuer.open_or_create(default_issuer_directory(base_dir))
    state = build_card_state(card_profile, generate_persona(seed), issuer, name=name)
    if profile.endswith(".toml"):
        state.profile_source = str(Path(profile).resolve())
    for application, key_name in blocked:
        state.block(application, key_name, card_profile)
    return install_card_state(base_dir, name, state, issuer_directory=issuer.directory)


def install_card_state(
    base_dir: str | os.PathLike[str],
    name: str,
    state: CardState,
    *,
    issuer_directory: Path | None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Save ``state`` as the new card ``name``: written in a staging directory (with
    ``extra_files`` beside it), then renamed into place, so a half-made card is never seen."""
    directory = _card_directory(base_dir, name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=_ensure_directory(base_dir)))
    try:
        for file_name, content in (extra_files or {}).items():
            _write_atomic(staging / file_name, content)
        state.directory = staging
        save_card_state(state, issuer_directory=issuer_directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    state.directory = directory
    return directory


def save_card_state(state: CardState, *, issuer_directory: Path | None = None) -> None:
    """Write the whole state into ``state.directory`` (``card.json`` last)."""
    directory = state.directory
    if directory is None:
        raise UsageError("this card state has no directory to save into")
    (directory / "keys").mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / PERSONA_FILE, _encode_json(state.persona.to_json()), private=True)
    _write_atomic(directory / PINS_FILE, _encode_json(_pins_to_json(state.pins)), private=True)
    for (application, key_id), key in state.card_keys.items():
        _write_atomic(
            directory / "keys" / f"{application}-{key_id:04X}.pem", key._private_pem(), private=True
        )
    for label, record_key in (("card-ca", state.card_ca), ("municipality", state.municipality_key)):
        if record_key is not None:
            _write_atomic(
                directory / "keys" / f"{label}.pem", record_key._private_pem(), private=True
            )
    if state.card_ca is not None:
        _write_atomic(
            directory / "card-ca.pem",
            state.card_ca.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
    files_directory = directory / "files"
    for (application, file_id), content in state.files.items():
        (files_directory / application).mkdir(parents=True, exist_ok=True)
        _write_atomic(files_directory / application / f"{file_id:04X}.bin", content, private=True)
    for (application, file_id), records in state.records.items():
        (files_directory / application).mkdir(parents=True, exist_ok=True)
        for number, record in enumerate(records, start=1):
            _write_atomic(
                files_directory / application / f"{file_id:04X}.{number}.rec", record, private=True
            )
    previous: dict[str, Any] = {}
    if (directory / CARD_FILE).exists():
        previous = _read_json(directory / CARD_FILE)
    card = {
        "format": STATE_FORMAT,
        "name": state.name,
        "profile": state.profile_name,
        "profile_source": state.profile_source,
        "created": previous.get("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        "serials": {kind: str(serial) for kind, serial in state.serials.items()},
        "issuer_directory": str(issuer_directory)
        if issuer_directory
        else previous.get("issuer_directory"),
    }
    _write_atomic(directory / CARD_FILE, _encode_json(card))


def load_card_state(base_dir: str | os.PathLike[str], name: str) -> CardState:
    directory = _card_directory(base_dir, name)
    if not (directory / CARD_FILE).exists():
        raise UsageError(f"no virtual card named {name!r} in {directory.parent}")
    card = _read_json(directory / CARD_FILE)
    if card.get("format") != STATE_FORMAT:
        raise DataError(f"{directory / CARD_FILE} has an unknown format {card.get('format')!r}")
    profile = _load_card_profile(card["profile"], card.get("profile_source", ""))
    persona = Persona.from_json(_read_json(directory / PERSONA_FILE))
    card_keys: dict[KeyRef, CardKey] = {}
    for application in profile.applications.values():
        for key in application.keys.values():
            if key.kind == "private_key":
                path = directory / "keys" / f"{application.name}-{key.key_id:04X}.pem"
                card_keys[(application.name, key.key_id)] = CardKey._from_pem(
                    _read_bytes(path), str(path)
                )
    extra: dict[str, CardKey | None] = {}
    for label in ("card-ca", "municipality"):
        path = directory / "keys" / f"{label}.pem"
        extra[label] = CardKey._from_pem(path.read_bytes(), str(path)) if path.exists() else None
    files: dict[KeyRef, bytes] = {}
    records: dict[KeyRef, tuple[bytes, ...]] = {}
    for application in profile.applications.values():
        for file in application.files.values():
            base = directory / "files" / application.name
            if file.structure == "record":
                collected: list[bytes] = []
                while (base / f"{file.file_id:04X}.{len(collected) + 1}.rec").exists():
                    collected.append(
                        (base / f"{file.file_id:04X}.{len(collected) + 1}.rec").read_bytes()
                    )
                records[(application.name, file.file_id)] = tuple(collected)
            else:
                files[(application.name, file.file_id)] = _read_bytes(
                    base / f"{file.file_id:04X}.bin"
                )
    return CardState(
        name=card["name"],
        profile_name=card["profile"],
        persona=persona,
        files=files,
        records=records,
        pins=_pins_from_json(_read_json(directory / PINS_FILE)),
        card_keys=card_keys,
        card_ca=extra["card-ca"],
        municipality_key=extra["municipality"],
        serials={kind: int(serial) for kind, serial in card.get("serials", {}).items()},
        directory=directory,
        profile_source=card.get("profile_source", ""),
    )


def load_card(
    base_dir: str | os.PathLike[str], name: str, *, faults: Faults | None = None
) -> VirtualCard:
    """The persistent card ``name`` as a ``VirtualCard``; PIN counters are saved as they change."""
    from mynakit.emulator.card_os import VirtualCard

    state = load_card_state(base_dir, name)
    return VirtualCard(state.card_profile(), state, faults=faults)


@dataclass(frozen=True)
class CardListing:
    name: str
    profile: str
    created: str
    serials: dict[str, int]
    directory: Path


def card_ca_public_keys(base_dir: str | os.PathLike[str]) -> list[rsa.RSAPublicKey]:
    """The card-CA public keys of every card in ``base_dir`` (``card-ca.pem`` only: no private
    key is loaded), for verifiers that trust the sandbox (``--sandbox``)."""
    keys = []
    for listing in list_cards(base_dir):
        path = listing.directory / "card-ca.pem"
        if path.is_file():
            key = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(key, rsa.RSAPublicKey):
                keys.append(key)
    return keys


def list_cards(base_dir: str | os.PathLike[str]) -> list[CardListing]:
    """Every complete card in ``base_dir``, by name (reads only ``card.json``)."""
    base = Path(base_dir)
    if not base.is_dir():
        return []
    listings = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not (entry / CARD_FILE).is_file():
            continue
        card = _read_json(entry / CARD_FILE)
        listings.append(
            CardListing(
                name=card["name"],
                profile=card["profile"],
                created=card.get("created", ""),
                serials={kind: int(serial) for kind, serial in card.get("serials", {}).items()},
                directory=entry,
            )
        )
    return listings


def remove_card(base_dir: str | os.PathLike[str], name: str) -> None:
    """Delete card ``name`` (keys included). Ejects it first if it is in the virtual reader."""
    directory = _card_directory(base_dir, name)
    if not (directory / CARD_FILE).exists():
        raise UsageError(f"no virtual card named {name!r} in {directory.parent}")
    if inserted_card(base_dir) == name:
        eject_card(base_dir)
    shutil.rmtree(directory)


def find_card_by_serial(base_dir: str | os.PathLike[str], serial: int) -> tuple[str, str] | None:
    """(card name, "auth" or "sign") of the card holding certificate ``serial``, if any."""
    for listing in list_cards(base_dir):
        for kind, card_serial in listing.serials.items():
            if card_serial == serial:
                return listing.name, kind
    return None


def renew_card_certificate(
    base_dir: str | os.PathLike[str], name: str, kind: str, issuer: SandboxIssuer
) -> tuple[int, x509.Certificate]:
    """Renew the card's ``kind`` ("auth"/"sign") certificate as a municipal office does: a new
    key pair on the card, a new certificate from ``issuer`` (which revokes the old one), the
    certificate file rewritten. Returns (old serial, new certificate)."""
    state = load_card_state(base_dir, name)
    profile = state.card_profile()
    jpki = profile.application("jpki")
    key = jpki.key(f"{kind}_key")
    file = jpki.file(f"{kind}_certificate")
    old_serial = state.serials.get(kind)
    if old_serial is None:
        raise UsageError(f"card {name!r} holds no {kind} certificate")
    new_key = CardKey.generate()
    certificate = issuer.renew(old_serial, new_key.public_key())
    state.card_keys[("jpki", key.key_id)] = new_key
    state.files[("jpki", file.file_id)] = certificate.public_bytes(serialization.Encoding.DER)
    state.serials[kind] = certificate.serial_number
    save_card_state(state)
    return old_serial, certificate


# -- the virtual reader ---------------------------------------------------------------------------


def insert_card(base_dir: str | os.PathLike[str], name: str) -> None:
    """Record that card ``name`` is in the virtual reader (read by ``emulator serve``)."""
    if not (_card_directory(base_dir, name) / CARD_FILE).exists():
        raise UsageError(f"no virtual card named {name!r} in {base_dir}")
    _write_atomic(Path(base_dir) / INSERTED_FILE, name.encode("utf-8") + b"\n")


def eject_card(base_dir: str | os.PathLike[str]) -> str | None:
    """Take the card out of the virtual reader; return the name of the card that was in it."""
    name = inserted_card(base_dir)
    if name is not None:
        (Path(base_dir) / INSERTED_FILE).unlink(missing_ok=True)
    return name


def inserted_card(base_dir: str | os.PathLike[str]) -> str | None:
    path = Path(base_dir) / INSERTED_FILE
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


# -- helpers --------------------------------------------------------------------------------------


def _load_card_profile(kind: str, source: str) -> CardProfile:
    """The profile of kind ``kind``, from ``source`` (a TOML path) when the card was built
    from a file rather than a bundled profile."""
    profile = load_profile(source or kind)
    if profile.kind != kind:
        raise DataError(f"card profile {source or kind!r} is a {profile.kind!r}, not {kind!r}")
    return profile


def check_card_name(name: str) -> None:
    """Raise ``UsageError`` unless ``name`` can name a card directory."""
    if not _NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"card name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )


def _card_directory(base_dir: str | os.PathLike[str], name: str) -> Path:
    check_card_name(name)
    return Path(base_dir) / name


def _ensure_directory(base_dir: str | os.PathLike[str]) -> Path:
    path = Path(base_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pins_to_json(pins: dict[KeyRef, PinRecord]) -> dict[str, dict[str, Any]]:
    return {
        f"{application}/{key_id:04X}": {
            "value": record.value.hex(),
            "tries_left": record.tries_left,
            "max_tries": record.max_tries,
        }
        for (application, key_id), record in sorted(pins.items())
    }


def _pins_from_json(data: dict[str, Any]) -> dict[KeyRef, PinRecord]:
    pins: dict[KeyRef, PinRecord] = {}
    try:
        for reference, record in data.items():
            application, key_id = reference.split("/")
            pins[(application, int(key_id, 16))] = PinRecord(
                bytes.fromhex(record["value"]), int(record["tries_left"]), int(record["max_tries"])
            )
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{PINS_FILE} is malformed ({type(error).__name__})") from None
    return pins


def _encode_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_bytes(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"the virtual card is incomplete: {path} is missing") from None


def _write_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then ``os.replace``: a
    reader (or a crash) sees the old content or the new, never half of it."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if private:
            os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
