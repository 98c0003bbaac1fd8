"""JpkiAp on the in-process virtual card: token, certificates, PIN safety, PIN change,
signatures, the cryptography-shaped key, and APDU counts (docs/card.md §7.1-§7.8)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.card.detect import CardKind
from mynakit.card.errors import (
    LastTryRefusedError,
    PinBlockedError,
    PinRequiredError,
    WrongPinError,
)
from mynakit.card.jpki import CardPrivateKey, JpkiAp, digest_info
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.emulator.state import CardState, build_card_state
from mynakit.errors import DataError, UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.certificates import CertificateKind, parse_certificate
from mynakit.profiles import load_profile
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.trace import TracingConnection

pytestmark = pytest.mark.emulator


def wrong(value: str) -> str:
    """A well-formed value that differs from ``value`` in its last character."""
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


@pytest.fixture
def traced(virtual_card: VirtualCard) -> TracingConnection:
    return TracingConnection(InProcessConnection(virtual_card))


@pytest.fixture
def session(traced: TracingConnection) -> JpkiAp:
    return JpkiAp.open(ApduProtocol(traced, extended_length=True))


def rsa_public_key(der: bytes) -> rsa.RSAPublicKey:
    key = parse_certificate(der).certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def counters(card: VirtualCard) -> dict[tuple[str, int], int]:
    return {ref: record.tries_left for ref, record in card.state.pins.items()}


# -- token and certificates ----------------------------------------------------------------------


def test_token_names_the_plastic_card(session: JpkiAp) -> None:
    token = session.token()
    assert token.kind is CardKind.MY_NUMBER_CARD
    assert token.label == "JPKIAPICCTOKEN2"
    assert token.to_dict()["kind"] == "my_number_card"


@pytest.mark.parametrize(
    ("kind", "certificate_kind"),
    [
        ("auth", CertificateKind.AUTH),
        ("auth_ca", CertificateKind.AUTH_CA),
        ("sign_ca", CertificateKind.SIGN_CA),
    ],
)
def test_free_certificates(session: JpkiAp, kind: str, certificate_kind: CertificateKind) -> None:
    der = session.read_certificate(kind)  # type: ignore[arg-type]
    assert parse_certificate(der).kind is certificate_kind


def test_sign_certificate_needs_the_sign_password_first(
    session: JpkiAp, traced: TracingConnection, persona: Persona
) -> None:
    before = len(traced.counter)
    with pytest.raises(PinRequiredError, match="signature password"):
        session.read_certificate("sign")
    assert len(traced.counter) == before  # refused without touching the card
    session.verify_sign_password(persona.sign_password.lower())  # upper-cased (docs/card.md §4)
    certificate = parse_certificate(session.read_certificate("sign"))
    assert certificate.kind is CertificateKind.SIGN
    assert certificate.basic_info.name == persona.name


def test_unknown_certificate_kind_is_a_usage_error(session: JpkiAp) -> None:
    with pytest.raises(UsageError):
        session.read_certificate("root")  # type: ignore[arg-type]


def test_a_damaged_certificate_file_is_a_data_error(virtual_card: VirtualCard) -> None:
    application = virtual_card.profile.application("jpki")
    file_id = application.file("auth_certificate").file_id
    virtual_card.state.files[("jpki", file_id)] = b"\xff" * 64
    session = JpkiAp.open(ApduProtocol(InProcessConnection(virtual_card), extended_length=True))
    with pytest.raises(DataError):
        session.read_certificate("auth")


# -- PIN safety -----------------------------------------------------------------------------------


def test_pin_status_spends_nothing(session: JpkiAp, virtual_card: VirtualCard) -> None:
    before = counters(virtual_card)
    statuses = {status.key_name: status for status in session.pin_status()}
    assert statuses["auth_pin"].tries_left == 3 and statuses["auth_pin"].max_tries == 3
    assert statuses["sign_password"].tries_left == 5
    assert not statuses["auth_pin"].blocked
    session.pin_status()
    assert counters(virtual_card) == before


def test_wrong_pin_counts_down_then_last_try_is_refused(
    session: JpkiAp, persona: Persona, traced: TracingConnection
) -> None:
    with pytest.raises(WrongPinError) as first:
        session.verify_auth_pin(wrong(persona.auth_pin))
    assert first.value.tries_left == 2
    with pytest.raises(WrongPinError) as second:
        session.verify_auth_pin(wrong(persona.auth_pin))
    assert second.value.tries_left == 1
    before = len(traced.counter)
    with pytest.raises(LastTryRefusedError):
        session.verify_auth_pin(persona.auth_pin)
    assert len(traced.counter) == before + 1  # only the counter query went out
    assert session.tries_left("auth_pin") == 1
    session.verify_auth_pin(persona.auth_pin, force=True)
    assert session.tries_left("auth_pin") == 3  # a right PIN restores the counter


def test_forced_last_wrong_try_blocks_and_then_nothing_is_sent(
    session: JpkiAp, persona: Persona, virtual_card: VirtualCard, traced: TracingConnection
) -> None:
    for _ in range(2):
        with pytest.raises(WrongPinError):
            session.verify_auth_pin(wrong(persona.auth_pin))
    with pytest.raises(PinBlockedError, match="municipal office"):
        session.verify_auth_pin(wrong(persona.auth_pin), force=True)
    before = len(traced.counter)
    with pytest.raises(PinBlockedError):
        session.verify_auth_pin(persona.auth_pin, force=True)
    assert len(traced.counter) == before + 1  # the query only: no VERIFY to a blocked key
    assert virtual_card.state.pins[("jpki", 0x18)].tries_left == 0


def test_blocked_key_from_the_start(make_virtual_card: Callable[..., VirtualCard]) -> None:
    card = make_virtual_card()
    card.state.block("jpki", "sign_password")
    session = JpkiAp.open(ApduProtocol(InProcessConnection(card), extended_length=True))
    statuses = {status.key_name: status for status in session.pin_status()}
    assert statuses["sign_password"].blocked
    with pytest.raises(PinBlockedError):
        session.verify_sign_password("ABCDEF12")


def test_malformed_pin_is_refused_before_the_card(
    session: JpkiAp, traced: TracingConnection
) -> None:
    before = len(traced.counter)
    for value in ("123", "12345", "12a4"):
        with pytest.raises(UsageError):
            session.verify_auth_pin(value)
    with pytest.raises(UsageError):
        session.verify_sign_password("SHORT")
    assert len(traced.counter) == before


def test_no_pin_in_error_messages(session: JpkiAp, persona: Persona) -> None:
    attempt = wrong(persona.auth_pin)
    with pytest.raises(WrongPinError) as raised:
        session.verify_auth_pin(attempt)
    assert attempt not in str(raised.value)


# -- PIN change -----------------------------------------------------------------------------------


def test_change_auth_pin(session: JpkiAp, persona: Persona, traced: TracingConnection) -> None:
    new = wrong(persona.auth_pin)
    traced.counter.clear()
    session.change_pin(persona.auth_pin, new, key="auth_pin")
    sent = [
        bytes([c.cla, c.ins, c.p1, c.p2]).hex().upper()
        for c in traced.counter.commands
        if not isinstance(c, bytes)
    ]
    assert sent == ["00A4020C", "00200098", "00200098", "00240180"]
    session.select()
    with pytest.raises(WrongPinError):
        session.verify_auth_pin(persona.auth_pin)
    session.verify_auth_pin(new)


def test_change_sign_password_upper_cases_the_new_value(session: JpkiAp, persona: Persona) -> None:
    session.change_pin(persona.sign_password, "newpass12", key="sign_password")
    session.select()
    session.verify_sign_password("NEWPASS12")


def test_malformed_new_pin_costs_nothing(
    session: JpkiAp, persona: Persona, traced: TracingConnection
) -> None:
    before = len(traced.counter)
    with pytest.raises(UsageError):
        session.change_pin(persona.auth_pin, "12", key="auth_pin")
    with pytest.raises(UsageError):
        session.change_pin(persona.sign_password, "bad-chars!", key="sign_password")
    assert len(traced.counter) == before


def test_change_with_a_wrong_old_pin_changes_nothing(session: JpkiAp, persona: Persona) -> None:
    with pytest.raises(WrongPinError):
        session.change_pin(wrong(persona.auth_pin), "4321", key="auth_pin")
    session.select()
    session.verify_auth_pin(persona.auth_pin)


# -- signatures -----------------------------------------------------------------------------------


def test_sign_needs_the_pin(session: JpkiAp, traced: TracingConnection) -> None:
    before = len(traced.counter)
    with pytest.raises(PinRequiredError):
        session.sign_digest("auth", "sha256", bytes(32))
    assert len(traced.counter) == before


@pytest.mark.parametrize(
    ("name", "algorithm"),
    [
        ("sha1", hashes.SHA1()),
        ("sha256", hashes.SHA256()),
        ("sha384", hashes.SHA384()),
        ("sha512", hashes.SHA512()),
    ],
)
def test_auth_signature_verifies_with_the_certificate(
    session: JpkiAp,
    persona: Persona,
    traced: TracingConnection,
    name: str,
    algorithm: hashes.HashAlgorithm,
) -> None:
    session.verify_auth_pin(persona.auth_pin)
    digest = hashlib.new(name, b"nonce").digest()
    traced.counter.clear()
    signature = session.sign_digest("auth", name, digest)  # type: ignore[arg-type]
    command = traced.counter.commands[0]
    assert not isinstance(command, bytes)
    # docs/card.md §5.1: 80 2A 00 97 <DigestInfo> 00, no SELECT of the key EF.
    assert (command.cla, command.ins, command.p1, command.p2) == (0x80, 0x2A, 0x00, 0x97)
    assert command.data == digest_info(name, digest) and command.le == 256
    assert len(traced.counter) == 1 and len(signature) == 256
    public_key = rsa_public_key(session.read_certificate("auth"))
    public_key.verify(signature, b"nonce", padding.PKCS1v15(), algorithm)


def test_sign_key_uses_p2_9a(session: JpkiAp, persona: Persona, traced: TracingConnection) -> None:
    session.verify_sign_password(persona.sign_password)
    traced.counter.clear()
    session.sign_digest("sign", "sha256", hashlib.sha256(b"doc").digest())
    command = traced.counter.commands[0]
    assert not isinstance(command, bytes) and command.p2 == 0x9A


def test_sign_refuses_oversized_input(session: JpkiAp, persona: Persona) -> None:
    session.verify_auth_pin(persona.auth_pin)
    with pytest.raises(UsageError):
        session.sign("auth", bytes(246))


def test_card_private_key_is_cryptography_shaped(session: JpkiAp, persona: Persona) -> None:
    session.verify_sign_password(persona.sign_password)
    key = CardPrivateKey(session, "sign")
    assert key.key_size == 2048
    signature = key.sign(b"document", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(signature, b"document", padding.PKCS1v15(), hashes.SHA256())
    prehashed = key.sign(
        hashlib.sha384(b"document").digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA384())
    )
    key.public_key().verify(prehashed, b"document", padding.PKCS1v15(), hashes.SHA384())
    defaults = key.sign(b"document")  # PKCS#1 v1.5 and SHA-256 by default
    key.public_key().verify(defaults, b"document", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, b"other", padding.PKCS1v15(), hashes.SHA256())


def test_card_private_key_refuses_what_the_card_cannot_do(
    session: JpkiAp, persona: Persona
) -> None:
    session.verify_auth_pin(persona.auth_pin)
    key = session.private_key("auth")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(UsageError, match="PKCS#1"):
        key.sign(b"x", pss, hashes.SHA256())
    with pytest.raises(UsageError, match="sha3"):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA3_256())
    with pytest.raises(UsageError):
        CardPrivateKey(session, "root")  # type: ignore[arg-type]


# -- smartphone token -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smartphone_state(tmp_path_factory: pytest.TempPathFactory) -> CardState:
    issuer = SandboxIssuer.create(tmp_path_factory.mktemp("phone-issuer"))
    return build_card_state(
        load_profile("smartphone-jpki-token"), generate_persona("phone"), issuer, name="phone"
    )


def test_smartphone_token_needs_the_auth_pin_for_its_certificate(
    smartphone_state: CardState,
) -> None:
    card = VirtualCard(load_profile("smartphone-jpki-token"), smartphone_state.fork())
    session = JpkiAp.open(ApduProtocol(InProcessConnection(card), extended_length=True))
    assert session.token().kind is CardKind.SMARTPHONE_TOKEN_ANDROID
    with pytest.raises(PinRequiredError, match="user-authentication PIN"):
        session.read_certificate("auth")
    session.verify_auth_pin(smartphone_state.persona.auth_pin)
    assert parse_certificate(session.read_certificate("auth")).kind is CertificateKind.AUTH


# -- APDU counts ----------------------------------------------------------------------------------


def test_auth_certificate_apdu_counts(virtual_card: VirtualCard) -> None:
    extended = TracingConnection(InProcessConnection(virtual_card))
    session = JpkiAp(ApduProtocol(extended, extended_length=True))
    after_select = len(extended.counter)
    der = session.read_certificate("auth")
    assert len(extended.counter) - after_select == 1  # one extended READ BINARY by SFI

    short = TracingConnection(InProcessConnection(virtual_card))
    short_session = JpkiAp(ApduProtocol(short, extended_length=False))
    assert short_session.read_certificate("auth") == der
    chunks = -(-len(der) // 256)
    assert len(short.counter) == 1 + chunks <= 8  # SELECT + 256-byte chunks


def test_full_auth_flow_apdu_count(virtual_card: VirtualCard, persona: Persona) -> None:
    traced = TracingConnection(InProcessConnection(virtual_card))
    session = JpkiAp.open(ApduProtocol(traced, extended_length=True))  # SELECT + token
    assert session.tries_left("auth_pin") == 3  # PIN status
    session.verify_auth_pin(persona.auth_pin)  # counter query + VERIFY
    signature = session.sign_digest("auth", "sha256", hashlib.sha256(b"challenge").digest())
    der = session.read_certificate("auth")
    assert len(traced.counter) == 7
    public_key = rsa_public_key(der)
    public_key.verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())
