"""CMS SignedData: building, DER details and verification, with in-memory keys (no card).

The card-made signatures and the openssl cross-check are in the emulator tier
(tests/emulator/test_relying_cms_pdf.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.card.jpki import DIGEST_INFO_PREFIXES
from mynakit.errors import DataError, UsageError
from mynakit.jpki.cms import (
    DIGEST_ALGORITHMS,
    CmsVerificationError,
    load_cms,
    sign_cms,
    sign_raw,
    to_pem,
    verify_cms,
)
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, ValidationFailure
from support.jpki_builders import (
    TEST_SIGN_CA_NAME,
    build_root,
    der,
    named_key,
    sign_certificate,
)

pytestmark = pytest.mark.unit

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
CONTENT = "申請書 — application form\n".encode()
_HASH_BY_PREFIX = {prefix: name for name, prefix in DIGEST_INFO_PREFIXES.items()}
_HASHES = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


class DigestInfoKey:
    """A software signer with the card's interface: it is handed a DigestInfo
    (docs/card.md §5.1)."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.signed: list[bytes] = []

    def sign_digest_info(self, digest_info: bytes) -> bytes:
        self.signed.append(digest_info)
        for prefix, name in _HASH_BY_PREFIX.items():
            if digest_info.startswith(prefix):
                digest = digest_info[len(prefix) :]
                return self.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(_HASHES[name]))
        raise AssertionError("not a DigestInfo of docs/card.md §5.1")


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: named_key(name) for name in ("root", "holder", "foreign_root")}


@pytest.fixture(scope="module")
def root(keys: dict[str, rsa.RSAPrivateKey]) -> x509.Certificate:
    return build_root(
        keys["root"],
        TEST_SIGN_CA_NAME,
        not_before=NOW - dt.timedelta(days=365),
        not_after=NOW + dt.timedelta(days=3650),
    )


def _sign_certificate(issuer_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey) -> bytes:
    return der(
        sign_certificate(
            issuer_key,
            holder_key,
            not_before=NOW - dt.timedelta(days=30),
            not_after=NOW + dt.timedelta(days=1800),
            serial=0x5150,
        )
    )


@pytest.fixture(scope="module")
def certificate(keys: dict[str, rsa.RSAPrivateKey]) -> bytes:
    return _sign_certificate(keys["root"], keys["holder"])


@pytest.fixture(scope="module")
def trust_store(root: x509.Certificate) -> TrustStore:
    return TrustStore().add(root)


def test_digest_info_signer_matches_a_pkcs1_key(keys: dict[str, rsa.RSAPrivateKey]) -> None:
    # PKCS#1 v1.5 is deterministic: the DigestInfo path must produce the very same bytes as
    # cryptography's own encoding, which proves the docs/card.md §5.1 prefixes.
    for name, algorithm in _HASHES.items():
        expected = keys["holder"].sign(CONTENT, padding.PKCS1v15(), algorithm)
        assert sign_raw(DigestInfoKey(keys["holder"]), CONTENT, name) == expected
        assert sign_raw(keys["holder"], CONTENT, name) == expected


@pytest.mark.parametrize("digest", DIGEST_ALGORITHMS)
@pytest.mark.parametrize("detached", [False, True])
def test_sign_and_verify(
    keys: dict[str, rsa.RSAPrivateKey],
    certificate: bytes,
    trust_store: TrustStore,
    root: x509.Certificate,
    digest: str,
    detached: bool,
) -> None:
    signer = DigestInfoKey(keys["holder"])
    signature = sign_cms(
        CONTENT,
        signer,
        certificate,
        digest_algorithm=digest,
        detached=detached,
        ca_certificates=[root],
        signing_time=NOW,
    )
    assert len(signer.signed) == 1
    result = verify_cms(signature, CONTENT if detached else None, trust_store=trust_store)
    assert result.detached is detached
    assert result.content == CONTENT
    assert result.digest_algorithm == digest
    assert result.signing_time == NOW
    assert result.signer.serial_number == 0x5150
    assert result.to_dict()["signer"]["kind"] == "sign"


def test_structure_is_canonical_der_with_the_expected_attributes(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, root: x509.Certificate
) -> None:
    signature = sign_cms(CONTENT, keys["holder"], certificate, ca_certificates=[root])
    content_info = asn1_cms.ContentInfo.load(signature)
    # Re-encoding from scratch gives the same bytes: SET OFs are sorted, lengths minimal.
    assert asn1_cms.ContentInfo.load(signature).dump(force=True) == signature
    signed_data = content_info["content"]
    assert len(signed_data["certificates"]) == 2
    signer_info = signed_data["signer_infos"][0]
    attributes = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    assert set(attributes) == {
        "content_type",
        "signing_time",
        "message_digest",
        "signing_certificate_v2",
    }
    ess = attributes["signing_certificate_v2"]["certs"][0]
    digest = hashes.Hash(hashes.SHA256())
    digest.update(certificate)
    assert ess["cert_hash"].native == digest.finalize()
    assert ess["issuer_serial"]["serial_number"].native == 0x5150


def test_pem_round_trip(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    pem = to_pem(sign_cms(CONTENT, keys["holder"], certificate))
    assert pem.startswith(b"-----BEGIN CMS-----")
    assert verify_cms(pem, trust_store=trust_store).content == CONTENT
    legacy = pem.replace(b"BEGIN CMS", b"BEGIN PKCS7").replace(b"END CMS", b"END PKCS7")
    assert verify_cms(legacy, trust_store=trust_store).content == CONTENT


def test_tampered_content_fails(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    detached = sign_cms(CONTENT, keys["holder"], certificate, detached=True)
    with pytest.raises(CmsVerificationError, match="digest"):
        verify_cms(detached, CONTENT + b"!", trust_store=trust_store)
    attached = sign_cms(CONTENT, keys["holder"], certificate)
    tampered = attached.replace(CONTENT, CONTENT.upper())
    assert tampered != attached
    with pytest.raises(CmsVerificationError, match="digest"):
        verify_cms(tampered, trust_store=trust_store)
    with pytest.raises(CmsVerificationError, match="differs"):
        verify_cms(attached, b"other", trust_store=trust_store)


def test_tampered_signature_fails(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    signature = bytearray(sign_cms(CONTENT, keys["holder"], certificate))
    signature[-5] ^= 0x01  # the last bytes are the RSA signature value
    with pytest.raises(CmsVerificationError, match="does not verify"):
        verify_cms(bytes(signature), trust_store=trust_store)


def test_untrusted_signer_fails(
    keys: dict[str, rsa.RSAPrivateKey], trust_store: TrustStore
) -> None:
    foreign = _sign_certificate(keys["foreign_root"], keys["holder"])
    signature = sign_cms(CONTENT, keys["holder"], foreign)
    with pytest.raises(CertificateValidationError) as caught:
        verify_cms(signature, trust_store=trust_store)
    assert caught.value.reason is ValidationFailure.BAD_SIGNATURE


def test_certificate_is_checked_at_signing_time(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    late = NOW + dt.timedelta(days=4000)  # after the certificate and the root expired
    signature = sign_cms(CONTENT, keys["holder"], certificate, signing_time=late)
    with pytest.raises(CertificateValidationError) as caught:
        verify_cms(signature, trust_store=trust_store)
    assert caught.value.reason is ValidationFailure.EXPIRED
    assert verify_cms(signature, trust_store=trust_store, at=NOW).signing_time == late


def test_bad_inputs(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    detached = sign_cms(CONTENT, keys["holder"], certificate, detached=True)
    with pytest.raises(UsageError, match="detached"):
        verify_cms(detached, trust_store=trust_store)
    with pytest.raises(DataError):
        load_cms(b"not a signature")
    with pytest.raises(UsageError, match="md5"):
        sign_cms(CONTENT, keys["holder"], certificate, digest_algorithm="md5")
    with pytest.raises(UsageError):
        sign_raw(object(), CONTENT, "sha256")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="aware"):
        sign_cms(CONTENT, keys["holder"], certificate, signing_time=dt.datetime(2025, 1, 1))


def test_mutated_signatures_raise_only_documented_errors(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    # asn1crypto decodes names, keys and attribute values lazily; what fails there must come
    # out as a DataError, like any malformed input (issue 7: no traceback for bad input).
    import random

    from mynakit.errors import MynakitError
    from support.certificate_fuzz import mutate_der

    originals = [
        sign_cms(CONTENT, keys["holder"], certificate, detached=detached)
        for detached in (False, True)
    ]
    rng = random.Random(11)
    outcomes: dict[str, int] = {}
    for _ in range(150):  # asn1crypto's full decode makes each one cost milliseconds
        mutant = mutate_der(rng, rng.choice(originals))
        try:
            verify_cms(mutant, CONTENT, trust_store=trust_store)
            outcome = "accepted"
        except MynakitError as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) <= {
        "accepted",
        "DataError",
        "TlvError",
        "CmsVerificationError",
        "CertificateValidationError",
        "UsageError",
    }, outcomes
    assert outcomes["DataError"] > 0 and outcomes["CmsVerificationError"] > 0


def test_a_signer_name_asn1crypto_cannot_compare_is_a_data_error(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    # The issuer name appears in the certificate, in the SignerIdentifier and in the signed
    # ESS attribute; an unassigned code point in the SignerIdentifier's copy (U+0378, UTF-8
    # CD B8) made asn1crypto's name comparison raise ValueError.
    signature = sign_cms(CONTENT, keys["holder"], certificate)
    unit = b"unit tests"
    first = signature.index(unit)
    position = signature.index(unit, first + 1)
    mutated = signature[:position] + b"unit tes\xcd\xb8" + signature[position + len(unit) :]
    with pytest.raises(DataError, match="malformed CMS signature"):
        verify_cms(mutated, CONTENT, trust_store=trust_store)


def test_an_unknown_key_algorithm_in_the_carried_certificate_is_a_data_error(
    keys: dict[str, rsa.RSAPrivateKey], certificate: bytes, trust_store: TrustStore
) -> None:
    # rsaEncryption 1.2.840.113549.1.1.1 with its last arc changed: asn1crypto raised KeyError.
    signature = sign_cms(CONTENT, keys["holder"], certificate)
    rsa_encryption = bytes.fromhex("06092a864886f70d010101")
    assert rsa_encryption in signature
    mutated = signature.replace(rsa_encryption, rsa_encryption[:-1] + b"\x7f", 1)
    with pytest.raises(DataError):
        verify_cms(mutated, CONTENT, trust_store=trust_store)
