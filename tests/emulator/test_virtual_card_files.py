"""The card-face records read off the virtual card verify the way a relying party checks a real
card (docs/card.md §6.4, §6.5, §6.8, §6.9): CV certificate against the card CA, records
against the certified key."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona
from mynakit.iso7816 import tlv
from mynakit.personal import is_valid_my_number
from mynakit.profiles import load_profile

pytestmark = pytest.mark.emulator

PROFILE = load_profile()


def read(
    card: VirtualCard,
    application: str,
    file_name: str,
    key: tuple[str, str] | None = None,
    persona: Persona | None = None,
) -> bytes:
    ap = PROFILE.application(application)
    assert card.execute(bytes((0, 0xA4, 4, 0x0C, len(ap.aid))) + ap.aid) == b"\x90\x00"
    if key is not None:
        assert persona is not None
        value = persona.reference_data(key[1]).encode()
        key_id = ap.key(key[1]).key_id
        assert card.execute(bytes((0, 0x20, 0, 0x80 | key_id, len(value))) + value) == b"\x90\x00"
    short_id = ap.file(file_name).file_id
    response = card.execute(bytes((0, 0xB0, 0x80 | short_id, 0, 0, 0, 0)))
    assert response[-2:] == b"\x90\x00"
    return response[:-2]


def public_key(value: bytes) -> rsa.RSAPublicKey:
    parts = {item.tag: item.value for item in tlv.parse_all(value)}
    return rsa.RSAPublicNumbers(
        int.from_bytes(parts[0x90], "big"), int.from_bytes(parts[0x91], "big")
    ).public_key()


def certified_key(card: VirtualCard, application: str) -> rsa.RSAPublicKey:
    """Verify EF0004 against the card CA and return the key it certifies."""
    raw = read(card, application, "ap_certificate")
    certificate, _ = tlv.parse_one(raw)
    assert raw[:5] == b"\x7f\x21\x82\x02\x33"  # docs/card.md §6.5, 568 bytes in all
    assert len(raw) == 568
    body = certificate.child(0x5F4E).value
    signature = certificate.child(0x5F37).value
    card_ca = card.state.card_ca_public_key()
    assert card_ca is not None
    card_ca.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    return public_key(body[32:])


def objects_before(value: bytes, tag: int) -> bytes:
    """The bytes of every object before ``tag``, as written: what the signatures cover."""
    offset = 0
    while True:
        header = tlv.read_header(value, offset)
        if header.tag == tag:
            return value[:offset]
        offset += header.total_length


def test_text_integrity_record_verifies(virtual_card: VirtualCard, persona: Persona) -> None:
    my_number_file = read(virtual_card, "text", "my_number", ("text", "text_pin"), persona)
    basic_info = read(virtual_card, "text", "basic_info", ("text", "text_pin"), persona)
    integrity = read(virtual_card, "text", "integrity_record", ("text", "text_pin"), persona)
    assert len(my_number_file) == 17 and len(integrity) == 336
    assert integrity[:5] == b"\xff\x30\x82\x01\x4b"  # docs/card.md §6.4, byte for byte
    record, _ = tlv.parse_one(integrity)
    assert record.child(0xDF31).value == hashlib.sha256(my_number_file).digest()
    outer, _ = tlv.parse_one(basic_info)
    _, after_table = tlv.parse_one(outer.value)
    assert record.child(0xDF32).value == hashlib.sha256(outer.value[after_table:]).digest()
    signed = integrity[5 : 5 + 70]  # the DF31 and DF32 objects
    certified_key(virtual_card, "text").verify(
        record.child(0xDF33).value, signed, padding.PKCS1v15(), hashes.SHA256()
    )
    my_number = tlv.parse_one(my_number_file)[0].value.decode()
    assert my_number == persona.my_number and is_valid_my_number(my_number)


def test_basic_info_offsets_point_at_each_object(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    raw = read(virtual_card, "text", "basic_info", ("text", "text_pin"), persona)
    outer, _ = tlv.parse_one(raw)
    table = outer.child(0xDF21).value
    offsets = [int.from_bytes(table[i : i + 2], "big") for i in range(0, len(table), 2)]
    tags = [tlv.read_header(raw, offset).tag for offset in offsets]
    assert tags == [0xDF22, 0xDF23, 0xDF24, 0xDF25]
    assert outer.child(0xDF22).value.decode() == persona.name
    assert "\u3000" in persona.name
    assert outer.child(0xDF24).value == persona.birth_date.strftime("%Y%m%d").encode()


def test_visual_card_face_signature_verifies(virtual_card: VirtualCard, persona: Persona) -> None:
    raw = read(virtual_card, "visual", "card_face", ("visual", "check_code_b"), persona)
    face, _ = tlv.parse_one(raw)
    table = face.child(0xDF21).value
    offsets = [int.from_bytes(table[i : i + 2], "big") for i in range(0, len(table), 2)]
    objects = {}
    for offset in offsets:
        header = tlv.read_header(raw, offset)
        objects[header.tag] = raw[offset : offset + header.total_length]
    assert list(objects) == list(range(0xDF22, 0xDF2B))
    digests = (
        hashlib.sha256(objects[0xDF22] + objects[0xDF23] + objects[0xDF24]).digest()
        + hashlib.sha256(objects[0xDF25] + objects[0xDF26]).digest()
        + hashlib.sha256(objects[0xDF27]).digest()
    )
    digest_info = (
        bytes.fromhex("3071300D060960864801650304020105000460") + digests
    )  # one DigestInfo with a 96-byte OCTET STRING (docs/card.md §6.8)
    signature = face.child(0xDF28).value
    key = certified_key(virtual_card, "visual")
    numbers = key.public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block == b"\x00\x01" + b"\xff" * (256 - 3 - len(digest_info)) + b"\x00" + digest_info
    photo = face.child(0xDF27).value
    assert photo[4:8] == b"jP  "
    assert face.child(0xDF25).value.startswith(b"\x89PNG\r\n\x1a\n")
    assert face.child(0xDF29).value == persona.card_expiry.strftime("%Y%m%d").encode()


def test_visual_age_record_and_my_number_image_verify(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    age = read(virtual_card, "visual", "age_record", ("visual", "birth_date_code"), persona)
    assert age[:5] == b"\xff\x10\x82\x02\x1e"  # docs/card.md §6.9: 547 bytes
    record, _ = tlv.parse_one(age)
    key = certified_key(virtual_card, "visual")
    signed = objects_before(record.value, 0xDF13)
    assert len(signed) == 11 + 270  # DF11 08 <date>, DF12 82 01 09 <key>
    key.verify(record.child(0xDF13).value, signed, padding.PKCS1v15(), hashes.SHA256())
    image = read(virtual_card, "visual", "my_number_image", ("visual", "check_code_a"), persona)
    image_record, _ = tlv.parse_one(image)
    signed = objects_before(image_record.value, 0xDF43)
    key.verify(image_record.child(0xDF43).value, signed, padding.PKCS1v15(), hashes.SHA256())
    assert image_record.child(0xDF42).value == record.child(0xDF12).value  # the card key


def test_check_code_b_does_not_open_the_my_number_image(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    ap = PROFILE.application("visual")
    virtual_card.execute(bytes((0, 0xA4, 4, 0x0C, len(ap.aid))) + ap.aid)
    value = persona.check_code_b.encode()
    assert virtual_card.execute(bytes((0, 0x20, 0, 0x92, len(value))) + value) == b"\x90\x00"
    assert virtual_card.execute(bytes.fromhex("00B0850000")) == b"\x69\x82"


def test_jpki_token_and_availability(virtual_card: VirtualCard) -> None:
    token = read(virtual_card, "jpki", "token")
    assert len(token) == 160 and token[:32] == b"JPKIAPICCTOKEN2".ljust(32)
    assert read(virtual_card, "jpki", "certificate_availability") == b"\x8f\x8f\x00"


def test_ca_files_hold_the_issuer_roots(
    virtual_card: VirtualCard, sandbox_issuer: SandboxIssuer
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    assert read(
        virtual_card, "jpki", "auth_ca_certificate"
    ) == sandbox_issuer.auth_root.public_bytes(Encoding.DER)
    assert read(
        virtual_card, "jpki", "sign_ca_certificate"
    ) == sandbox_issuer.sign_root.public_bytes(Encoding.DER)


def test_auth_certificate_is_issued_by_the_sandbox_root(
    virtual_card: VirtualCard,
    sandbox_issuer: SandboxIssuer,
) -> None:
    from cryptography import x509

    certificate = x509.load_der_x509_certificate(read(virtual_card, "jpki", "auth_certificate"))
    root_key = sandbox_issuer.auth_root.public_key()
    assert isinstance(root_key, rsa.RSAPublicKey)
    assert certificate.signature_hash_algorithm is not None
    root_key.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        padding.PKCS1v15(),
        certificate.signature_hash_algorithm,
    )
