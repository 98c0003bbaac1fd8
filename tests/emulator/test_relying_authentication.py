"""JPKI user authentication end to end: the in-process virtual card answers the relying party's
challenge, and the relying party checks it against the sandbox issuer, with revocation asked
of the real loopback OCSP responder or CRL distribution point."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.emulator.state import CardState, build_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import (
    Authenticator,
    BadSignatureError,
    ExpiredNonceError,
    ReplayedNonceError,
    RevokedCertificateError,
    UnknownRootError,
    WrongCertificateKindError,
    card_respond,
)
from mynakit.jpki.certificates import parse_certificate
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import ValidationFailure
from mynakit.profiles import load_profile
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.trace import TracingConnection
from support.clocks import OffsetClock

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def second_issuer(tmp_path_factory: pytest.TempPathFactory) -> SandboxIssuer:
    """Another sandbox J-LIS: same root DNs as the session issuer, other keys."""
    return SandboxIssuer.create(tmp_path_factory.mktemp("second-issuer"))


@pytest.fixture(scope="module")
def second_card_state(second_issuer: SandboxIssuer) -> CardState:
    """A second holder's card (own keys), certified by ``second_issuer`` so that revoking its
    certificate cannot disturb the session card's tests. Built once: key generation is slow."""
    return build_card_state(load_profile(), generate_persona("relying-second"), second_issuer)


@pytest.fixture
def second_card(second_card_state: CardState) -> VirtualCard:
    return VirtualCard(load_profile(), second_card_state.fork())


@pytest.fixture
def responder(sandbox_issuer: SandboxIssuer) -> Iterator[OcspServer]:
    with OcspServer(sandbox_issuer) as server:
        yield server


def _session(connection: InProcessConnection | TracingConnection) -> JpkiAp:
    return JpkiAp(ApduProtocol(connection, extended_length=connection.extended_length))


def test_good_card_authenticates_with_ocsp(
    sandbox_issuer: SandboxIssuer,
    virtual_card_connection: InProcessConnection,
    persona: Persona,
    responder: OcspServer,
) -> None:
    authenticator = Authenticator(TrustStore.jlis().with_sandbox(sandbox_issuer))
    challenge = authenticator.begin()
    traced = TracingConnection(virtual_card_connection)
    response = card_respond(_session(traced), challenge, persona.auth_pin)
    # SELECT AP, retry query, VERIFY, 80 2A, then the certificate by SFI (one READ BINARY
    # with extended length, 256-byte pieces without).
    certificate_length = len(response.certificate_der)
    reads = 1 if traced.extended_length else -(-certificate_length // 256)
    assert len(traced.counter) == 4 + reads

    identity = authenticator.complete(
        response.challenge_id, response.signature, response.certificate_der
    )
    certificate = parse_certificate(response.certificate_der)
    assert identity.serial == certificate.serial_number
    assert identity.random_string == certificate.random_string
    assert identity.terminal_code == "SANDBOX01"
    assert identity.revocation == "good (ocsp)"
    assert identity.production is False
    assert identity.issuer_root == sandbox_issuer.auth_root.subject.rfc4514_string()


def test_good_card_authenticates_with_crl(
    sandbox_issuer: SandboxIssuer,
    virtual_card_connection: InProcessConnection,
    persona: Persona,
    responder: OcspServer,
) -> None:
    authenticator = Authenticator(TrustStore().with_sandbox(sandbox_issuer), revocation="crl")
    challenge = authenticator.begin()
    response = card_respond(_session(virtual_card_connection), challenge, persona.auth_pin)
    identity = authenticator.complete(
        challenge.challenge_id, response.signature, response.certificate_der
    )
    assert identity.revocation == "good (crl)"


def test_replayed_response_is_refused(
    sandbox_issuer: SandboxIssuer, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    authenticator = Authenticator(TrustStore().with_sandbox(sandbox_issuer), revocation="none")
    challenge = authenticator.begin()
    response = card_respond(_session(virtual_card_connection), challenge, persona.auth_pin)
    authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)
    with pytest.raises(ReplayedNonceError):
        authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)


def test_expired_challenge_is_refused(
    sandbox_issuer: SandboxIssuer, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    clock = OffsetClock()
    authenticator = Authenticator(
        TrustStore().with_sandbox(sandbox_issuer), revocation="none", clock=clock
    )
    challenge = authenticator.begin()
    response = card_respond(_session(virtual_card_connection), challenge, persona.auth_pin)
    clock.offset = dt.timedelta(minutes=5, seconds=1)
    with pytest.raises(ExpiredNonceError):
        authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)


def test_revoked_certificate_is_refused_by_the_loopback_responder(
    second_issuer: SandboxIssuer, second_card: VirtualCard
) -> None:
    persona = second_card.state.persona
    serial = second_card.state.serials["auth"]
    trust = TrustStore().with_sandbox(second_issuer)
    with OcspServer(second_issuer):
        connection = InProcessConnection(second_card)
        authenticator = Authenticator(trust, revocation="ocsp")
        challenge = authenticator.begin()
        response = card_respond(_session(connection), challenge, persona.auth_pin)
        authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)

        second_issuer.revoke(serial, x509.ReasonFlags.key_compromise)
        for mode in ("ocsp", "crl"):
            authenticator = Authenticator(trust, revocation=mode)
            challenge = authenticator.begin()
            response = card_respond(_session(connection), challenge, persona.auth_pin)
            with pytest.raises(RevokedCertificateError) as caught:
                authenticator.complete(
                    challenge.challenge_id, response.signature, response.certificate_der
                )
            assert caught.value.reason is ValidationFailure.REVOKED
            assert "keyCompromise" in str(caught.value)


def test_certificate_from_an_unknown_root_is_refused(
    second_issuer: SandboxIssuer, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    # The session card's certificate comes from the session issuer; trust only the second one,
    # whose roots have the same names but other keys.
    authenticator = Authenticator(TrustStore.jlis().with_sandbox(second_issuer), revocation="none")
    challenge = authenticator.begin()
    response = card_respond(_session(virtual_card_connection), challenge, persona.auth_pin)
    with pytest.raises(UnknownRootError):
        authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)


def test_signature_by_another_card_is_refused(
    sandbox_issuer: SandboxIssuer,
    virtual_card_connection: InProcessConnection,
    persona: Persona,
    second_card: VirtualCard,
) -> None:
    authenticator = Authenticator(TrustStore().with_sandbox(sandbox_issuer), revocation="none")
    challenge = authenticator.begin()
    victim_certificate = _session(virtual_card_connection).read_certificate("auth")
    other = card_respond(
        _session(InProcessConnection(second_card)),
        challenge,
        second_card.state.persona.auth_pin,
    )
    with pytest.raises(BadSignatureError):
        authenticator.complete(challenge.challenge_id, other.signature, victim_certificate)


def test_sign_certificate_cannot_authenticate(
    sandbox_issuer: SandboxIssuer, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    import hashlib

    authenticator = Authenticator(TrustStore().with_sandbox(sandbox_issuer), revocation="none")
    challenge = authenticator.begin()
    session = _session(virtual_card_connection)
    session.verify_sign_password(persona.sign_password)
    signature = session.sign_digest("sign", "sha256", hashlib.sha256(challenge.nonce).digest())
    with pytest.raises(WrongCertificateKindError) as caught:
        authenticator.complete(challenge.challenge_id, signature, session.read_certificate("sign"))
    assert caught.value.reason is ValidationFailure.WRONG_PURPOSE
