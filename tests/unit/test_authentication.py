"""The relying party's authentication protocol, with in-memory certificates and keys (no card,
no network: revocation uses a CRL built here and checked by the real CRL code)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.errors import DataError, UsageError, VerificationError
from mynakit.jpki.authentication import (
    Authenticator,
    BadSignatureError,
    Challenge,
    ChallengeResponse,
    ExpiredNonceError,
    InMemoryNonceStore,
    NonceState,
    ReplayedNonceError,
    RevokedCertificateError,
    UnknownNonceError,
    UnknownRootError,
    WrongCertificateKindError,
)
from mynakit.jpki.revocation import crl_checker
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import ValidationFailure
from support.clocks import FixedClock
from support.jpki_builders import (
    SANDBOX_COMMON_NAME,
    TEST_AUTH_CA_NAME,
    TEST_SIGN_CA_NAME,
    auth_certificate,
    build_root,
    der,
    named_key,
    sign_certificate,
)

pytestmark = pytest.mark.unit

UTC = dt.UTC
START = dt.datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
AUTH_COMMON_NAME = SANDBOX_COMMON_NAME


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    names = ("root", "sign_root", "foreign_root", "holder", "other")
    return {name: named_key(name) for name in names}


@pytest.fixture(scope="module")
def roots(keys: dict[str, rsa.RSAPrivateKey]) -> dict[str, x509.Certificate]:
    not_before = START - dt.timedelta(days=365)
    not_after = START.replace(year=2035)

    def root(key: rsa.RSAPrivateKey, name: x509.Name) -> x509.Certificate:
        return build_root(key, name, not_before=not_before, not_after=not_after)

    return {
        "auth": root(keys["root"], TEST_AUTH_CA_NAME),
        "sign": root(keys["sign_root"], TEST_SIGN_CA_NAME),
        # Same DN as the trusted root, another key: what a second sandbox issuer looks like.
        "foreign": root(keys["foreign_root"], TEST_AUTH_CA_NAME),
    }


def _auth_certificate(
    issuer_key: rsa.RSAPrivateKey, subject_key: rsa.RSAPrivateKey, serial: int
) -> x509.Certificate:
    return auth_certificate(
        issuer_key,
        subject_key,
        not_before=START - dt.timedelta(days=30),
        not_after=START + dt.timedelta(days=5 * 365),
        serial=serial,
    )


@pytest.fixture(scope="module")
def certificates(
    keys: dict[str, rsa.RSAPrivateKey],
) -> dict[str, bytes]:
    sign = sign_certificate(
        keys["sign_root"],
        keys["holder"],
        not_before=START - dt.timedelta(days=30),
        not_after=START + dt.timedelta(days=5 * 365),
        serial=0x2000,
    )
    return {
        "auth": der(_auth_certificate(keys["root"], keys["holder"], 0x1000)),
        "foreign": der(_auth_certificate(keys["foreign_root"], keys["holder"], 0x1001)),
        "sign": der(sign),
    }


@pytest.fixture(scope="module")
def trust_store(roots: dict[str, x509.Certificate]) -> TrustStore:
    return TrustStore().add(roots["auth"]).add(roots["sign"])


def _sign(key: rsa.RSAPrivateKey, nonce: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    # What the card does with DigestInfo(hash(nonce)) and PKCS#1 v1.5 (docs/card.md §5.1).
    return key.sign(nonce, padding.PKCS1v15(), algorithm)


def _authenticator(trust_store: TrustStore, clock: FixedClock, **options: object) -> Authenticator:
    options.setdefault("revocation", "none")
    return Authenticator(trust_store, clock=clock, **options)  # type: ignore[arg-type]


def test_good_response_gives_the_identity(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    clock = FixedClock(START)
    authenticator = _authenticator(trust_store, clock)
    challenge = authenticator.begin()
    assert len(challenge.nonce) == 32
    assert challenge.expires_at - challenge.issued_at == dt.timedelta(minutes=5)

    clock.now = START + dt.timedelta(minutes=1)
    identity = authenticator.complete(
        challenge.challenge_id,
        _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
        certificates["auth"],
    )
    assert identity.serial == 0x1000
    assert identity.random_string == "AB12CD34EF56GH"
    assert identity.terminal_code == "SANDBOX01"
    assert identity.production is False
    assert identity.revocation == "not checked"
    assert "JPKI-SANDBOX" in identity.issuer_root
    assert identity.authenticated_at == clock.now
    assert identity.to_dict()["serial_hex"] == "1000"


def test_every_challenge_is_new(trust_store: TrustStore) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    first, second = authenticator.begin(), authenticator.begin()
    assert first.nonce != second.nonce
    assert first.challenge_id != second.challenge_id


def test_replayed_nonce_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    signature = _sign(keys["holder"], challenge.nonce, hashes.SHA256())
    authenticator.complete(challenge.challenge_id, signature, certificates["auth"])
    with pytest.raises(ReplayedNonceError):
        authenticator.complete(challenge.challenge_id, signature, certificates["auth"])


def test_failed_attempt_still_consumes_the_nonce(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(BadSignatureError):
        authenticator.complete(challenge.challenge_id, b"\x00" * 256, certificates["auth"])
    good = _sign(keys["holder"], challenge.nonce, hashes.SHA256())
    with pytest.raises(ReplayedNonceError):
        authenticator.complete(challenge.challenge_id, good, certificates["auth"])


def test_expired_nonce_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    clock = FixedClock(START)
    authenticator = _authenticator(trust_store, clock, nonce_lifetime=dt.timedelta(minutes=2))
    challenge = authenticator.begin()
    clock.now = START + dt.timedelta(minutes=2, seconds=1)
    with pytest.raises(ExpiredNonceError):
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["auth"],
        )


def test_unknown_challenge_is_refused(
    trust_store: TrustStore, certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    other = _authenticator(trust_store, FixedClock(START)).begin()
    with pytest.raises(UnknownNonceError):
        authenticator.complete(other.challenge_id, b"\x00" * 256, certificates["auth"])


def test_signature_by_another_key_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(BadSignatureError):
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["other"], challenge.nonce, hashes.SHA256()),
            certificates["auth"],
        )


def test_signature_over_another_nonce_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    first, second = authenticator.begin(), authenticator.begin()
    with pytest.raises(BadSignatureError):
        authenticator.complete(
            second.challenge_id,
            _sign(keys["holder"], first.nonce, hashes.SHA256()),
            certificates["auth"],
        )


def test_certificate_from_an_unknown_root_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(UnknownRootError) as caught:
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["foreign"],
        )
    assert caught.value.reason is ValidationFailure.BAD_SIGNATURE


def test_no_matching_root_name_is_an_unknown_root(
    roots: dict[str, x509.Certificate],
    keys: dict[str, rsa.RSAPrivateKey],
    certificates: dict[str, bytes],
) -> None:
    authenticator = _authenticator(TrustStore().add(roots["sign"]), FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(UnknownRootError) as caught:
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["auth"],
        )
    assert caught.value.reason is ValidationFailure.UNKNOWN_ISSUER


def test_sign_certificate_cannot_authenticate(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(WrongCertificateKindError) as caught:
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["sign"],
        )
    assert caught.value.reason is ValidationFailure.WRONG_PURPOSE


def test_revoked_certificate_is_refused_by_crl(
    trust_store: TrustStore,
    roots: dict[str, x509.Certificate],
    keys: dict[str, rsa.RSAPrivateKey],
    certificates: dict[str, bytes],
) -> None:
    now = dt.datetime.now(UTC)  # check_crl judges freshness against the real clock
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(roots["auth"].subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(0x1000)
            .revocation_date(now - dt.timedelta(minutes=1))
            .build()
        )
        .sign(keys["root"], hashes.SHA256())
    )
    authenticator = _authenticator(trust_store, FixedClock(START), revocation=crl_checker(crl))
    challenge = authenticator.begin()
    with pytest.raises(RevokedCertificateError) as caught:
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["auth"],
        )
    assert caught.value.reason is ValidationFailure.REVOKED
    assert isinstance(caught.value, VerificationError)


def test_other_strong_hashes_work_and_sha1_is_refused(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    identity = authenticator.complete(
        challenge.challenge_id,
        _sign(keys["holder"], challenge.nonce, hashes.SHA512()),
        certificates["auth"],
        hash_algorithm="sha512",
    )
    assert identity.serial == 0x1000

    challenge = authenticator.begin()
    with pytest.raises(UsageError, match="sha1"):
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA1()),
            certificates["auth"],
            hash_algorithm="sha1",
        )


def test_production_mode_refuses_sandbox_roots_and_unchecked_revocation(
    trust_store: TrustStore, keys: dict[str, rsa.RSAPrivateKey], certificates: dict[str, bytes]
) -> None:
    with pytest.raises(UsageError, match="revocation"):
        Authenticator(trust_store, revocation="none", production=True)
    now = dt.datetime.now(UTC)
    authenticator = Authenticator(
        trust_store,
        revocation=lambda certificate, issuer: pytest.fail("no revocation check expected"),
        production=True,
        clock=FixedClock(now),
    )
    challenge = authenticator.begin()
    with pytest.raises(UnknownRootError, match="sandbox"):
        authenticator.complete(
            challenge.challenge_id,
            _sign(keys["holder"], challenge.nonce, hashes.SHA256()),
            certificates["auth"],
        )


def test_garbage_certificate_is_a_data_error(trust_store: TrustStore) -> None:
    authenticator = _authenticator(trust_store, FixedClock(START))
    challenge = authenticator.begin()
    with pytest.raises(DataError):
        authenticator.complete(challenge.challenge_id, b"\x00" * 256, b"\x30\x03\x02\x01\x01")


def test_bad_options_are_usage_errors(trust_store: TrustStore) -> None:
    with pytest.raises(UsageError):
        Authenticator(trust_store, nonce_lifetime=dt.timedelta(0))
    with pytest.raises(UsageError):
        Authenticator(trust_store, revocation="sometimes")  # type: ignore[arg-type]
    naive = Authenticator(trust_store, revocation="none", clock=lambda: dt.datetime(2025, 1, 1))
    with pytest.raises(UsageError, match="aware"):
        naive.begin()


def test_challenge_and_response_travel_as_json_values() -> None:
    challenge = Challenge("id-1", bytes(range(32)), START, START + dt.timedelta(minutes=5))
    assert Challenge.from_dict(challenge.to_dict()) == challenge
    response = ChallengeResponse("id-1", b"\x01" * 256, b"\x30\x00", "sha384")
    assert ChallengeResponse.from_dict(response.to_dict()) == response
    with pytest.raises(DataError):
        Challenge.from_dict({"challenge_id": "x", "nonce": "***"})
    with pytest.raises(DataError):
        ChallengeResponse.from_dict({"challenge_id": "x"})


def test_memory_store_forgets_long_expired_challenges_only() -> None:
    clock = FixedClock(START)
    store = InMemoryNonceStore(clock)
    old = Challenge("old", b"\x00" * 32, START, START + dt.timedelta(minutes=5))
    store.save(old)
    assert store.consume("old") == (NonceState.FRESH, old)
    assert store.consume("old") == (NonceState.USED, old)
    with pytest.raises(UsageError):
        store.save(old)
    # One more lifetime after expiry the used entry is dropped when the next one is saved.
    clock.now = START + dt.timedelta(minutes=10, seconds=1)
    store.save(Challenge("new", b"\x01" * 32, clock.now, clock.now + dt.timedelta(minutes=5)))
    assert store.consume("old") == (NonceState.UNKNOWN, None)
    assert len(store) == 1
