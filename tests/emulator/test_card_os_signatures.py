"""COMPUTE DIGITAL SIGNATURE (80 2A, docs/card.md §5.1, §7.7, §7.8, §7.13): signatures
verify with the certificate's public key, and the card refuses what it must."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.iso7816 import tlv
from mynakit.profiles import load_profile

pytestmark = pytest.mark.emulator

PROFILE = load_profile()
JPKI = PROFILE.application("jpki").aid
TEXT = PROFILE.application("text").aid
VISUAL = PROFILE.application("visual").aid
SHA256_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")
MESSAGE = b"nonce from the eligibility service"
DIGEST_INFO = SHA256_PREFIX + hashlib.sha256(MESSAGE).digest()


def run(card: VirtualCard, command: bytes) -> tuple[bytes, int]:
    response = card.execute(command)
    return response[:-2], int.from_bytes(response[-2:], "big")


def select(card: VirtualCard, p1: int, identifier: bytes) -> None:
    assert run(card, bytes((0x00, 0xA4, p1, 0x0C, len(identifier))) + identifier)[1] == 0x9000


def verify(card: VirtualCard, key_id: int, value: str) -> None:
    data = value.encode()
    assert run(card, bytes((0x00, 0x20, 0x00, 0x80 | key_id, len(data))) + data)[1] == 0x9000


def sign_command(p1: int, p2: int, data: bytes, le: bytes = b"\x00") -> bytes:
    return bytes((0x80, 0x2A, p1, p2, len(data))) + data + le


def certificate(card: VirtualCard, file_id: int) -> x509.Certificate:
    return x509.load_der_x509_certificate(card.state.files[("jpki", file_id)])


def auth_public_key(card: VirtualCard) -> rsa.RSAPublicKey:
    key = certificate(card, 0x000A).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_auth_signature_flow_of_7_7_verifies(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    select(virtual_card, 0x02, b"\x00\x18")
    verify(virtual_card, 0x00, persona.auth_pin)  # P2=80: the current key EF
    select(virtual_card, 0x02, b"\x00\x17")
    signature, status = run(virtual_card, sign_command(0x00, 0x80, DIGEST_INFO))
    assert status == 0x9000 and len(signature) == 256
    auth_public_key(virtual_card).verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_short_ef_id_gives_a_byte_identical_signature(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    by_sfi, status = run(virtual_card, sign_command(0x00, 0x97, DIGEST_INFO))
    assert status == 0x9000
    select(virtual_card, 0x02, b"\x00\x17")
    by_current, _ = run(virtual_card, sign_command(0x00, 0x80, DIGEST_INFO))
    assert by_sfi == by_current  # PKCS#1 v1.5 is deterministic (docs/card.md §5.1)


def test_sign_key_needs_the_sign_password(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    assert run(virtual_card, sign_command(0x00, 0x9A, DIGEST_INFO))[1] == 0x6982
    verify(virtual_card, 0x18, persona.auth_pin)  # the auth PIN does not open the sign key
    assert run(virtual_card, sign_command(0x00, 0x9A, DIGEST_INFO))[1] == 0x6982
    verify(virtual_card, 0x1B, persona.sign_password.upper())
    signature, status = run(virtual_card, sign_command(0x00, 0x9A, DIGEST_INFO))
    assert status == 0x9000
    key = certificate(virtual_card, 0x0001).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        auth_public_key(virtual_card).verify(
            signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256()
        )


def test_signature_without_pin_is_6982(virtual_card: VirtualCard) -> None:
    select(virtual_card, 0x04, JPKI)
    select(virtual_card, 0x02, b"\x00\x17")
    assert run(virtual_card, sign_command(0x00, 0x80, DIGEST_INFO)) == (b"", 0x6982)


@pytest.mark.parametrize("p1", [0x06, 0x10, 0xFF])
def test_scheme_outside_00_05_is_6a86(virtual_card: VirtualCard, persona: Persona, p1: int) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    assert run(virtual_card, sign_command(p1, 0x97, DIGEST_INFO))[1] == 0x6A86


@pytest.mark.parametrize(
    ("p1", "data"),
    [
        (0x00, bytes(246)),  # more than k-11 bytes
        (0x02, bytes(31)),  # must be exactly a SHA-256
        (0x04, bytes(33)),
    ],
)
def test_wrong_input_length_is_6700(
    virtual_card: VirtualCard, persona: Persona, p1: int, data: bytes
) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    assert run(virtual_card, sign_command(p1, 0x97, data))[1] == 0x6700


def test_empty_input_is_6700(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    assert run(virtual_card, b"\x80\x2a\x00\x97\x00")[1] == 0x6700  # Le only, no data


def test_le_shorter_than_the_signature_is_6700(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    assert run(virtual_card, sign_command(0x00, 0x97, DIGEST_INFO, le=b"\x80"))[1] == 0x6700


def test_p1_00_pads_whatever_is_supplied(virtual_card: VirtualCard, persona: Persona) -> None:
    # docs/card.md §5.1: the card does not check the DigestInfo; a raw RSA check shows the type-1
    # padding.
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    payload = b"not a DigestInfo"
    signature, status = run(virtual_card, sign_command(0x00, 0x97, payload))
    assert status == 0x9000
    numbers = auth_public_key(virtual_card).public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block == b"\x00\x01" + b"\xff" * (256 - 3 - len(payload)) + b"\x00" + payload


def test_schemes_01_to_05(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    verify(virtual_card, 0x18, persona.auth_pin)
    key = auth_public_key(virtual_card)
    numbers = key.public_numbers()
    digest = hashlib.sha256(MESSAGE).digest()

    bare, status = run(virtual_card, sign_command(0x01, 0x97, MESSAGE))
    assert status == 0x9000
    recovered = pow(int.from_bytes(bare, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert recovered.endswith(b"\x00" + digest) and recovered.startswith(b"\x00\x01\xff")

    wrapped, _ = run(virtual_card, sign_command(0x02, 0x97, digest))
    key.verify(wrapped, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))

    hashed, _ = run(virtual_card, sign_command(0x03, 0x97, MESSAGE))
    key.verify(hashed, MESSAGE, padding.PKCS1v15(), hashes.SHA256())

    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    pss_prehashed, _ = run(virtual_card, sign_command(0x04, 0x97, digest))
    key.verify(pss_prehashed, digest, pss, utils.Prehashed(hashes.SHA256()))
    pss_message, _ = run(virtual_card, sign_command(0x05, 0x97, MESSAGE))
    key.verify(pss_message, MESSAGE, pss, hashes.SHA256())


def test_jpki_has_no_credential_free_key(virtual_card: VirtualCard) -> None:
    select(virtual_card, 0x04, JPKI)
    assert run(virtual_card, sign_command(0x00, 0x00, DIGEST_INFO))[1] == 0x6A86


def test_signature_p2_errors(virtual_card: VirtualCard, persona: Persona) -> None:
    select(virtual_card, 0x04, JPKI)
    assert run(virtual_card, sign_command(0x00, 0x80, DIGEST_INFO))[1] == 0x6986  # no EF
    select(virtual_card, 0x02, b"\x00\x06")
    assert run(virtual_card, sign_command(0x00, 0x80, DIGEST_INFO))[1] == 0x6981  # not a key
    assert run(virtual_card, sign_command(0x00, 0x98, DIGEST_INFO))[1] == 0x6A88  # a PIN
    assert run(virtual_card, sign_command(0x00, 0x40, DIGEST_INFO))[1] == 0x6A86


def _public_key_from_tlv(value: bytes) -> rsa.RSAPublicKey:
    parts = {item.tag: item.value for item in tlv.parse_all(value)}
    return rsa.RSAPublicNumbers(
        int.from_bytes(parts[0x90], "big"), int.from_bytes(parts[0x91], "big")
    ).public_key()


def test_visual_ap_signs_a_challenge_without_credential(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    # docs/card.md §7.13, then check against DF24 of the card face (read with check code A).
    challenge, status = run(virtual_card, bytes.fromhex("0084000010"))
    assert status == 0x9000
    select(virtual_card, 0x04, VISUAL)
    digest_info = SHA256_PREFIX + hashlib.sha256(challenge).digest()
    signature, status = run(virtual_card, sign_command(0x00, 0x00, digest_info))
    assert status == 0x9000
    verify(virtual_card, 0x13, persona.my_number)
    face, _ = run(virtual_card, bytes.fromhex("00B08200000000"))
    card_key = _public_key_from_tlv(tlv.parse_one(face)[0].child(0xDF24).value)
    card_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())


def test_text_ap_signs_with_key_0013_without_credential(virtual_card: VirtualCard) -> None:
    select(virtual_card, 0x04, TEXT)
    signature, status = run(virtual_card, sign_command(0x00, 0x00, DIGEST_INFO))
    assert status == 0x9000
    by_sfi, _ = run(virtual_card, sign_command(0x00, 0x93, DIGEST_INFO))
    assert by_sfi == signature
