"""The certificates a transcript carries in place of the holder's: well-formed X.509 of exactly
the recorded length, the persona's names, a fresh key, signed by a transcript CA, never passing
for a real J-LIS certificate."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mynakit.emulator.issuer import SandboxIssuer, basic_info_alternative_name
from mynakit.emulator.personas import generate_persona
from mynakit.emulator.transcript_certificates import CertificateRedactor, _fit_characters
from mynakit.errors import DataError
from mynakit.jpki.certificates import (
    AUTH_POLICY_OID,
    SANDBOX_AUTH_POLICY_OID,
    SANDBOX_SIGN_POLICY_OID,
    SIGN_POLICY_OID,
    parse_certificate,
)
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, validate_path
from support.jpki_builders import (
    JLIS_AGENCY,
    PRODUCTION_AUTH_CA_NAME,
    PRODUCTION_SIGN_CA_NAME,
    build_end_entity,
    key_usage,
)

pytestmark = pytest.mark.emulator


def jlis_like_certificate(sign: bool) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A certificate shaped like a real card's (docs/card.md §9.1, §9.2): the production policy,
    the J-LIS issuer, a CRL distribution point naming the municipality, OCSP at a J-LIS URL."""
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    holder_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = PRODUCTION_SIGN_CA_NAME if sign else PRODUCTION_AUTH_CA_NAME
    now = dt.datetime.now(dt.UTC)
    alternative_names = (
        list(basic_info_alternative_name(generate_persona("jlis-holder").basic_info))
        if sign
        else []
    )
    certificate = build_end_entity(
        issuer_key,
        issuer,
        holder_key,
        common_name="ABCDEFGHJKLMNP123456789",
        policies=[SIGN_POLICY_OID if sign else AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True, content_commitment=sign),
        not_before=now - dt.timedelta(days=10),
        not_after=now + dt.timedelta(days=1000),
        alternative_names=alternative_names,
        client_auth=not sign,
        ocsp_url="http://ocsp.example.jp/auth",
        crl_directory_name=x509.Name(
            [*issuer, x509.NameAttribute(NameOID.COMMON_NAME, "Chiyoda-ku CRLDP")]
        ),
        extra_extensions=[
            (
                x509.AuthorityKeyIdentifier(
                    key_identifier=x509.SubjectKeyIdentifier.from_public_key(
                        issuer_key.public_key()
                    ).digest,
                    authority_cert_issuer=[x509.DirectoryName(issuer)],
                    authority_cert_serial_number=7,
                ),
                False,
            ),
            (x509.SubjectKeyIdentifier.from_public_key(holder_key.public_key()), False),
        ],
    )
    return certificate, holder_key


@pytest.mark.parametrize("sign", [False, True], ids=["auth", "sign"])
def test_a_real_looking_certificate_becomes_a_transcript_one(
    sandbox_issuer: SandboxIssuer, sign: bool
) -> None:
    original, holder_key = jlis_like_certificate(sign)
    original_der = original.public_bytes(serialization.Encoding.DER)
    persona = generate_persona("replacement")
    persona_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    persona_certificate = (
        sandbox_issuer.issue_sign_certificate(persona_key.public_key(), persona.basic_info)
        if sign
        else sandbox_issuer.issue_auth_certificate(persona_key.public_key())
    )
    redactor = CertificateRedactor(b"seed")
    redacted = redactor.redact(
        original_der, persona_certificate.public_bytes(serialization.Encoding.DER)
    )
    (authority,) = redactor.authority_certificates()

    assert len(redacted.der) == len(original_der)
    certificate = parse_certificate(redacted.der)
    x509_certificate = certificate.certificate
    x509_certificate.verify_directly_issued_by(authority)
    assert x509_certificate.public_key() == redacted.key.public_key()
    assert x509_certificate.serial_number != original.serial_number
    # Nothing of the holder's or the issuer's: key, signature, key identifier, the
    # municipality, the J-LIS names and URLs.
    text = redacted.der
    holder_modulus = holder_key.public_key().public_numbers().n.to_bytes(256, "big")
    for needle in (
        holder_modulus[100:140],
        original.signature[:40],
        x509.SubjectKeyIdentifier.from_public_key(holder_key.public_key()).digest,
        b"Chiyoda-ku",
        b"ABCDEFGHJKLMNP",
        JLIS_AGENCY.encode(),
        b"ocsp.example.jp",
    ):
        assert needle not in text
    # The persona's names, the sandbox policy (same length as the production one).
    subject_cn = x509_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    persona_cn = persona_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert subject_cn == persona_cn
    assert certificate.policies == {SANDBOX_SIGN_POLICY_OID if sign else SANDBOX_AUTH_POLICY_OID}
    assert certificate.is_sandbox
    if sign:
        info = certificate.basic_info
        assert info.birth_date == persona.basic_info.birth_date
        assert info.sex == persona.basic_info.sex
        assert len(certificate.name_substitute_positions) == 0
        assert info.name[0] == persona.basic_info.name[0]
    # It chains to the transcript CA as a sandbox certificate, and never to J-LIS roots.
    path = validate_path(
        certificate, TrustStore().with_sandbox([authority]), purpose=certificate.kind
    )
    assert not path.is_production
    assert "transcript" in path.anchor.subject.rfc4514_string()
    with pytest.raises(CertificateValidationError):
        validate_path(certificate, TrustStore.jlis(), purpose=certificate.kind)


def test_certificates_of_one_issuer_share_one_transcript_ca(
    sandbox_issuer: SandboxIssuer,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    first, second = (
        sandbox_issuer.issue_auth_certificate(key.public_key()).public_bytes(
            serialization.Encoding.DER
        )
        for _ in range(2)
    )
    redactor = CertificateRedactor(b"seed")
    one, two = redactor.redact(first, None), redactor.redact(second, None)
    (authority,) = redactor.authority_certificates()
    for redacted in (one, two):
        x509.load_der_x509_certificate(redacted.der).verify_directly_issued_by(authority)
    assert one.key.public_key() != two.key.public_key()


@pytest.mark.parametrize(
    ("source", "byte_length", "characters"),
    [
        ("佐藤\u3000花子", 15, 5),
        ("佐藤\u3000花子", 7, 5),
        ("", 9, 3),
        ("ab", 3, 3),
        ("長い名前", 4, 4),
    ],
)
def test_fitted_names_keep_byte_and_character_counts(
    source: str, byte_length: int, characters: int
) -> None:
    # The substitute flags hold one character per character of the name (docs/card.md §9.2).
    fitted = _fit_characters(source, byte_length, characters, b"seed")
    assert fitted is not None
    assert len(fitted.encode("utf-8")) == byte_length and len(fitted) == characters
    assert _fit_characters(source, 13, 4, b"seed") is None


def test_a_certificate_without_an_rsa_key_is_left_to_the_value_scrub() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elliptic")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(DataError, match="RSA"):
        CertificateRedactor(b"seed").redact(
            certificate.public_bytes(serialization.Encoding.DER), None
        )
