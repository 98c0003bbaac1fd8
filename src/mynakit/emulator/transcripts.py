"""Privacy-safe transcripts of a card, and virtual cards that answer like the card recorded.

``RecordingConnection`` keeps every exchange with its time. ``make_transcript`` turns the
recording into JSON a user can attach to a bug report: every personal or identifying item (My
Number, basic-4 information, photo and images, certificate subjects, keys and serials, the card
serial, signatures) is replaced by a generated persona's value of the same length, and the data
of every secret-carrying command (VERIFY, CHANGE REFERENCE DATA, CHANGE KEY: PINs, passwords,
check code A which is the My Number) is removed with its length. Status words, file sizes,
response lengths, timings and the ATR stay, because they are what a bug report needs.

Lengths are kept at every level: a TLV file keeps every tag and length and only its primitive
values change. So a client reads the replayed file with exactly the commands and lengths it used
on the card. The holder's certificates are rebuilt as well-formed X.509 of the same length
(``mynakit.emulator.transcript_certificates``): the persona's subject and alternative names, a
fresh key (carried in the transcript for the replayed card's key EF) and the signature of a
transcript CA, whose certificate the transcript carries too.

``virtual_card_from_transcript`` builds the card back: the transcript's ATR, file contents,
certificate keys and PIN counters, and the status-word choices the card showed (docs/card.md §8,
§11), with the PINs of a new persona. A persistent card made from a transcript keeps the
transcript CAs in ``transcript-ca.pem``; verifiers that trust the sandbox trust them
(``replayed_card_authorities``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.emulator.personas import generate_persona
from mynakit.emulator.state import CardKey, CardState, build_card_state
from mynakit.emulator.transcript_certificates import CertificateRedactor, RedactedCertificate
from mynakit.errors import DataError, UsageError
from mynakit.iso7816 import tlv
from mynakit.jpki.certificates import certificate_length_from_header
from mynakit.profiles import BUNDLED_PROFILES, CardProfile, load_profile
from mynakit.transport.base import Connection
from mynakit.transport.decorator import ConnectionDecorator

if TYPE_CHECKING:
    from mynakit.emulator.card_os import VirtualCard
    from mynakit.emulator.issuer import SandboxIssuer

TRANSCRIPT_FORMAT = "mynakit-transcript/2"
_FORMAT_WITHOUT_CERTIFICATES = "mynakit-transcript/1"
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_GET_RESPONSE = 0xC0
INS_VERIFY = 0x20
INS_SIGN = 0x2A
# (CLA & 0x80, INS) of commands whose data is a secret (docs/card.md §5, §7.12).
SECRET_COMMANDS = {(0x00, 0x20), (0x00, 0x24), (0x80, 0x32)}
# Files that identify the holder or the card although the profile does not mark them personal:
# the auth certificate (subject CN, key, serial), digests of the personal files, the APs' CV
# certificates and basic info (card keys and numbers), the card serial, the token serial.
IDENTIFYING_FILES = {
    ("jpki", "auth_certificate"),
    ("jpki", "sign_certificate"),
    ("jpki", "token"),
    ("text", "integrity_record"),
    ("text", "ap_certificate"),
    ("text", "ap_basic_info"),
    ("visual", "ap_certificate"),
    ("visual", "ap_basic_info"),
    ("common", "card_info"),
}
# DER leaves a certificate keeps: BOOLEAN, NULL, OID, UTCTime, GeneralizedTime (RFC 5280 §4.1).
_CERTIFICATE_KEPT_TAGS = {0x01, 0x05, 0x06, 0x17, 0x18}
_SMALL_INTEGER_LENGTH = 2
# The offset table (DF21) of the card-face and basic-4 files holds only the offsets of the other
# entries (docs/card.md §6.2, §6.8): the lengths, which the transcript keeps anyway.
_OFFSET_TABLE_TAG = 0xDF21
# CK_TOKEN_INFO serialNumber: bytes 80-95 (label 32, manufacturer 32, model 16; docs/card.md §6.10).
_TOKEN_SERIAL = slice(80, 96)


# -- recording -------------------------------------------------------------------------------


@dataclass
class Exchange:
    command: bytes
    response: bytes
    milliseconds: float


class RecordingConnection(ConnectionDecorator):
    """A ``Connection`` decorator that keeps every exchange (raw: redact before saving)."""

    def __init__(self, inner: Connection) -> None:
        super().__init__(inner)
        self.exchanges: list[Exchange] = []

    def transmit(self, command: bytes) -> bytes:
        started = time.perf_counter()
        response = self.inner.transmit(command)
        elapsed = (time.perf_counter() - started) * 1000
        self.exchanges.append(Exchange(bytes(command), bytes(response), elapsed))
        return response


# -- redaction -------------------------------------------------------------------------------


@dataclass
class _Read:
    """One response that carried file content: where it goes in which file."""

    index: int
    key: tuple[str, str]  # (application name, file name or "record:N")
    offset: int
    length: int


@dataclass
class _Walk:
    reads: list[_Read] = field(default_factory=list)
    contents: dict[tuple[str, str], bytearray] = field(default_factory=dict)
    file_ids: dict[tuple[str, str], int] = field(default_factory=dict)


def _walk(exchanges: list[Exchange], profile: CardProfile) -> _Walk:
    """Follow SELECT and reads (by SFI, by offset, records, GET RESPONSE) to know which file
    each response belongs to (ISO 7816-4 §7.2.2: an SFI read makes that file current)."""
    walk = _Walk()
    application = None
    current: int | None = None
    continuing: tuple[tuple[str, str], int] | None = None
    for index, exchange in enumerate(exchanges):
        command, response = exchange.command, exchange.response
        data = response[:-2]
        ins, p1, p2 = command[1], command[2], command[3]
        target: tuple[tuple[str, str], int] | None = None
        if ins == INS_SELECT and p1 == 0x04 and len(command) > 5:
            application = profile.application_by_aid(command[5 : 5 + command[4]])
            current = None
        elif ins == INS_SELECT and p1 == 0x02 and len(command) >= 7:
            current = int.from_bytes(command[5:7], "big")
        elif ins == INS_READ_BINARY and application is not None:
            if p1 & 0x80:
                current, offset = p1 & 0x1F, p2
            else:
                offset = (p1 << 8) | p2
            file = application.files.get(current) if current is not None else None
            if file is not None:
                target = ((application.name, file.name), offset)
                walk.file_ids[(application.name, file.name)] = file.file_id
        elif ins == INS_READ_RECORD and application is not None:
            short_id = p2 >> 3
            if short_id:
                current = short_id
            target = ((application.name, f"record:{current}:{p1}"), 0)
        elif ins == INS_GET_RESPONSE and continuing is not None:
            target = continuing
        continuing = None
        if target is not None and data:
            key, offset = target
            walk.reads.append(_Read(index, key, offset, len(data)))
            content = walk.contents.setdefault(key, bytearray())
            if len(content) < offset + len(data):
                content.extend(bytes(offset + len(data) - len(content)))
            content[offset : offset + len(data)] = data
            if response[-2] == 0x61:
                continuing = (key, offset + len(data))
    return walk


def _filler(seed: bytes, length: int, *, digits: bool) -> bytes:
    """Deterministic bytes from ``seed``; ASCII digits when the value was digits."""
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    if digits:
        return bytes(0x30 + byte % 10 for byte in stream[:length])
    return stream[:length]


def _kind_of(value: bytes) -> str:
    """ "digits", "text" (printable UTF-8) or "binary": what a replacement must look like."""
    if value and value.isdigit():
        return "digits"
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text" if decoded.isprintable() else "binary"


def _fit(value: bytes, length: int, *, kind: str, seed: bytes) -> bytes:
    """``value`` made exactly ``length`` bytes of the original's kind: text is cut at a
    character and padded with spaces, so a client still decodes it; digits stay digits."""
    if kind == "text":
        try:
            characters = value.decode("utf-8")
        except UnicodeDecodeError:
            characters = ""
        fitted = b""
        for character in characters:
            encoded = character.encode("utf-8")
            if len(fitted) + len(encoded) > length:
                break
            fitted += encoded
        return fitted.ljust(length, b" ")
    digits = kind == "digits"
    if digits and not value.isdigit():
        value = b""
    if len(value) >= length:
        return value[:length]
    return value + _filler(seed, length - len(value), digits=digits)


def _leaves(data: bytes, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(path, tag, start, end) of every primitive value in ``data``; raises ``TlvError``."""
    found: list[tuple[tuple[int, ...], int, int, int]] = []
    offset = 0
    position = 0
    while offset < len(data):
        if tlv.is_filler_at(data, offset):
            offset += 1
            continue
        try:
            header = tlv.read_header(data, offset)
        except tlv.TlvError:
            if set(data[offset:]) <= {0x00, 0xFF}:
                break  # padding after the last object (docs/card.md §6.3: FF FF)
            raise
        start = offset + header.header_length
        end = start + header.length
        if end > len(data):
            if set(data[offset:]) <= {0x00, 0xFF}:
                break
            raise tlv.TlvError("truncated")
        here = (*path, header.tag, position)
        inner = None
        if tlv.tag_bytes(header.tag)[0] & 0x20 and end > start:
            # Constructed by its tag, but the card also uses FF xx tags for primitive values
            # (docs/card.md §6.1): recurse only where the value parses.
            try:
                inner = _leaves(data[start:end], here)
            except tlv.TlvError:
                inner = None
        if inner is not None:
            found.extend((p, t, s + start, e + start) for p, t, s, e in inner)
        else:
            found.append((here, header.tag, start, end))
        offset = end
        position += 1
    return found


def scrub(
    content: bytes, persona_content: bytes | None, *, certificate: bool, seed: bytes
) -> bytes:
    """``content`` with every primitive value replaced, lengths kept. A value at the same tag
    path in ``persona_content`` (the persona's version of the file) is used where there is one.
    Certificates keep OIDs, times, booleans, NULLs and small integers."""
    result = bytearray(content)
    try:
        leaves = _leaves(content)
    except tlv.TlvError:
        return _filler(seed, len(content), digits=False)
    replacements: dict[tuple[int, ...], bytes] = {}
    if persona_content:
        try:
            replacements = {p: persona_content[s:e] for p, _t, s, e in _leaves(persona_content)}
        except tlv.TlvError:
            replacements = {}
    covered = bytearray(len(content))
    for path, tag, start, end in leaves:
        value = content[start:end]
        keep = tag == _OFFSET_TABLE_TAG and not certificate
        if keep or (
            certificate
            and (
                tag in _CERTIFICATE_KEPT_TAGS
                or (tag == 0x02 and len(value) <= _SMALL_INTEGER_LENGTH)
            )
        ):
            covered[start:end] = b"\x01" * (end - start)
            continue
        leaf_seed = seed + repr(path).encode()
        source = replacements.get(path, b"")
        result[start:end] = _fit(source, end - start, kind=_kind_of(value), seed=leaf_seed)
    return bytes(result)


def make_transcript(
    exchanges: list[Exchange],
    *,
    atr: bytes,
    profile: CardProfile,
    persona_state: CardState,
) -> dict[str, Any]:
    """The JSON-ready, redacted transcript of ``exchanges``. ``persona_state`` is a card built
    for a generated persona; its files supply the replacement values."""
    walk = _walk(exchanges, profile)
    personal = {
        (application.name, file.name)
        for application in profile.applications.values()
        for file in application.files.values()
        if file.personal
    } | IDENTIFYING_FILES
    seed = persona_state.persona.my_number.encode()
    redacted: dict[tuple[str, str], bytes] = {}
    redactor = CertificateRedactor(seed)
    certificate_keys: dict[str, str] = {}
    for key, content in walk.contents.items():
        application, name = key
        raw = bytes(content)
        if key[1].startswith("record:"):
            if (application, "card_info") in personal:
                raw = scrub(
                    raw, _persona_record(persona_state, application), certificate=False, seed=seed
                )
            redacted[key] = raw
            continue
        if key not in personal:
            redacted[key] = raw
            continue
        file_id = walk.file_ids[key]
        persona_content = persona_state.files.get((application, file_id))
        if name == "token":
            token = bytearray(raw)
            token[_TOKEN_SERIAL] = _filler(seed + b"token", len(token[_TOKEN_SERIAL]), digits=True)
            redacted[key] = bytes(token)
            continue
        if name.endswith("certificate"):
            rebuilt = _rebuilt_certificate(raw, persona_content, redactor)
            if rebuilt is not None:
                redacted[key] = rebuilt.der
                key_name = name.removesuffix("certificate") + "key"
                keys = profile.application(application).keys.values()
                if any(profile_key.name == key_name for profile_key in keys):
                    certificate_keys[f"{application}/{key_name}"] = rebuilt.key_pem()
                continue
        redacted[key] = scrub(
            raw,
            persona_content,
            certificate=name.endswith("certificate"),
            seed=seed + name.encode(),
        )
    reads_by_index = {read.index: read for read in walk.reads}
    entries = []
    for index, exchange in enumerate(exchanges):
        command, response = exchange.command, exchange.response
        entry: dict[str, Any] = {
            "ms": round(exchange.milliseconds, 3),
            "sw": response[-2:].hex().upper(),
        }
        if (command[0] & 0x80, command[1]) in SECRET_COMMANDS and len(command) > 5:
            entry["command"] = command[:4].hex().upper()
            entry["secret_removed"] = True
        else:
            entry["command"] = command.hex().upper()
        data = response[:-2]
        read = reads_by_index.get(index)
        if read is not None:
            data = redacted[read.key][read.offset : read.offset + read.length]
        elif command[1] == INS_SIGN and data:
            data = _filler(seed + b"signature" + bytes([index % 256]), len(data), digits=False)
        entry["response"] = (data + response[-2:]).hex().upper()
        entries.append(entry)
    files = {
        f"{application}/{name}": content.hex().upper()
        for (application, name), content in redacted.items()
    }
    return {
        "format": TRANSCRIPT_FORMAT,
        "profile": profile.kind,
        "atr": atr.hex().upper(),
        "exchanges": entries,
        "files": files,
        # The fresh keys of the rebuilt certificates, for the replayed card's key EFs, and the
        # transcript CAs that signed them (mynakit.emulator.transcript_certificates).
        "certificate_keys": certificate_keys,
        "certificate_authorities": [
            certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for certificate in redactor.authority_certificates()
        ],
    }


def _rebuilt_certificate(
    raw: bytes, persona_content: bytes | None, redactor: CertificateRedactor
) -> RedactedCertificate | None:
    """The recorded certificate rebuilt for the transcript; None when the read did not give a
    whole certificate (then it is scrubbed value by value). Padding after the DER in the EF is
    kept if it is padding (00 or FF), else replaced."""
    try:  # the card-face APs' CV certificates (7F 21) are not X.509: scrubbed instead
        length = certificate_length_from_header(raw)
        if length is None or length > len(raw):
            return None
        rebuilt = redactor.redact(raw[:length], persona_content)
    except DataError:
        return None
    tail = raw[length:]
    if set(tail) - {0x00, 0xFF}:
        tail = bytes(len(tail))
    return replace(rebuilt, der=rebuilt.der + tail)


def _persona_record(state: CardState, application: str) -> bytes | None:
    records = state.records.get((application, 1))
    return records[0] if records else None


def persona_card_state(
    profile: CardProfile, issuer: SandboxIssuer, seed: str | None = None
) -> CardState:
    """A card for a new generated persona, whose files supply the replacement values."""
    return build_card_state(profile, generate_persona(seed), issuer, name="transcript-persona")


def record_to_file(transcript: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(transcript, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def load_transcript(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not a readable transcript: {error}") from error
    if isinstance(data, dict) and data.get("format") == _FORMAT_WITHOUT_CERTIFICATES:
        # Its certificates were scrubbed value by value and do not parse: a card built from it
        # would fail every certificate command.
        raise DataError(
            f"{path} was recorded by an older mynakit whose transcripts carry no usable "
            "certificates; record the card again"
        )
    if not isinstance(data, dict) or data.get("format") != TRANSCRIPT_FORMAT:
        raise DataError(f"{path} is not a {TRANSCRIPT_FORMAT} transcript")
    return data


# -- replay ----------------------------------------------------------------------------------


def choices_from_transcript(transcript: dict[str, Any]) -> dict[str, Any]:
    """The status-word choices the recorded card showed (docs/card.md §8, §11.5)."""
    choices: dict[str, Any] = {}
    verified = False
    for entry in transcript["exchanges"]:
        command = bytes.fromhex(entry["command"])
        sw = entry["sw"]
        if command[1] == INS_VERIFY and entry.get("secret_removed") and sw == "9000":
            verified = True
        elif command[1] == INS_VERIFY and len(command) == 4 and verified and sw == "9000":
            choices["retry_query_after_verify"] = "9000"
        elif command[1] == INS_READ_BINARY and sw == "6282":
            choices["short_read_at_end_sw"] = "6282"
        elif command[1] == INS_READ_BINARY and sw in ("6982", "6986"):
            choices["security_not_satisfied_sw"] = sw
    return choices


def extended_length_from_transcript(transcript: dict[str, Any]) -> bool | None:
    for entry in transcript["exchanges"]:
        command = bytes.fromhex(entry["command"])
        if len(command) == 7 and command[4] == 0 and command[1] == INS_READ_BINARY:
            return bool(entry["sw"] != "6700")
    return None


def profile_text_for_transcript(transcript: dict[str, Any]) -> str:
    """The bundled profile's TOML with the transcript's ATR and choices written in."""
    kind = transcript["profile"]
    text = Path(BUNDLED_PROFILES, f"{kind}.toml").read_text("utf-8")
    text = re.sub(r'(?m)^atr = "[0-9A-Fa-f]*"', f'atr = "{transcript["atr"]}"', text, count=1)
    extended = extended_length_from_transcript(transcript)
    if extended is not None:
        text = re.sub(
            r"(?m)^extended_length = \w+",
            f"extended_length = {str(extended).lower()}",
            text,
            count=1,
        )
    for key, value in choices_from_transcript(transcript).items():
        text = re.sub(rf"(?m)^{key} = .*$", f'{key} = "{value}"', text, count=1)
    return text


def apply_transcript(state: CardState, profile: CardProfile, transcript: dict[str, Any]) -> None:
    """Put the transcript's files, certificate keys and PIN counters into ``state``."""
    for name, content_hex in transcript["files"].items():
        application_name, file_name = name.split("/", 1)
        content = bytes.fromhex(content_hex)
        application = profile.application(application_name)
        if file_name.startswith("record:"):
            _, file_id, number = file_name.split(":")
            records = list(state.records.get((application_name, int(file_id)), ()))
            index = int(number) - 1
            if 0 <= index < len(records):
                records[index] = content
                state.records[(application_name, int(file_id))] = tuple(records)
            continue
        file = application.file(file_name)
        if file.size is not None and len(content) != file.size:
            continue  # a fixed-size file the client reads whole: keep the profile's
        state.files[(application_name, file.file_id)] = content
    _apply_certificate_keys(state, profile, transcript)
    _apply_counters(state, profile, transcript)
    my_number_hex = transcript["files"].get("text/my_number")
    if my_number_hex:
        # Check code A is the My Number (docs/card.md §4): the replayed card's must match the
        # (generated) number its text AP now holds.
        digits = _leaves(bytes.fromhex(my_number_hex))
        value = bytes.fromhex(my_number_hex)[digits[0][2] : digits[0][3]] if digits else b""
        for application in profile.applications.values():
            for key in application.keys.values():
                record = state.pins.get((application.name, key.key_id))
                if key.name == "check_code_a" and record is not None and value.isdigit():
                    record.value = value


def _apply_certificate_keys(
    state: CardState, profile: CardProfile, transcript: dict[str, Any]
) -> None:
    """The key EFs take the transcript's fresh keys, so the card's signatures verify under the
    certificates it hands out; the serials become those certificates'."""
    for name, pem in transcript.get("certificate_keys", {}).items():
        application_name, key_name = name.split("/", 1)
        key = profile.application(application_name).key(key_name)
        try:
            private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as error:
            raise DataError(f"the transcript's key {name} is not a PEM private key") from error
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise DataError(f"the transcript's key {name} is not an RSA key")
        state.card_keys[(application_name, key.key_id)] = CardKey(private_key)
        kind = key_name.removesuffix("_key")
        certificate_hex = transcript["files"].get(f"{application_name}/{kind}_certificate")
        if certificate_hex:
            certificate = bytes.fromhex(certificate_hex)
            length = certificate_length_from_header(certificate) or len(certificate)
            try:
                loaded = x509.load_der_x509_certificate(certificate[:length])
            except ValueError as error:
                raise DataError(f"the transcript's {kind} certificate is malformed") from error
            state.serials[kind] = loaded.serial_number


def transcript_authorities(transcript: dict[str, Any]) -> list[x509.Certificate]:
    """The transcript CAs that signed the transcript's certificates (trust them to verify a
    replayed card's certificates: ``mynakit jpki verify-cert --sandbox`` does)."""
    try:
        return [
            x509.load_pem_x509_certificate(pem.encode("ascii"))
            for pem in transcript.get("certificate_authorities", [])
        ]
    except (ValueError, UnicodeEncodeError) as error:
        raise DataError("the transcript's CA certificates are malformed") from error


def _apply_counters(state: CardState, profile: CardProfile, transcript: dict[str, Any]) -> None:
    """Each key's tries left as its first retry query answered (docs/card.md §7.5)."""
    application = None
    seen: set[tuple[str, int]] = set()
    for entry in transcript["exchanges"]:
        command = bytes.fromhex(entry["command"])
        if command[1] == INS_SELECT and command[2] == 0x04 and len(command) > 5:
            application = profile.application_by_aid(command[5 : 5 + command[4]])
        elif command[1] == INS_VERIFY and len(command) == 4 and application is not None:
            sw = int(entry["sw"], 16)
            key_id = command[3] & 0x1F
            record = state.pins.get((application.name, key_id))
            if record is None or (application.name, key_id) in seen:
                continue
            seen.add((application.name, key_id))
            if sw & 0xFFF0 == 0x63C0:
                record.tries_left = min(sw & 0x0F, record.max_tries)


def virtual_card_from_transcript(
    transcript: dict[str, Any],
    issuer: SandboxIssuer,
    profile_directory: Path,
    *,
    seed: str | None = None,
) -> VirtualCard:
    """An in-memory virtual card that answers like the recorded one; its profile (the
    transcript's ATR and choices) is written into ``profile_directory``."""
    from mynakit.emulator.card_os import VirtualCard

    profile_path = profile_directory / TRANSCRIPT_PROFILE_FILE
    profile_path.write_text(profile_text_for_transcript(transcript), encoding="utf-8")
    profile = load_profile(str(profile_path))
    state = build_card_state(profile, generate_persona(seed), issuer, name="from-transcript")
    apply_transcript(state, profile, transcript)
    state = replace(state, profile_source=str(profile_path))
    return VirtualCard(profile, state)


TRANSCRIPT_PROFILE_FILE = "profile-from-transcript.toml"
TRANSCRIPT_AUTHORITIES_FILE = "transcript-ca.pem"


def replayed_card_authorities(base_dir: str | os.PathLike[str]) -> list[x509.Certificate]:
    """The transcript CAs of every card in ``base_dir`` made from a transcript, for verifiers
    that trust the sandbox (as ``card_ca_public_keys`` for the card-face CV certificates)."""
    from mynakit.emulator.state import list_cards

    certificates: list[x509.Certificate] = []
    for listing in list_cards(base_dir):
        path = listing.directory / TRANSCRIPT_AUTHORITIES_FILE
        if path.is_file():
            try:
                certificates.extend(x509.load_pem_x509_certificates(path.read_bytes()))
            except ValueError as error:
                raise DataError(f"{path} holds no readable PEM certificate") from error
    return certificates


def create_card_from_transcript(
    base_dir: str | os.PathLike[str],
    name: str,
    transcript: dict[str, Any],
    *,
    issuer: SandboxIssuer | None = None,
    seed: str | None = None,
) -> Path:
    """A persistent virtual card ``name`` that answers like the transcript's card. Its profile
    (the transcript's ATR and status-word choices) is written beside its state."""
    from mynakit.emulator.state import (
        check_card_name,
        default_issuer_directory,
        install_card_state,
    )

    check_card_name(name)
    directory = Path(base_dir) / name
    if directory.exists():
        raise UsageError(f"a virtual card named {name!r} already exists in {base_dir}")
    if issuer is None:
        from mynakit.emulator.issuer import SandboxIssuer

        issuer = SandboxIssuer.open_or_create(default_issuer_directory(base_dir))
    profile_text = profile_text_for_transcript(transcript)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_profile = Path(scratch) / TRANSCRIPT_PROFILE_FILE
        scratch_profile.write_text(profile_text, encoding="utf-8")
        profile = load_profile(str(scratch_profile))
    state = build_card_state(profile, generate_persona(seed), issuer, name=name)
    apply_transcript(state, profile, transcript)
    state.profile_source = str((directory / TRANSCRIPT_PROFILE_FILE).resolve())
    return install_card_state(
        base_dir,
        name,
        state,
        issuer_directory=issuer.directory,
        extra_files={
            TRANSCRIPT_PROFILE_FILE: profile_text.encode("utf-8"),
            TRANSCRIPT_AUTHORITIES_FILE: "".join(
                transcript.get("certificate_authorities", [])
            ).encode("ascii"),
        },
    )
