"""Parsers of the card sessions, on byte vectors built from the exact layouts of docs/card.md
(docs/card.md §6.2-§6.11), including truncated and malformed files: always a DataError, never
another exception."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from mynakit.card.common import CardInfo, parse_card_info
from mynakit.card.cv_certificate import CvCertificate, key_id_text, parse_rsa_public_key
from mynakit.card.jpki import DIGEST_INFO_PREFIXES, digest_info
from mynakit.card.text import (
    IntegrityRecord,
    TextApBasicInfo,
    basic_info_digest_input,
    parse_basic_info,
    parse_my_number,
)
from mynakit.card.visual import (
    JP2_SIGNATURE,
    PNG_SIGNATURE,
    AgeRecord,
    VisualApBasicInfo,
    image_format,
    parse_card_face,
)
from mynakit.errors import DataError, UsageError
from mynakit.personal import Sex

pytestmark = pytest.mark.unit

# -- vectors --------------------------------------------------------------------------------------

# docs/card.md §6.3: FF 10 0C + 12 digits + FF FF filler; 123456789018 is well formed (Appendix A).
MY_NUMBER_FILE = bytes.fromhex("FF100C") + b"123456789018" + b"\xff\xff"

NAME = "黒桐　幹也"
ADDRESS = "東京都千代田区霞が関二丁目一番二号１"  # 54 UTF-8 bytes, as DF23's 0x36
# docs/card.md §6.2, myna-card's fixture layout byte for byte (holder data synthetic).
BASIC_INFO_FILE = (
    bytes.fromhex("ff2065 df2108 000e 0020 0059 0064")
    + bytes.fromhex("df220f")
    + NAME.encode()
    + bytes.fromhex("df2336")
    + ADDRESS.encode()
    + bytes.fromhex("df2408")
    + b"19800217"
    + bytes.fromhex("df2501")
    + b"1"
)

# docs/card.md §6.11, the record of myna-card's common.rs.
CARD_INFO_RECORD = bytes.fromhex("011C") + b"400000012719843" + b"13221" + b"20350217"

TEXT_KEY_ID = b"5000033" + bytes.fromhex("0805") + b"001" + bytes(4)
CA_KEY_ID = b"5000020" + bytes.fromhex("0805") + b"001" + bytes(3) + b"\xa8"


@pytest.fixture(scope="module")
def ap_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def card_public_key(key: rsa.RSAPublicKey) -> bytes:
    """docs/card.md §6.7: 90 03 010001 91 82 0100 <modulus>."""
    modulus = key.public_numbers().n.to_bytes(256, "big")
    return bytes.fromhex("9003010001 91820100") + modulus


def long_tlv(tag: bytes, value: bytes) -> bytes:
    """A TLV with the 82 LL LL length form the card uses for long objects."""
    if len(value) < 0x80:
        return tag + bytes((len(value),)) + value
    if len(value) < 0x100:
        return tag + b"\x81" + bytes((len(value),)) + value
    return tag + b"\x82" + len(value).to_bytes(2, "big") + value


def cv_certificate(subject: rsa.RSAPrivateKey, issuer: rsa.RSAPrivateKey) -> bytes:
    """docs/card.md §6.5: 7F21 82 0233 {5F4E 82 0129 <297>, 5F37 82 0100 <256>}."""
    body = CA_KEY_ID + TEXT_KEY_ID + card_public_key(subject.public_key())
    signature = issuer.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return long_tlv(b"\x7f\x21", long_tlv(b"\x5f\x4e", body) + long_tlv(b"\x5f\x37", signature))


def integrity_file(key: rsa.RSAPrivateKey, my_number_file: bytes, basic_info: bytes) -> bytes:
    """docs/card.md §6.4: FF30 82 014B {DF31 20, DF32 20, DF33 82 0100}."""
    df31 = bytes.fromhex("df3120") + hashlib.sha256(my_number_file).digest()
    df32 = bytes.fromhex("df3220") + hashlib.sha256(basic_info_digest_input(basic_info)).digest()
    signature = key.sign(df31 + df32, padding.PKCS1v15(), hashes.SHA256())
    return long_tlv(b"\xff\x30", df31 + df32 + long_tlv(b"\xdf\x33", signature))


def png(width: int) -> bytes:
    return PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + width.to_bytes(4, "big") + bytes(5)


PHOTO = JP2_SIGNATURE + b"\x00\x00\x00\x14ftypjp2 " + bytes(40)


def card_face_file(public_key: bytes, photo: bytes = PHOTO, signature: bytes = bytes(256)) -> bytes:
    """docs/card.md §6.8: FF20 {DF21 offsets (u16 from file start), DF22 .. DF2A}."""
    fields = [
        long_tlv(b"\xdf\x22", b"19800217"),
        long_tlv(b"\xdf\x23", b"2"),
        long_tlv(b"\xdf\x24", public_key),
        long_tlv(b"\xdf\x25", png(300)),
        long_tlv(b"\xdf\x26", png(600)),
        long_tlv(b"\xdf\x27", photo),
        long_tlv(b"\xdf\x28", signature),
        long_tlv(b"\xdf\x29", b"20350217"),
        long_tlv(b"\xdf\x2a", png(24)),
    ]
    table_length = 3 + 2 * len(fields)
    body_length = table_length + sum(map(len, fields))
    length_bytes = 1 if body_length < 0x80 else 2 if body_length < 0x100 else 3
    position = 2 + length_bytes + table_length
    offsets = b""
    for item in fields:
        offsets += position.to_bytes(2, "big")
        position += len(item)
    return long_tlv(b"\xff\x20", long_tlv(b"\xdf\x21", offsets) + b"".join(fields))


def raw_rsa_sign(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """PKCS#1 v1.5 type-1 padding of an arbitrary block, as the card does (docs/card.md §5.1
    P1=00)."""
    padded = b"\x00\x01" + b"\xff" * (256 - 3 - len(block)) + b"\x00" + block
    numbers = key.private_numbers()
    value = pow(int.from_bytes(padded, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(256, "big")


# -- My Number ------------------------------------------------------------------------------------


def test_my_number_parses_the_17_physical_bytes() -> None:
    assert parse_my_number(MY_NUMBER_FILE) == "123456789018"


def test_my_number_without_filler_also_parses() -> None:
    assert parse_my_number(MY_NUMBER_FILE[:15]) == "123456789018"


def test_my_number_with_a_wrong_check_digit_is_a_data_error_without_the_digits() -> None:
    with pytest.raises(DataError) as raised:
        parse_my_number(bytes.fromhex("FF100C") + b"123456789012" + b"\xff\xff")
    assert "1234" not in str(raised.value)


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("FF100B") + b"12345678901",  # 11 digits
        bytes.fromhex("FF100C") + b"12345678901A",  # not digits
        bytes.fromhex("DF100C") + b"123456789018",  # wrong tag
        b"\xff\xff" * 8,  # erased file
        b"",
    ],
)
def test_malformed_my_number_files(data: bytes) -> None:
    with pytest.raises(DataError):
        parse_my_number(data)


# -- basic-4 information --------------------------------------------------------------------------


def test_basic_info_fixture_layout() -> None:
    assert len(BASIC_INFO_FILE) == 3 + 0x65  # the fixture's length byte is right
    info = parse_basic_info(BASIC_INFO_FILE)
    assert info.name == NAME
    assert info.address == ADDRESS
    assert info.birth_date == dt.date(1980, 2, 17)
    assert info.sex is Sex.MALE
    assert repr(info) == "BasicInfo(<redacted>)"


def test_basic_info_ignores_filler_after_the_object() -> None:
    assert parse_basic_info(BASIC_INFO_FILE + b"\xff" * 20).name == NAME


def test_basic_info_digest_input_skips_the_offset_table() -> None:
    assert basic_info_digest_input(BASIC_INFO_FILE) == BASIC_INFO_FILE[14:]


def test_basic_info_with_a_wrong_offset_is_a_data_error() -> None:
    damaged = bytearray(BASIC_INFO_FILE)
    damaged[6] += 1  # DF22's offset, 0x0E -> 0x0F
    with pytest.raises(DataError, match="offset table"):
        parse_basic_info(bytes(damaged))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"\xdf\x25\x011", b"\xdf\x25\x017", "sex"),  # no sex code 7
        (b"19800217", b"19801317", "calendar"),  # month 13
        (b"19800217", b"1980021X", "8 ASCII digits"),
        (NAME.encode()[:3], b"\xff\xfe\xfd", "UTF-8"),
    ],
)
def test_basic_info_bad_values(old: bytes, new: bytes, message: str) -> None:
    assert BASIC_INFO_FILE.count(old) == 1
    with pytest.raises(DataError, match=message):
        parse_basic_info(BASIC_INFO_FILE.replace(old, new))


def test_every_truncation_of_basic_info_is_a_data_error() -> None:
    for length in range(len(BASIC_INFO_FILE)):
        with pytest.raises(DataError):
            parse_basic_info(BASIC_INFO_FILE[:length])


# -- integrity record and CV certificate ----------------------------------------------------------


def test_integrity_record_layout(ap_key: rsa.RSAPrivateKey) -> None:
    data = integrity_file(ap_key, MY_NUMBER_FILE, BASIC_INFO_FILE)
    assert len(data) == 336 and data[:5] == bytes.fromhex("FF3082014B")
    record = IntegrityRecord.parse(data)
    assert record.my_number_digest == hashlib.sha256(MY_NUMBER_FILE).digest()
    assert record.basic_info_digest == hashlib.sha256(BASIC_INFO_FILE[14:]).digest()
    assert record.signed_data == data[5:75]  # the DF31 and DF32 TLVs, 70 bytes
    ap_key.public_key().verify(
        record.signature, record.signed_data, padding.PKCS1v15(), hashes.SHA256()
    )


def test_integrity_record_truncations_and_damage(ap_key: rsa.RSAPrivateKey) -> None:
    data = integrity_file(ap_key, MY_NUMBER_FILE, BASIC_INFO_FILE)
    for length in (0, 1, 4, 5, 40, 74, 75, 200, 335):
        with pytest.raises(DataError):
            IntegrityRecord.parse(data[:length])
    short_digest = bytes.fromhex("FF304B") + bytes.fromhex("df311f") + bytes(31)
    short_digest += bytes.fromhex("df3220") + bytes(32) + bytes.fromhex("df3303") + bytes(3)
    with pytest.raises(DataError, match="32 bytes"):
        IntegrityRecord.parse(short_digest)


def test_cv_certificate_layout_and_chain(
    ap_key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey
) -> None:
    data = cv_certificate(ap_key, ca_key)
    assert data[:4] == bytes.fromhex("7F218202") and data[4] == 0x33
    assert data[5:10] == bytes.fromhex("5F4E820129")
    certificate = CvCertificate.parse(data + b"\xff" * 5)  # EF 0004 is 568 bytes with filler
    assert certificate.issuer_key_id == CA_KEY_ID
    assert certificate.subject_key_id == TEXT_KEY_ID
    assert certificate.public_key.public_numbers() == ap_key.public_key().public_numbers()
    assert certificate.is_signed_by(ca_key.public_key())
    assert not certificate.is_signed_by(ap_key.public_key())
    trusted = certificate.chain_check({CA_KEY_ID: [ca_key.public_key()]})
    assert trusted.verified
    unknown = certificate.chain_check(None)
    assert not unknown.verified and "chain not verified" in unknown.note
    wrong = certificate.chain_check({CA_KEY_ID: [ap_key.public_key()]})
    assert not wrong.verified


def test_key_id_text() -> None:
    assert key_id_text(TEXT_KEY_ID) == "5000033 (" + TEXT_KEY_ID.hex().upper() + ")"
    assert key_id_text(bytes(16)) == "00" * 16


def test_cv_certificate_malformed(ap_key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey) -> None:
    data = cv_certificate(ap_key, ca_key)
    for length in (0, 3, 5, 100, 305, 310, len(data) - 1):
        with pytest.raises(DataError):
            CvCertificate.parse(data[:length])
    no_key = long_tlv(b"\x7f\x21", long_tlv(b"\x5f\x4e", bytes(32)) + long_tlv(b"\x5f\x37", b"x"))
    with pytest.raises(DataError, match="no public key"):
        CvCertificate.parse(no_key)
    with pytest.raises(DataError, match="5F37"):
        CvCertificate.parse(long_tlv(b"\x7f\x21", long_tlv(b"\x5f\x4e", bytes(40))))


def test_rsa_public_key_needs_both_parts() -> None:
    with pytest.raises(DataError):
        parse_rsa_public_key(bytes.fromhex("9003010001"))
    with pytest.raises(DataError):
        parse_rsa_public_key(bytes.fromhex("900100910100"))  # zero exponent and modulus


def test_text_ap_basic_info() -> None:
    # docs/card.md §6.6: DF41 01 03 0E 01 observed; DF43 of 0x80 bytes.
    data = (
        bytes.fromhex("FF40819EDF410401030E01DF4210")
        + TEXT_KEY_ID
        + bytes.fromhex("DF438180")
        + bytes(range(128))
    )
    assert len(data) == 4 + 0x9E
    info = TextApBasicInfo.parse(data + b"\xff" * 92)  # 256 bytes read with filler
    assert (info.spec_version, info.extended_length, info.vendor_id, info.vendor_byte) == (
        1,
        3,
        14,
        1,
    )
    assert info.key_id == TEXT_KEY_ID
    assert info.to_dict()["key_id"] == TEXT_KEY_ID.hex().upper()
    with pytest.raises(DataError, match="DF41"):
        TextApBasicInfo.parse(bytes.fromhex("FF4003DF4100"))


# -- visual AP ------------------------------------------------------------------------------------


def test_card_face_layout(ap_key: rsa.RSAPrivateKey) -> None:
    data = card_face_file(card_public_key(ap_key.public_key()))
    face = parse_card_face(data)
    assert face.birth_date == dt.date(1980, 2, 17)
    assert face.sex is Sex.FEMALE
    assert face.expiry_date == dt.date(2035, 2, 17)
    assert image_format(face.name_image) == image_format(face.address_image) == "png"
    assert image_format(face.photo) == "jp2" and face.photo == PHOTO
    assert image_format(face.security_code_image) == "png"
    assert face.public_key.public_numbers() == ap_key.public_key().public_numbers()
    assert repr(face) == "CardFace(<redacted>)"
    # The first signed group is DF22..DF24 exactly as written, after the 9-entry table.
    table_end = 5 + 3 + 18  # FF20 82 LLLL, then DF21 12 <9 offsets>
    assert face.signed_groups[0] == data[table_end : table_end + 11 + 4 + 270]


def test_card_face_signed_digest_info_shape(ap_key: rsa.RSAPrivateKey) -> None:
    face = parse_card_face(card_face_file(card_public_key(ap_key.public_key())))
    block = face.signed_digest_info()
    # SEQUENCE { AlgorithmIdentifier sha256, OCTET STRING of 0x60 (three SHA-256) }
    # (docs/card.md §6.8)
    assert block[:19] == bytes.fromhex("3071300d060960864801650304020105000460")
    assert block[19:] == b"".join(hashlib.sha256(group).digest() for group in face.signed_groups)
    signature = raw_rsa_sign(ap_key, block)
    recovered = ap_key.public_key().recover_data_from_signature(signature, padding.PKCS1v15(), None)
    assert recovered == block


def test_card_face_photo_must_be_jp2(ap_key: rsa.RSAPrivateKey) -> None:
    data = card_face_file(card_public_key(ap_key.public_key()), photo=b"\xff\xd8\xff\xe0JFIF")
    with pytest.raises(DataError, match="JPEG 2000"):
        parse_card_face(data)


def test_card_face_truncations(ap_key: rsa.RSAPrivateKey) -> None:
    data = card_face_file(card_public_key(ap_key.public_key()))
    for length in [*range(0, 40), *range(40, len(data), 37)]:
        with pytest.raises(DataError):
            parse_card_face(data[:length])


def test_card_face_missing_object_is_a_data_error() -> None:
    only_birth = long_tlv(b"\xff\x20", bytes.fromhex("df2102 0008") + b"\xdf\x22\x0819800217")
    with pytest.raises(DataError, match="lacks"):
        parse_card_face(only_birth)


def test_age_record_layout(ap_key: rsa.RSAPrivateKey) -> None:
    df11 = bytes.fromhex("df1108") + b"19800217"
    df12 = long_tlv(b"\xdf\x12", card_public_key(ap_key.public_key()))
    signature = ap_key.sign(df11 + df12, padding.PKCS1v15(), hashes.SHA256())
    data = long_tlv(b"\xff\x10", df11 + df12 + long_tlv(b"\xdf\x13", signature))
    assert data[:5] == bytes.fromhex("FF1082021E") and len(data) == 547
    record = AgeRecord.parse(data)
    assert record.birth_date == dt.date(1980, 2, 17)
    assert record.signed_data == df11 + df12
    assert record.signature == signature
    for length in (0, 5, 16, 100, 546):
        with pytest.raises(DataError):
            AgeRecord.parse(data[:length])


def test_visual_ap_basic_info() -> None:
    data = long_tlv(
        b"\xff\x30",
        bytes.fromhex("DF3104 06030E01")
        + bytes.fromhex("DF3210")
        + TEXT_KEY_ID
        + bytes.fromhex("DF330102")
        + bytes.fromhex("DF3405")
        + b"13221"
        + long_tlv(b"\xdf\x35", bytes(16 + 256)),
    )
    info = VisualApBasicInfo.parse(data)
    assert info.ap_id == bytes.fromhex("06030E01")
    assert info.version == 2
    assert info.municipality_code == "13221"
    assert info.to_dict()["municipality_code"] == "13221"
    with pytest.raises(DataError, match="municipality"):
        VisualApBasicInfo.parse(data.replace(b"13221", b"1322X"))


# -- common AP ------------------------------------------------------------------------------------


def test_card_info_record() -> None:
    info = parse_card_info(CARD_INFO_RECORD)
    assert info == CardInfo("400000012719843", "13221", dt.date(2035, 2, 17))
    assert info.manufacture_number == "0000012719843"  # jpki/myna's value[2..15]
    assert info.to_dict()["expiry_date"] == "2035-02-17"


@pytest.mark.parametrize(
    "record",
    [
        b"",
        bytes.fromhex("011B") + b"40000001271984313221" + b"2035021",  # 27 digits
        bytes.fromhex("021C") + b"400000012719843" + b"13221" + b"20350217",  # tag 02
        bytes.fromhex("011C") + b"400000012719843" + b"13221" + b"20351317",  # month 13
        bytes.fromhex("011C") + b"400000012719843",  # truncated
    ],
)
def test_malformed_card_info_records(record: bytes) -> None:
    with pytest.raises(DataError):
        parse_card_info(record)


# -- DigestInfo -----------------------------------------------------------------------------------


def test_digest_info_prefixes_are_the_exact_bytes_of_the_reference() -> None:
    assert DIGEST_INFO_PREFIXES["sha1"].hex() == "3021300906052b0e03021a05000414"
    assert DIGEST_INFO_PREFIXES["sha256"].hex() == "3031300d060960864801650304020105000420"
    assert DIGEST_INFO_PREFIXES["sha384"].hex() == "3041300d060960864801650304020205000430"
    assert DIGEST_INFO_PREFIXES["sha512"].hex() == "3051300d060960864801650304020305000440"


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha384", "sha512"])
def test_digest_info_matches_what_cryptography_signs(name: str, ap_key: rsa.RSAPrivateKey) -> None:
    algorithm = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}.get(name) or (
        hashes.SHA384() if name == "sha384" else hashes.SHA512()
    )
    hasher = hashes.Hash(algorithm)
    hasher.update(b"message")
    block = digest_info(name, hasher.finalize())
    # A DigestInfo signed raw verifies as a normal PKCS#1 v1.5 signature of the message.
    ap_key.public_key().verify(
        raw_rsa_sign(ap_key, block), b"message", padding.PKCS1v15(), algorithm
    )


def test_digest_info_refuses_wrong_lengths_and_hashes() -> None:
    with pytest.raises(UsageError, match="32 bytes"):
        digest_info("sha256", bytes(20))
    with pytest.raises(UsageError, match="unsupported"):
        digest_info("md5", bytes(16))


# -- robustness: arbitrary bytes are parsed or refused with a DataError ---------------------------

_PARSERS = [
    parse_my_number,
    parse_basic_info,
    parse_card_face,
    parse_card_info,
    IntegrityRecord.parse,
    CvCertificate.parse,
    TextApBasicInfo.parse,
    VisualApBasicInfo.parse,
    AgeRecord.parse,
]


@settings(max_examples=300, deadline=None)
@given(
    parser=st.sampled_from(_PARSERS),
    data=st.one_of(
        st.binary(max_size=80),
        # Plausible openings: the right outer tags, so parsing gets past the first byte.
        st.builds(
            lambda head, rest: head + rest,
            st.sampled_from(
                [b"\xff\x10", b"\xff\x20", b"\xff\x30", b"\xff\x40", b"\x7f\x21", b"\x01\x1c"]
            ),
            st.binary(max_size=80),
        ),
    ),
)
def test_arbitrary_bytes_never_raise_anything_but_data_error(parser: object, data: bytes) -> None:
    with contextlib.suppress(DataError):
        parser(data)  # type: ignore[operator]
