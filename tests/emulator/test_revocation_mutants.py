"""Malformed OCSP responses and CRLs make the revocation status unknown
(``RevocationCheckError``), never a traceback: cryptography decodes names, extensions and
algorithms lazily, and what fails there is malformed input like any other (issue 7)."""

from __future__ import annotations

import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.errors import MynakitError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import (
    RevocationCheckError,
    RevocationState,
    check_crl,
    verify_ocsp_response,
)
from support.certificate_fuzz import mutate_der

pytestmark = pytest.mark.emulator

NONCE = b"0123456789abcdef"
SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")


@pytest.fixture(scope="module")
def issued(
    sandbox_issuer: SandboxIssuer,
) -> tuple[x509.Certificate, x509.Certificate, bytes, bytes]:
    """An auth certificate, its root, an OCSP response about it and the current CRL (DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = sandbox_issuer.issue_auth_certificate(key.public_key())
    root = sandbox_issuer.root_for(CertificateKind.AUTH)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, root, hashes.SHA1())
        .add_extension(x509.OCSPNonce(NONCE), critical=False)
        .build()
    )
    response = sandbox_issuer.ocsp_response(request.public_bytes(serialization.Encoding.DER))
    crl = sandbox_issuer.crl(CertificateKind.AUTH).public_bytes(serialization.Encoding.DER)
    return certificate, root, response, crl


def test_the_unmutated_answers_say_good(
    issued: tuple[x509.Certificate, x509.Certificate, bytes, bytes],
) -> None:
    certificate, root, response, crl = issued
    assert verify_ocsp_response(response, certificate, root, nonce=NONCE).is_good
    status = check_crl(certificate, x509.load_der_x509_crl(crl), root)
    assert status.state is RevocationState.GOOD


def test_an_unknown_ocsp_signature_algorithm_is_a_revocation_check_error(
    issued: tuple[x509.Certificate, x509.Certificate, bytes, bytes],
) -> None:
    certificate, root, response, _ = issued
    assert SHA256_WITH_RSA in response
    mutated = response.replace(SHA256_WITH_RSA, SHA256_WITH_RSA[:-1] + b"\x7f")
    with pytest.raises(RevocationCheckError, match="malformed"):
        verify_ocsp_response(mutated, certificate, root, nonce=NONCE)


def test_a_crl_issuer_name_that_does_not_parse_is_a_revocation_check_error(
    issued: tuple[x509.Certificate, x509.Certificate, bytes, bytes],
) -> None:
    certificate, root, _, crl = issued
    # The issuer's organisation is a UTF8String; cryptography checks its UTF-8 only when the
    # name is first used, which made check_crl raise ValueError.
    organization = b"JPKI-SANDBOX"
    assert b"\x0c" + bytes((len(organization),)) + organization in crl
    broken = organization[:-1] + b"\xff"
    parsed = x509.load_der_x509_crl(crl.replace(organization, broken, 1))
    with pytest.raises(RevocationCheckError, match="malformed"):
        check_crl(certificate, parsed, root)


def test_seeded_mutants_raise_only_documented_errors(
    issued: tuple[x509.Certificate, x509.Certificate, bytes, bytes],
) -> None:
    certificate, root, response, crl = issued
    rng = random.Random(3)
    outcomes: dict[str, int] = {}
    for _ in range(600):
        try:
            if rng.random() < 0.5:
                verify_ocsp_response(mutate_der(rng, response), certificate, root, nonce=NONCE)
            else:
                try:
                    parsed = x509.load_der_x509_crl(mutate_der(rng, crl))
                except (ValueError, x509.InvalidVersion):
                    continue  # refused at load: fetch_crl reports it (tested there)
                check_crl(certificate, parsed, root)
            outcome = "answered"
        except MynakitError as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) <= {"answered", "RevocationCheckError"}, outcomes
    assert outcomes["RevocationCheckError"] > 0
