"""The file builders reproduce docs/card.md §6 byte for byte (pure functions)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.emulator import card_files
from mynakit.emulator.personas import generate_persona
from mynakit.errors import DataError
from mynakit.iso7816 import tlv
from mynakit.personal import Sex

pytestmark = pytest.mark.unit

# EF0002 of myna-card's test card (docs/card.md §6.2), holder data synthetic.
MC_BASIC_INFO = bytes.fromhex(
    "ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99f"
    "df2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d"
    "97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df240831393830"
    "30323137df250131"
)


class Signer:
    """A software signer standing in for the card's municipality key (a real RSA key)."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign_pkcs1_v15(self, payload: bytes) -> bytes:
        from mynakit.emulator.state import CardKey

        return CardKey(self._key).sign_pkcs1_v15(payload)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def test_basic_info_file_matches_the_reference_bytes() -> None:
    persona = dataclasses.replace(
        generate_persona(1),
        name="黒桐\u3000幹也",
        address="東京都清瀬市観布子南１２－７－２０２",
        birth_date=dt.date(1980, 2, 17),
        sex=Sex.MALE,
    )
    assert card_files.basic_info_file(persona) == MC_BASIC_INFO


def test_my_number_file() -> None:
    assert card_files.my_number_file("537686677188") == b"\xff\x10\x0c537686677188"
    padded = card_files.pad_to_size(card_files.my_number_file("537686677188"), 17, "EF0001")
    assert padded.endswith(b"\xff\xff") and len(padded) == 17
    with pytest.raises(DataError):
        card_files.my_number_file("12345")


def test_pad_to_size() -> None:
    assert card_files.pad_to_size(b"ab", None, "x") == b"ab"
    with pytest.raises(DataError):
        card_files.pad_to_size(b"abc", 2, "x")


def test_card_tlv_uses_the_82_form_for_long_values() -> None:
    assert card_files.card_tlv(0xDF25, b"1") == b"\xdf\x25\x01\x31"
    assert card_files.card_tlv(0xDF43, bytes(0x80))[:5] == b"\xdf\x43\x82\x00\x80"
    assert card_files.card_tlv(0xFF10, bytes(300))[:5] == b"\xff\x10\x82\x01\x2c"


def test_common_ap_record_matches_the_reference() -> None:
    record = card_files.card_info_record("400000012719843", "13221", dt.date(2035, 2, 17))
    assert record == b"\x01\x1c" + b"400000012719843" + b"13221" + b"20350217"
    assert tlv.parse_simple(record) == [(0x01, b"4000000127198431322120350217")]


def test_token_info_layout() -> None:
    token = card_files.token_info("JPKIAPICCTOKEN2", "400000012719843")
    assert len(token) == 160
    assert token[:32] == b"JPKIAPICCTOKEN2" + b" " * 17
    assert token[64:80] == b"E16R01NJ".ljust(16)
    assert int.from_bytes(token[96:100], "big") == 0x40D
    assert int.from_bytes(token[116:120], "big") == 16
    assert int.from_bytes(token[120:124], "big") == 6
    assert token[140:144] == b"0301"


def test_certificate_availability() -> None:
    assert card_files.certificate_availability(sign=True, auth=True) == b"\x8f\x8f\x00"
    assert card_files.certificate_availability(sign=False, auth=True) == b"\x00\x8f\x00"


def test_digest_info_of_one_and_of_three_digests() -> None:
    one = card_files.sha256_digest_info(bytes(32))
    assert one[:2] == b"\x30\x31" and one[17:19] == b"\x04\x20" and len(one) == 51
    three = card_files.sha256_digest_info(bytes(96))
    assert three[:2] == b"\x30\x71" and three[17:19] == b"\x04\x60" and len(three) == 115


def test_key_id_layout() -> None:
    assert card_files.key_id("5000033") == b"5000033\x08\x05001\x00\x00\x00\x00"
    with pytest.raises(DataError):
        card_files.key_id("50000")


def test_public_key_value(signer: Signer) -> None:
    value = card_files.public_key_value(signer.public_key())
    assert value[:9] == b"\x90\x03\x01\x00\x01\x91\x82\x01\x00"
    assert len(value) == 265


def test_integrity_record_is_byte_exact_and_verifies(signer: Signer) -> None:
    my_number = card_files.pad_to_size(card_files.my_number_file("537686677188"), 17, "EF0001")
    record = card_files.integrity_record(my_number, MC_BASIC_INFO, signer)
    assert record[:5] == b"\xff\x30\x82\x01\x4b" and len(record) == 336  # docs/card.md §6.4
    assert record[5:8] == b"\xdf\x31\x20" and record[8:40] == hashlib.sha256(my_number).digest()
    attributes = MC_BASIC_INFO[3 + 11 :]  # the outer value after the DF21 table
    assert record[40:43] == b"\xdf\x32\x20" and record[43:75] == hashlib.sha256(attributes).digest()
    assert record[75:80] == b"\xdf\x33\x82\x01\x00"
    signer.public_key().verify(record[80:], record[5:75], padding.PKCS1v15(), hashes.SHA256())


def test_cv_certificate_shape_and_signature(signer: Signer) -> None:
    subject = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    certificate = card_files.cv_certificate("9000033", "8131011", subject, signer)
    assert certificate[:10] == b"\x7f\x21\x82\x02\x33\x5f\x4e\x82\x01\x29"  # docs/card.md §6.5
    assert len(certificate) == 568
    body = certificate[10 : 10 + 297]
    assert body[:16] == card_files.key_id("9000033")
    assert certificate[307:312] == b"\x5f\x37\x82\x01\x00"
    signer.public_key().verify(certificate[312:], body, padding.PKCS1v15(), hashes.SHA256())


def test_text_ap_basic_info_header() -> None:
    built = card_files.text_ap_basic_info(bytes(range(32)))
    # jpki/myna's test vector header (docs/card.md §6.6)
    assert built[:5] == b"\xff\x40\x82\x00\x9f"
    assert built[5:11] == b"\xdf\x41\x04\x01\x03\x0e"
    assert built.endswith(b"\xff" * 96)


def test_age_record_header(signer: Signer) -> None:
    record = card_files.age_record(dt.date(1980, 2, 17), signer.public_key(), signer)
    assert record[:5] == b"\xff\x10\x82\x02\x1e" and len(record) == 547  # docs/card.md §6.9


def test_visual_basic_info(signer: Signer) -> None:
    built = card_files.visual_ap_basic_info("13101", bytes(256))
    outer, _ = tlv.parse_one(built)
    assert outer.tag == 0xFF30
    assert outer.child(0xDF31).value == b"\x06\x03\x0e\x01"
    assert outer.child(0xDF34).value == b"13101"
    assert len(outer.child(0xDF35).value) == 16 + 256


def test_offset_table_points_at_each_object() -> None:
    objects = [card_files.card_tlv(0xDF22, bytes(n)) for n in (5, 200, 40)]
    built = card_files.with_offset_table(0xFF20, 0xDF21, objects)
    table = tlv.parse_one(built)[0].child(0xDF21).value
    offsets = [int.from_bytes(table[i : i + 2], "big") for i in range(0, 6, 2)]
    assert [built[o : o + len(item)] for o, item in zip(offsets, objects, strict=True)] == objects


def test_images_are_png_and_jp2() -> None:
    images = card_files.render_images(generate_persona("images"))
    for png in (images.name, images.address, images.security_code, images.my_number):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert images.photo[4:8] == b"jP  "
    assert card_files.render_images(generate_persona("images")) == images  # deterministic

    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(images.my_number)).size == (72, 12)
    assert Image.open(BytesIO(images.security_code)).size == (24, 12)
    assert Image.open(BytesIO(images.name)).mode == "1"
