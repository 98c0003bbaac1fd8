from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.errors import UsageError, VerificationError
from mynakit.jpki.certificates import (
    AUTH_POLICY_OID,
    SANDBOX_AUTH_POLICY_OID,
    CertificateKind,
)
from mynakit.jpki.revocation import (
    RevocationCheckError,
    RevocationState,
    check_crl,
    crl_checker,
    crl_url,
    ocsp_url,
)
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import (
    CertificateValidationError,
    ValidationFailure,
    validate_path,
)
from support.jpki_builders import (
    PRODUCTION_AUTH_CA_NAME,
    TEST_AUTH_CA_NAME,
    TEST_SIGN_CA_NAME,
    build_end_entity,
    build_root,
    key_usage,
    named_key,
)
from support.jpki_builders import auth_certificate as support_auth_certificate
from support.jpki_builders import sign_certificate as support_sign_certificate

pytestmark = pytest.mark.unit

UTC = dt.UTC
AUTH = CertificateKind.AUTH
SIGN = CertificateKind.SIGN
GENERATION_1 = (dt.datetime(2015, 10, 20, tzinfo=UTC), dt.datetime(2025, 10, 19, tzinfo=UTC))
GENERATION_2 = (dt.datetime(2023, 7, 16, tzinfo=UTC), dt.datetime(2033, 7, 15, tzinfo=UTC))
CERT_START = dt.datetime(2024, 1, 10, tzinfo=UTC)
CERT_END = dt.datetime(2029, 1, 9, 14, 59, 59, tzinfo=UTC)
DURING = dt.datetime(2024, 6, 1, tzinfo=UTC)
COMMON_NAME = "ABCDEFGHJKLMNPSANDBOX01"


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: named_key(name) for name in ("auth1", "auth2", "sign", "holder", "stranger")}


@pytest.fixture(scope="module")
def roots(keys: dict[str, rsa.RSAPrivateKey]) -> dict[str, x509.Certificate]:
    return {
        "auth1": build_root(
            keys["auth1"],
            TEST_AUTH_CA_NAME,
            serial=1,
            not_before=GENERATION_1[0],
            not_after=GENERATION_1[1],
        ),
        "auth2": build_root(
            keys["auth2"],
            TEST_AUTH_CA_NAME,
            serial=2,
            not_before=GENERATION_2[0],
            not_after=GENERATION_2[1],
        ),
        "sign": build_root(
            keys["sign"],
            TEST_SIGN_CA_NAME,
            serial=3,
            not_before=GENERATION_2[0],
            not_after=GENERATION_2[1],
        ),
    }


@pytest.fixture(scope="module")
def store(roots: dict[str, x509.Certificate]) -> TrustStore:
    return TrustStore().with_sandbox(roots.values())


def auth_certificate(
    issuer_key: rsa.RSAPrivateKey,
    holder_key: rsa.RSAPrivateKey,
    *,
    issuer_name: x509.Name = TEST_AUTH_CA_NAME,
    policies: list[x509.ObjectIdentifier] | None = None,
    usage: x509.KeyUsage | None = None,
    not_before: dt.datetime = CERT_START,
    not_after: dt.datetime = CERT_END,
    serial: int = 0x01020304,
) -> x509.Certificate:
    return support_auth_certificate(
        issuer_key,
        holder_key,
        issuer_name=issuer_name,
        common_name=COMMON_NAME,
        policies=policies,
        usage=usage,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        ocsp_url="http://127.0.0.1:9/ocsp/auth",
    )


def sign_certificate(
    keys: dict[str, rsa.RSAPrivateKey], *, usage: x509.KeyUsage | None = None
) -> x509.Certificate:
    return support_sign_certificate(
        keys["sign"],
        keys["holder"],
        common_name=COMMON_NAME,
        usage=usage,
        not_before=CERT_START,
        not_after=CERT_END,
    )


def expect_failure(reason: ValidationFailure, *args: object, **kwargs: object) -> str:
    with pytest.raises(CertificateValidationError) as caught:
        validate_path(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason, str(caught.value)
    assert isinstance(caught.value, VerificationError)
    return str(caught.value)


def test_picks_the_generation_whose_key_signed(
    keys: dict[str, rsa.RSAPrivateKey], roots: dict[str, x509.Certificate], store: TrustStore
) -> None:
    # Both generations share TEST_AUTH_CA_NAME; only the signature tells them apart.
    assert len(store.anchors_for(TEST_AUTH_CA_NAME)) == 2
    for generation in ("auth1", "auth2"):
        certificate = auth_certificate(keys[generation], keys["holder"])
        path = validate_path(certificate, store, at=DURING, purpose=AUTH)
        assert path.anchor.x509_certificate == roots[generation]
        assert path.certificate.kind is AUTH
        assert path.validated_at == DURING
        assert not path.is_production
        assert path.revocation is None


def test_sign_certificate_validates(keys: dict[str, rsa.RSAPrivateKey], store: TrustStore) -> None:
    path = validate_path(sign_certificate(keys), store, at=DURING, purpose=SIGN)
    assert path.anchor.purpose is SIGN


def test_validates_at_signing_time_after_root_expiry(
    keys: dict[str, rsa.RSAPrivateKey], store: TrustStore
) -> None:
    # Generation 1 expired in 2025; a signature made in 2024 still validates at its time.
    certificate = auth_certificate(keys["auth1"], keys["holder"])
    validate_path(certificate, store, at=DURING, purpose=AUTH)
    message = expect_failure(
        ValidationFailure.EXPIRED,
        certificate,
        store,
        at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        purpose=AUTH,
    )
    assert "root" in message


def test_unknown_issuer(keys: dict[str, rsa.RSAPrivateKey], store: TrustStore) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    expect_failure(
        ValidationFailure.UNKNOWN_ISSUER, certificate, TrustStore(), at=DURING, purpose=AUTH
    )
    expect_failure(
        ValidationFailure.UNKNOWN_ISSUER, certificate, TrustStore.jlis(), at=DURING, purpose=AUTH
    )


def test_bad_signature_when_name_matches_but_no_key_verifies(
    keys: dict[str, rsa.RSAPrivateKey], store: TrustStore
) -> None:
    forged = auth_certificate(keys["stranger"], keys["holder"])
    message = expect_failure(
        ValidationFailure.BAD_SIGNATURE, forged, store, at=DURING, purpose=AUTH
    )
    assert "2 anchor(s)" in message
    # A certificate in the docs/card.md §9.1 production shape, claiming the J-LIS DN, signed by a
    # throwaway key: the real roots must refuse it.
    production_shaped = auth_certificate(
        keys["stranger"],
        keys["holder"],
        issuer_name=PRODUCTION_AUTH_CA_NAME,
        policies=[AUTH_POLICY_OID],
    )
    expect_failure(
        ValidationFailure.BAD_SIGNATURE,
        production_shaped,
        TrustStore.jlis(),
        at=DURING,
        purpose=AUTH,
    )


def test_expired_and_not_yet_valid(keys: dict[str, rsa.RSAPrivateKey], store: TrustStore) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    expect_failure(
        ValidationFailure.EXPIRED,
        certificate,
        store,
        at=CERT_END + dt.timedelta(seconds=1),
        purpose=AUTH,
    )
    expect_failure(
        ValidationFailure.NOT_YET_VALID,
        certificate,
        store,
        at=CERT_START - dt.timedelta(seconds=1),
        purpose=AUTH,
    )


def test_wrong_purpose(keys: dict[str, rsa.RSAPrivateKey], store: TrustStore) -> None:
    # A signature certificate offered for authentication.
    expect_failure(
        ValidationFailure.WRONG_PURPOSE, sign_certificate(keys), store, at=DURING, purpose=AUTH
    )
    # An authentication policy under the signature root.
    crossed = auth_certificate(keys["sign"], keys["holder"], issuer_name=TEST_SIGN_CA_NAME)
    message = expect_failure(
        ValidationFailure.WRONG_PURPOSE, crossed, store, at=DURING, purpose=AUTH
    )
    assert "sign root" in message
    # A production policy under a sandbox root never validates.
    production_policy = auth_certificate(keys["auth2"], keys["holder"], policies=[AUTH_POLICY_OID])
    message = expect_failure(
        ValidationFailure.WRONG_PURPOSE, production_policy, store, at=DURING, purpose=AUTH
    )
    assert "sandbox auth policy" in message


def test_sandbox_policy_refused_under_production_anchor(
    keys: dict[str, rsa.RSAPrivateKey], roots: dict[str, x509.Certificate]
) -> None:
    production_store = TrustStore().add(roots["auth2"], production=True)
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    message = expect_failure(
        ValidationFailure.WRONG_PURPOSE, certificate, production_store, at=DURING, purpose=AUTH
    )
    assert "production auth policy" in message
    real_shaped = auth_certificate(keys["auth2"], keys["holder"], policies=[AUTH_POLICY_OID])
    path = validate_path(
        real_shaped, production_store, at=DURING, purpose=AUTH, require_production=True
    )
    assert path.is_production


def test_require_production_refuses_sandbox_roots(
    keys: dict[str, rsa.RSAPrivateKey], store: TrustStore
) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    message = expect_failure(
        ValidationFailure.UNKNOWN_ISSUER,
        certificate,
        store,
        at=DURING,
        purpose=AUTH,
        require_production=True,
    )
    assert "sandbox" in message


@pytest.mark.parametrize(
    ("purpose", "usage", "missing"),
    [
        (AUTH, key_usage(content_commitment=True), "digital_signature"),
        (SIGN, key_usage(digital_signature=True), "content_commitment"),
    ],
)
def test_bad_key_usage(
    keys: dict[str, rsa.RSAPrivateKey],
    store: TrustStore,
    purpose: CertificateKind,
    usage: x509.KeyUsage,
    missing: str,
) -> None:
    if purpose is AUTH:
        certificate = auth_certificate(keys["auth2"], keys["holder"], usage=usage)
    else:
        certificate = sign_certificate(keys, usage=usage)
    message = expect_failure(
        ValidationFailure.BAD_KEY_USAGE, certificate, store, at=DURING, purpose=purpose
    )
    assert missing in message


def make_crl(
    issuer_key: rsa.RSAPrivateKey,
    issuer_name: x509.Name,
    *,
    revoked: dict[int, x509.ReasonFlags],
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_name)
        .last_update(this_update)
        .next_update(next_update)
    )
    for serial, reason in revoked.items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .add_extension(x509.CRLReason(reason), critical=False)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


def test_revoked_and_revocation_unknown_through_a_crl(
    keys: dict[str, rsa.RSAPrivateKey], roots: dict[str, x509.Certificate], store: TrustStore
) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"], serial=77)
    now = dt.datetime.now(UTC)
    current = make_crl(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        revoked={77: x509.ReasonFlags.key_compromise},
        this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(hours=23),
    )
    message = expect_failure(
        ValidationFailure.REVOKED,
        certificate,
        store,
        at=DURING,
        purpose=AUTH,
        revocation=crl_checker(current),
    )
    assert "keyCompromise" in message

    stale = make_crl(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        revoked={},
        this_update=now - dt.timedelta(days=3),
        next_update=now - dt.timedelta(days=2),
    )
    message = expect_failure(
        ValidationFailure.REVOCATION_UNKNOWN,
        certificate,
        store,
        at=DURING,
        purpose=AUTH,
        revocation=crl_checker(stale),
    )
    assert "stale" in message

    clean = make_crl(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        revoked={78: x509.ReasonFlags.superseded},
        this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(hours=23),
    )
    path = validate_path(certificate, store, at=DURING, purpose=AUTH, revocation=crl_checker(clean))
    assert path.revocation is not None
    assert path.revocation.state is RevocationState.GOOD


def test_check_crl_refuses_foreign_or_forged_crls(
    keys: dict[str, rsa.RSAPrivateKey], roots: dict[str, x509.Certificate]
) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"], serial=77)
    now = dt.datetime.now(UTC)
    window = {
        "this_update": now - dt.timedelta(hours=1),
        "next_update": now + dt.timedelta(hours=1),
    }
    # Same DN, other generation's key: the signature must not verify.
    forged = make_crl(keys["auth1"], TEST_AUTH_CA_NAME, revoked={}, **window)
    with pytest.raises(RevocationCheckError, match="signature"):
        check_crl(certificate, forged, roots["auth2"])
    foreign = make_crl(keys["sign"], TEST_SIGN_CA_NAME, revoked={}, **window)
    with pytest.raises(RevocationCheckError, match="CRL issued by"):
        check_crl(certificate, foreign, roots["auth2"])
    revoked = make_crl(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        revoked={77: x509.ReasonFlags.affiliation_changed},
        **window,
    )
    status = check_crl(certificate, revoked, roots["auth2"])
    assert status.is_revoked
    assert status.reason is x509.ReasonFlags.affiliation_changed
    assert status.revocation_time == window["this_update"].replace(microsecond=0)


def test_urls_from_certificates(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    assert ocsp_url(certificate) == "http://127.0.0.1:9/ocsp/auth"
    with pytest.raises(RevocationCheckError, match="no CRL distribution point"):
        crl_url(certificate)


def test_usage_errors(keys: dict[str, rsa.RSAPrivateKey], store: TrustStore) -> None:
    certificate = auth_certificate(keys["auth2"], keys["holder"])
    with pytest.raises(UsageError, match="aware"):
        validate_path(certificate, store, at=dt.datetime(2024, 6, 1), purpose=AUTH)
    with pytest.raises(UsageError, match="AUTH or SIGN"):
        validate_path(certificate, store, at=DURING, purpose=CertificateKind.AUTH_CA)


def test_unknown_critical_extension_is_rejected(
    keys: dict[str, rsa.RSAPrivateKey], store: TrustStore
) -> None:
    # RFC 5280 §4.2: a critical extension the validator does not process fails the path.
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
    certificate = build_end_entity(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        keys["holder"],
        common_name=COMMON_NAME,
        policies=[SANDBOX_AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True),
        not_before=CERT_START,
        not_after=CERT_END,
        extra_extensions=[(unknown, True)],
    )
    message = expect_failure(
        ValidationFailure.UNSUPPORTED_CRITICAL_EXTENSION,
        certificate,
        store,
        at=DURING,
        purpose=AUTH,
    )
    assert "1.2.3.4.5" in message
    # The same extension, not critical, is ignored as RFC 5280 allows.
    relaxed = build_end_entity(
        keys["auth2"],
        TEST_AUTH_CA_NAME,
        keys["holder"],
        common_name=COMMON_NAME,
        policies=[SANDBOX_AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True),
        not_before=CERT_START,
        not_after=CERT_END,
        extra_extensions=[(unknown, False)],
    )
    assert validate_path(relaxed, store, at=DURING, purpose=AUTH).certificate.serial_number
