"""The contents of a virtual card's elementary files, built exactly as docs/card.md §6 shows.

Which files exist, and their physical sizes, come from the card profile; this module only knows
how to fill a file of a given name. Pure functions of a persona, public keys, certificates and a
signer: no I/O, so ``tests/unit`` covers them.

Sandbox key hierarchy of the card-face APs (documented choice; real key ids are in
docs/card.md §6.5):

* the *card CA* signs the card-verifiable (CV) certificates of text and visual EF ``0004``. Real
  cards name two CA keys (``5000033`` text, ``5000023`` visual); the sandbox uses one key under
  the ids ``9000033`` and ``9000023``, so a sandbox id never equals a production (``5…``) or JPKI
  test (``6…``) one.
* the *municipality key* is certified by both CV certificates and signs the data records: text
  EF ``0003`` and visual EF ``0001``/``0002``/``0005`` (myna-card: "the same issuer key that signs
  the 券面事項確認AP records").
* each AP's *card key* (text ``0013``, visual ``001A``) stays on the card and signs challenges
  (docs/card.md §7.13); the visual one's public half is DF12/DF24/DF42.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.emulator.personas import Persona
from mynakit.errors import DataError
from mynakit.iso7816 import tlv
from mynakit.profiles import CardProfile

# DER prefix of a SHA-256 DigestInfo up to the OCTET STRING tag (docs/card.md §5.1;
# RFC 8017 §9.2).
_SHA256_ALGORITHM = bytes.fromhex("300D06096086480165030402010500")
RSA_MODULUS_BYTES = 256  # every key on this card is RSA-2048 (docs/card.md §3.1, §6.5)
FILLER = 0xFF  # docs/card.md §6.1: files carry FF filler after the last object

# 16-byte key ids: 7 digits, 08 05, 3-digit group, 4 bytes padding (docs/card.md §6.5).
CARD_CA_TEXT_KEY_NUMBER = "9000033"
CARD_CA_VISUAL_KEY_NUMBER = "9000023"
TEXT_BASIC_INFO_KEY_NUMBER = "9000034"  # DF42 of text EF0005: "x000034" on real cards
VISUAL_BASIC_INFO_KEY_NUMBER = "9000024"  # DF32 of visual EF0003: "x000024" on real cards

# Values observed on real cards (docs/card.md §6.6, §6.9) or in myna-card's token test vector
# (docs/card.md §6.10).
TEXT_AP_IDENTIFICATION = bytes.fromhex("01030E01")
VISUAL_AP_IDENTIFICATION = bytes.fromhex("06030E01")
VISUAL_AP_VERSION = b"\x01"
CK_MANUFACTURER_ID = "MYNAKIT SANDBOX"
CK_MODEL = "E16R01NJ"
CK_FLAGS = 0x0000040D
CK_MAX_PIN_LENGTH = 16
CK_MIN_PIN_LENGTH = 6
CK_HARDWARE_VERSION = b"03"  # physical cards carry ASCII digits here (docs/card.md §6.10)
CK_FIRMWARE_VERSION = b"01"
_UNAVAILABLE = 0xFFFFFFFF  # PKCS#11 CK_UNAVAILABLE_INFORMATION
CERTIFICATE_AVAILABLE = 0x8F  # docs/card.md §3.1 EF0008 byte per certificate present


class RecordSigner(Protocol):
    """A key that signs a prepared PKCS#1 v1.5 payload (a DigestInfo) without exposing itself."""

    def public_key(self) -> rsa.RSAPublicKey: ...

    def sign_pkcs1_v15(self, payload: bytes) -> bytes: ...


# -- encodings ------------------------------------------------------------------------------------


def card_tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV the way this card writes it: lengths from 0x80 up always take the ``82`` form
    (every long length in docs/card.md §6 is ``82 xx xx``, e.g. ``FF 40 82 00 9F`` of
    docs/card.md §6.6)."""
    if len(value) < 0x80:
        length = bytes((len(value),))
    elif len(value) <= 0xFFFF:
        length = b"\x82" + len(value).to_bytes(2, "big")
    else:
        raise DataError(f"a card file object of {len(value)} bytes is too large")
    return tlv.tag_bytes(tag) + length + value


def public_key_value(key: rsa.RSAPublicKey) -> bytes:
    """An RSA public key as the card-face APs store it: ``90 <e> 91 <n>`` (docs/card.md §6.7)."""
    numbers = key.public_numbers()
    exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return card_tlv(0x90, exponent) + card_tlv(0x91, modulus)


def sha256_digest_info(digest: bytes) -> bytes:
    """A SHA-256 DigestInfo around ``digest``; the length follows the digest, because visual
    EF0002 puts three concatenated digests in one (docs/card.md §6.8)."""
    inner = _SHA256_ALGORITHM + bytes((0x04, len(digest))) + digest
    return bytes((0x30,)) + tlv.encode_length(len(inner)) + inner


def sign_sha256(signer: RecordSigner, message: bytes) -> bytes:
    """PKCS#1 v1.5 with SHA-256 over ``message`` (sha256WithRSAEncryption)."""
    return signer.sign_pkcs1_v15(sha256_digest_info(hashlib.sha256(message).digest()))


def key_id(number: str) -> bytes:
    """A 16-byte key id: ``"5000033" 08 05 "001" 00 00 00 00`` (docs/card.md §6.5)."""
    if len(number) != 7 or not number.isdigit():
        raise DataError(f"a key id number has 7 digits, not {number!r}")
    return number.encode("ascii") + b"\x08\x05" + b"001" + bytes(4)


def municipality_key_number(municipality_code: str) -> str:
    """The municipality key's id number: ``8`` + the 5-digit code + ``1`` (sandbox choice;
    real cards name "the municipality's own" key, docs/card.md §6.5)."""
    return f"8{municipality_code}1"


def pad_to_size(content: bytes, size: int | None, what: str) -> bytes:
    """Extend ``content`` with FF filler to the profile's physical ``size`` (docs/card.md
    §6.1, §6.3)."""
    if size is None:
        return content
    if len(content) > size:
        raise DataError(f"{what} needs {len(content)} bytes but the profile gives the file {size}")
    return content + bytes([FILLER]) * (size - len(content))


# -- JPKI AP --------------------------------------------------------------------------------------


def token_info(label: str, serial_number: str) -> bytes:
    """EF0006: PKCS#11 ``CK_TOKEN_INFO``, 160 bytes, 32-bit big-endian integers
    (docs/card.md §6.10)."""

    def text(value: str, width: int) -> bytes:
        encoded = value.encode("ascii")
        if len(encoded) > width:
            raise DataError(f"token field {value!r} is longer than {width} bytes")
        return encoded.ljust(width, b" ")  # real cards pad with spaces (docs/card.md §11.8)

    def u32(value: int) -> bytes:
        return value.to_bytes(4, "big")

    content = (
        text(label, 32)
        + text(CK_MANUFACTURER_ID, 32)
        + text(CK_MODEL, 16)
        + text(serial_number[-16:], 16)
        + u32(CK_FLAGS)
        + u32(_UNAVAILABLE)  # ulMaxSessionCount
        + u32(_UNAVAILABLE)  # ulSessionCount
        + u32(_UNAVAILABLE)  # ulMaxRwSessionCount
        + u32(_UNAVAILABLE)  # ulRwSessionCount
        + u32(CK_MAX_PIN_LENGTH)
        + u32(CK_MIN_PIN_LENGTH)
        + u32(_UNAVAILABLE) * 4  # total/free public/private memory
        + CK_HARDWARE_VERSION
        + CK_FIRMWARE_VERSION
        + b" " * 16  # utcTime: no clock on the card
    )
    assert len(content) == 160
    return content


def certificate_availability(*, sign: bool, auth: bool) -> bytes:
    """EF0008: ``8F 8F 00`` with both certificates (byte 0 sign, byte 1 auth,
    docs/card.md §3.1)."""
    return bytes(
        (CERTIFICATE_AVAILABLE if sign else 0x00, CERTIFICATE_AVAILABLE if auth else 0x00, 0x00)
    )


# -- text AP --------------------------------------------------------------------------------------


def my_number_file(my_number: str) -> bytes:
    """EF0001 as a TLV, ``FF 10 0C`` + 12 ASCII digits (docs/card.md §6.3); the filler comes
    from the size."""
    if len(my_number) != 12 or not my_number.isdigit():
        raise DataError("a My Number has 12 digits")
    return card_tlv(0xFF10, my_number.encode("ascii"))


def with_offset_table(outer_tag: int, table_tag: int, objects: list[bytes]) -> bytes:
    """``outer { table, objects… }`` where the table holds each object's offset from the start
    of the file as a big-endian u16 (docs/card.md §6.2, §6.8)."""
    table_length = len(card_tlv(table_tag, bytes(2 * len(objects))))
    body_length = table_length + sum(len(item) for item in objects)
    header_length = len(card_tlv(outer_tag, bytes(body_length))) - body_length
    offsets = b""
    position = header_length + table_length
    for item in objects:
        offsets += position.to_bytes(2, "big")
        position += len(item)
    return card_tlv(outer_tag, card_tlv(table_tag, offsets) + b"".join(objects))


def basic_info_file(persona: Persona) -> bytes:
    """EF0002: ``FF20 {DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex}``
    (docs/card.md §6.2)."""
    return with_offset_table(0xFF20, 0xDF21, _basic_info_objects(persona))


def _basic_info_objects(persona: Persona) -> list[bytes]:
    return [
        card_tlv(0xDF22, persona.name.encode("utf-8")),
        card_tlv(0xDF23, persona.address.encode("utf-8")),
        card_tlv(0xDF24, persona.birth_date.strftime("%Y%m%d").encode("ascii")),
        card_tlv(0xDF25, persona.sex.card_code.encode("ascii")),
    ]


def basic_info_digest_source(basic_info: bytes) -> bytes:
    """What DF32 hashes: EF0002's outer value with the DF21 offset table skipped
    (docs/card.md §6.4)."""
    outer, _ = tlv.parse_one(basic_info)
    table, after_table = tlv.parse_one(outer.value)
    if table.tag != 0xDF21:
        raise DataError("the basic-4 file does not start with its offset table")
    return outer.value[after_table:]


def integrity_record(
    my_number_physical: bytes, basic_info: bytes, municipality_key: RecordSigner
) -> bytes:
    """EF0003: ``FF30 {DF31 SHA-256(EF0001 physical), DF32 SHA-256(EF0002 without DF21),
    DF33 signature over the DF31‖DF32 objects}`` (docs/card.md §6.4)."""
    signed = card_tlv(0xDF31, hashlib.sha256(my_number_physical).digest()) + card_tlv(
        0xDF32, hashlib.sha256(basic_info_digest_source(basic_info)).digest()
    )
    return card_tlv(0xFF30, signed + card_tlv(0xDF33, sign_sha256(municipality_key, signed)))


def cv_certificate(
    issuer_key_number: str,
    subject_key_number: str,
    subject_key: rsa.RSAPublicKey,
    card_ca: RecordSigner,
) -> bytes:
    """EF0004: ``7F21 {5F4E body(297), 5F37 signature}``; the body is issuer key id ‖ subject
    key id ‖ ``90/91`` public key, signed PKCS#1 v1.5 SHA-256 (docs/card.md §6.5)."""
    body = key_id(issuer_key_number) + key_id(subject_key_number) + public_key_value(subject_key)
    if len(body) != 297:
        raise DataError(f"a CV certificate body has 297 bytes, not {len(body)}")
    return card_tlv(0x7F21, card_tlv(0x5F4E, body) + card_tlv(0x5F37, sign_sha256(card_ca, body)))


def text_ap_basic_info(opaque: bytes) -> bytes:
    """EF0005: ``FF40 {DF41 01 03 0E 01, DF42 key id, DF43 128 bytes}`` (docs/card.md §6.6).
    DF43 is 32 bytes then 96 FF on every card myna-card examined; ``opaque`` gives the 32."""
    if len(opaque) != 32:
        raise DataError("text AP basic info takes 32 opaque bytes")
    return card_tlv(
        0xFF40,
        card_tlv(0xDF41, TEXT_AP_IDENTIFICATION)
        + card_tlv(0xDF42, key_id(TEXT_BASIC_INFO_KEY_NUMBER))
        + card_tlv(0xDF43, opaque + bytes([FILLER]) * 96),
    )


# -- visual AP ------------------------------------------------------------------------------------


def age_record(
    birth_date: dt.date, card_key: rsa.RSAPublicKey, municipality_key: RecordSigner
) -> bytes:
    """EF0001: ``FF10 {DF11 birth, DF12 card key, DF13 signature over DF11‖DF12}``
    (docs/card.md §6.9)."""
    signed = card_tlv(0xDF11, birth_date.strftime("%Y%m%d").encode("ascii")) + card_tlv(
        0xDF12, public_key_value(card_key)
    )
    return card_tlv(0xFF10, signed + card_tlv(0xDF13, sign_sha256(municipality_key, signed)))


def card_face(
    persona: Persona,
    card_key: rsa.RSAPublicKey,
    municipality_key: RecordSigner,
    images: CardImages,
) -> bytes:
    """EF0002 (docs/card.md §6.8). DF28 signs DigestInfo(SHA-256 of DF22‖DF23‖DF24, of
    DF25‖DF26, of DF27: one 96-byte OCTET STRING); DF29 and DF2A come after it and are not
    covered."""
    birth = card_tlv(0xDF22, persona.birth_date.strftime("%Y%m%d").encode("ascii"))
    sex = card_tlv(0xDF23, persona.sex.card_code.encode("ascii"))
    key = card_tlv(0xDF24, public_key_value(card_key))
    name = card_tlv(0xDF25, images.name)
    address = card_tlv(0xDF26, images.address)
    photo = card_tlv(0xDF27, images.photo)
    digests = (
        hashlib.sha256(birth + sex + key).digest()
        + hashlib.sha256(name + address).digest()
        + hashlib.sha256(photo).digest()
    )
    signature = card_tlv(0xDF28, municipality_key.sign_pkcs1_v15(sha256_digest_info(digests)))
    expiry = card_tlv(0xDF29, persona.card_expiry.strftime("%Y%m%d").encode("ascii"))
    security_code = card_tlv(0xDF2A, images.security_code)
    return with_offset_table(
        0xFF20,
        0xDF21,
        [birth, sex, key, name, address, photo, signature, expiry, security_code],
    )


def visual_ap_basic_info(municipality_code: str, opaque: bytes) -> bytes:
    """EF0003: ``FF30 {DF31 06 03 0E 01, DF32 key id, DF33 version, DF34 municipality,
    DF35 key id + 256 opaque bytes}`` (docs/card.md §6.9)."""
    if len(opaque) != RSA_MODULUS_BYTES:
        raise DataError("visual AP basic info takes 256 opaque bytes")
    return card_tlv(
        0xFF30,
        card_tlv(0xDF31, VISUAL_AP_IDENTIFICATION)
        + card_tlv(0xDF32, key_id(VISUAL_BASIC_INFO_KEY_NUMBER))
        + card_tlv(0xDF33, VISUAL_AP_VERSION)
        + card_tlv(0xDF34, municipality_code.encode("ascii"))
        + card_tlv(0xDF35, key_id(VISUAL_BASIC_INFO_KEY_NUMBER) + opaque),
    )


def my_number_image(
    image: bytes, card_key: rsa.RSAPublicKey, municipality_key: RecordSigner
) -> bytes:
    """EF0005: ``FF40 {DF41 PNG, DF42 card key, DF43 signature over DF41‖DF42}``
    (docs/card.md §6.9)."""
    signed = card_tlv(0xDF41, image) + card_tlv(0xDF42, public_key_value(card_key))
    return card_tlv(0xFF40, signed + card_tlv(0xDF43, sign_sha256(municipality_key, signed)))


# -- common AP ------------------------------------------------------------------------------------


def card_info_record(card_serial: str, municipality_code: str, expiry: dt.date) -> bytes:
    """Record 1 of EF0001: simple TLV ``01 1C`` serial(15) ‖ municipality(5) ‖ expiry
    (docs/card.md §6.11)."""
    if len(card_serial) != 15 or not card_serial.isdigit():
        raise DataError("a card serial has 15 digits")
    if len(municipality_code) != 5 or not municipality_code.isdigit():
        raise DataError("a municipality code has 5 digits")
    value = (card_serial + municipality_code + expiry.strftime("%Y%m%d")).encode("ascii")
    return tlv.encode_simple(0x01, value)


# -- images ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardImages:
    name: bytes  # PNG, 1-bit
    address: bytes  # PNG, 1-bit
    photo: bytes  # JPEG 2000 in a JP2 container, greyscale
    security_code: bytes  # PNG, 24x12
    my_number: bytes  # PNG, 72x12


def render_images(persona: Persona) -> CardImages:
    """Small, legible images of the card face, deterministic for a persona (Pillow's built-in
    6x11 bitmap font; ASCII romanisation instead of kanji, so no font file is needed)."""
    return CardImages(
        name=_text_png(persona.name_roman),
        address=_text_png(persona.address_roman),
        photo=_photo_jp2(persona.seed),
        security_code=_text_png(persona.security_code, size=(24, 12)),
        my_number=_text_png(persona.my_number, size=(72, 12)),
    )


def _text_png(text: str, size: tuple[int, int] | None = None) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()
    left, _top, right, _bottom = font.getbbox(text)
    width, height = size if size is not None else (right - left + 4, 16)
    image = Image.new("1", (width, height), 1)
    ImageDraw.Draw(image).text((0 if size else 2, 0 if size else 2), text, font=font, fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _photo_jp2(seed: str) -> bytes:
    """A greyscale head-and-shoulders drawing with film grain, JPEG 2000 in a JP2 container
    (docs/card.md §6.8). About 2 KB: large enough to need several 256-byte reads, as a real
    photo does."""
    from PIL import Image, ImageDraw

    # Seeded for reproducible images, not for secrecy.
    rng = random.Random(hashlib.sha256(b"photo:" + seed.encode()).digest())  # noqa: S311
    width, height = 96, 120
    image = Image.new("L", (width, height), 225)
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 88, 88, 160), fill=rng.randint(60, 120))  # shoulders
    draw.ellipse((24, 16, 72, 80), fill=rng.randint(150, 200))  # face
    draw.chord((22, 10, 74, 56), 180, 360, fill=rng.randint(20, 90))  # hair
    draw.ellipse((36, 42, 42, 48), fill=30)
    draw.ellipse((54, 42, 60, 48), fill=30)
    draw.arc((38, 54, 58, 70), 20, 160, fill=60)
    grain = bytes(rng.randint(0, 24) for _ in range(width * height))
    pixels = bytes(
        max(0, min(255, value + noise - 12))
        for value, noise in zip(image.tobytes(), grain, strict=True)
    )
    image = Image.frombytes("L", (width, height), pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG2000", quality_mode="rates", quality_layers=[5])
    photo = buffer.getvalue()
    if photo[4:8] != b"jP  ":
        raise DataError("Pillow did not write a JP2 container for the photo")
    return photo


# -- whole card -----------------------------------------------------------------------------------


class CardKeys(Protocol):
    """The keys the file builder needs: public halves of the card keys, signers for records."""

    def public_key(self, application: str, key_name: str) -> rsa.RSAPublicKey: ...

    @property
    def card_ca(self) -> RecordSigner: ...

    @property
    def municipality(self) -> RecordSigner: ...


@dataclass(frozen=True)
class CertificateFiles:
    """DER of the four JPKI certificates (docs/card.md §3.1); ``None`` when the card holds
    none of a kind."""

    auth: bytes | None
    sign: bytes | None
    auth_ca: bytes
    sign_ca: bytes


@dataclass(frozen=True)
class BuiltFiles:
    binary: dict[tuple[str, int], bytes]
    records: dict[tuple[str, int], tuple[bytes, ...]]


@dataclass(frozen=True)
class _Context:
    profile: CardProfile
    persona: Persona
    keys: CardKeys
    certificates: CertificateFiles
    images: CardImages
    built: dict[tuple[str, int], bytes]


def build_card_files(
    profile: CardProfile, persona: Persona, keys: CardKeys, certificates: CertificateFiles
) -> BuiltFiles:
    """Every EF the profile declares, filled for ``persona``. A file the builder does not know
    is a ``DataError``: the card never answers with made-up content."""
    needs_images = "visual" in profile.applications
    context = _Context(
        profile,
        persona,
        keys,
        certificates,
        render_images(persona) if needs_images else _NO_IMAGES,
        {},
    )
    records: dict[tuple[str, int], tuple[bytes, ...]] = {}
    for application in profile.applications.values():
        # Text EF0003 hashes EF0001 and EF0002, so build in file-id order (they come first).
        for file in sorted(application.files.values(), key=lambda item: item.file_id):
            builder = _BUILDERS.get((application.name, file.name))
            if builder is None:
                raise DataError(
                    f"the virtual card cannot fill {application.name} EF {file.file_id:04X} "
                    f"({file.name}); add a builder in mynakit.emulator.card_files"
                )
            content = builder(context)
            where = f"{application.name} EF {file.file_id:04X}"
            if file.structure == "record":
                records[(application.name, file.file_id)] = (content,)
            else:
                context.built[(application.name, file.file_id)] = pad_to_size(
                    content, file.size, where
                )
    return BuiltFiles(dict(context.built), records)


_NO_IMAGES = CardImages(b"", b"", b"", b"", b"")


def _opaque(persona: Persona, purpose: str, length: int) -> bytes:
    """Bytes whose meaning is unknown on real cards, deterministic per persona."""
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += hashlib.sha256(f"{purpose}:{persona.seed}:{counter}".encode()).digest()
        counter += 1
    return stream[:length]


def _built(context: _Context, application: str, name: str) -> bytes:
    file = context.profile.application(application).file(name)
    try:
        return context.built[(application, file.file_id)]
    except KeyError:
        raise DataError(
            f"{application} {name} must be built before the files that hash it"
        ) from None


def _required(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise DataError(f"the card profile has a {what} file but no certificate was issued")
    return value


_BUILDERS: Mapping[tuple[str, str], Callable[[_Context], bytes]] = {
    ("jpki", "sign_certificate"): lambda c: _required(c.certificates.sign, "sign certificate"),
    ("jpki", "sign_ca_certificate"): lambda c: c.certificates.sign_ca,
    ("jpki", "token"): lambda c: token_info(c.profile.token_label, c.persona.card_serial),
    ("jpki", "certificate_availability"): lambda c: certificate_availability(
        sign=c.certificates.sign is not None, auth=c.certificates.auth is not None
    ),
    ("jpki", "auth_certificate"): lambda c: _required(c.certificates.auth, "auth certificate"),
    ("jpki", "auth_ca_certificate"): lambda c: c.certificates.auth_ca,
    ("text", "my_number"): lambda c: my_number_file(c.persona.my_number),
    ("text", "basic_info"): lambda c: basic_info_file(c.persona),
    ("text", "integrity_record"): lambda c: integrity_record(
        _built(c, "text", "my_number"), _built(c, "text", "basic_info"), c.keys.municipality
    ),
    ("text", "ap_certificate"): lambda c: cv_certificate(
        CARD_CA_TEXT_KEY_NUMBER,
        municipality_key_number(c.persona.municipality_code),
        c.keys.municipality.public_key(),
        c.keys.card_ca,
    ),
    ("text", "ap_basic_info"): lambda c: text_ap_basic_info(_opaque(c.persona, "text-df43", 32)),
    ("visual", "age_record"): lambda c: age_record(
        c.persona.birth_date, c.keys.public_key("visual", "ap_signing_key"), c.keys.municipality
    ),
    ("visual", "card_face"): lambda c: card_face(
        c.persona, c.keys.public_key("visual", "ap_signing_key"), c.keys.municipality, c.images
    ),
    ("visual", "ap_basic_info"): lambda c: visual_ap_basic_info(
        c.persona.municipality_code, _opaque(c.persona, "visual-df35", RSA_MODULUS_BYTES)
    ),
    ("visual", "ap_certificate"): lambda c: cv_certificate(
        CARD_CA_VISUAL_KEY_NUMBER,
        municipality_key_number(c.persona.municipality_code),
        c.keys.municipality.public_key(),
        c.keys.card_ca,
    ),
    ("visual", "my_number_image"): lambda c: my_number_image(
        c.images.my_number, c.keys.public_key("visual", "ap_signing_key"), c.keys.municipality
    ),
    ("common", "card_info"): lambda c: card_info_record(
        c.persona.card_serial, c.persona.municipality_code, c.persona.card_expiry
    ),
}
