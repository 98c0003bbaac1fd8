"""CMS SignedData (RFC 5652) made with a JPKI key, and its verification.

The card signs a DigestInfo it is handed (docs/card.md §5.1), so the CMS wrapper around
it must be right: DER SET OF ordering, signed attributes, attached and detached content
(docs/readers.md §1.7). Signed attributes are contentType, signingTime, messageDigest and ESS
signingCertificateV2 (RFC 5035), which makes the result CAdES-BES shaped.

Verification checks the signature and message digest, then the signer's certificate with
:func:`mynakit.jpki.validation.validate_path` at the signing time: a JPKI path is one step to a
trusted root, so certificates carried inside the signature are never trusted as anchors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from asn1crypto import cms as asn1_cms
from asn1crypto import pem as asn1_pem
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.jpki import digest_info
from mynakit.errors import DataError, UsageError, VerificationError
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate
from mynakit.jpki.inputs import InputKind, check_input_size, pem_or_der
from mynakit.jpki.revocation import RevocationChecker
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import ValidatedPath, validate_path

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
DIGEST_ALGORITHMS = tuple(HASHES)
PEM_LABEL = "CMS"  # RFC 7468 §9; OpenSSL also reads "PKCS7", which load_cms accepts too
# RSASSA-PKCS1-v1_5 is what the card does (docs/card.md §5.1); these are its CMS names (RFC 3370,
# 4055).
_PKCS1_SIGNATURE_ALGORITHMS = {
    "rsassa_pkcs1v15",
    "sha1_rsa",
    "sha256_rsa",
    "sha384_rsa",
    "sha512_rsa",
}


class CmsVerificationError(VerificationError):
    """A CMS signature did not verify (bad signature, digest mismatch, wrong content)."""


# -- signers ----------------------------------------------------------------------------------


@runtime_checkable
class DigestInfoSigner(Protocol):
    """Signs a DER DigestInfo with PKCS#1 v1.5 padding, as the card's ``80 2A 00 80`` does."""

    def sign_digest_info(self, digest_info: bytes) -> bytes: ...


@runtime_checkable
class KeyLikeSigner(Protocol):
    """A cryptography-shaped private key (an ``RSAPrivateKey``, or the card's
    ``CardPrivateKey``): ``sign(data, padding, algorithm)``."""

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes: ...


Signer = DigestInfoSigner | KeyLikeSigner


def hash_bytes(hash_name: str, data: bytes) -> bytes:
    hasher = hashes.Hash(HASHES[_hash_name(hash_name)]())
    hasher.update(data)
    return hasher.finalize()


def sign_raw(signer: Signer, data: bytes, hash_name: str) -> bytes:
    """RSASSA-PKCS1-v1_5 signature of ``data`` hashed with ``hash_name``, by any signer."""
    name = _hash_name(hash_name)
    if isinstance(signer, DigestInfoSigner):
        return signer.sign_digest_info(digest_info(name, hash_bytes(name, data)))
    if isinstance(signer, KeyLikeSigner):
        return signer.sign(data, padding.PKCS1v15(), HASHES[name]())
    raise UsageError(
        f"{type(signer).__name__} cannot sign: it needs sign_digest_info(digest_info) "
        "or sign(data, padding, algorithm)"
    )


# -- signing ----------------------------------------------------------------------------------


def sign_cms(
    content: bytes,
    signer: Signer,
    certificate: x509.Certificate | JpkiCertificate | bytes,
    *,
    digest_algorithm: str = "sha256",
    detached: bool = False,
    ca_certificates: Sequence[x509.Certificate | JpkiCertificate | bytes] = (),
    signing_time: dt.datetime | None = None,
) -> bytes:
    """A DER CMS SignedData over ``content``, signed by ``signer`` whose certificate is
    ``certificate``. With ``detached`` the content is left out (verify with the file).
    ``ca_certificates`` are included for the verifier's convenience, never trusted by it.
    """
    name = _hash_name(digest_algorithm)
    signer_certificate = asn1_certificate(certificate)
    when = signing_time if signing_time is not None else dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise UsageError("the signing time must be an aware datetime")

    signed_attributes = asn1_cms.CMSAttributes(
        [
            asn1_cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            asn1_cms.CMSAttribute({"type": "signing_time", "values": [_cms_time(when)]}),
            asn1_cms.CMSAttribute(
                {"type": "message_digest", "values": [hash_bytes(name, content)]}
            ),
            asn1_cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [_signing_certificate_v2(signer_certificate)],
                }
            ),
        ]
    )
    signer_info = asn1_cms.SignerInfo(
        {
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value=asn1_cms.IssuerAndSerialNumber(
                    {
                        "issuer": signer_certificate.issuer,
                        "serial_number": signer_certificate.serial_number,
                    }
                ),
            ),
            "digest_algorithm": {"algorithm": name},
            "signed_attrs": signed_attributes,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": b"",
        }
    )
    # RFC 5652 §5.4: the signature covers the DER of the attributes with the SET OF tag, not
    # the [0] IMPLICIT tag they carry inside SignerInfo.
    signer_info["signature"] = sign_raw(signer, _signed_attributes_der(signer_info), name)

    certificates = [signer_certificate]
    for extra in ca_certificates:
        candidate = asn1_certificate(extra)
        if candidate.dump() != signer_certificate.dump():
            certificates.append(candidate)
    signed_data = asn1_cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": name}],
            "encap_content_info": {
                "content_type": "data",
                "content": None if detached else content,
            },
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    content_info = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    der: bytes = content_info.dump(force=True)
    return der


def to_pem(der: bytes) -> bytes:
    armored: bytes = asn1_pem.armor(PEM_LABEL, der)
    return armored


# What asn1crypto raises when a lazily decoded part turns out malformed: unknown OIDs in a
# choice (KeyError), bad string contents (ValueError), wrong types (TypeError). The library's
# own errors are none of these.
_LAZY_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError)


def load_cms(data: bytes) -> asn1_cms.ContentInfo:
    """Parse a CMS ContentInfo from DER or PEM ("CMS" or "PKCS7"), size-capped and with the
    linear PEM decoder of :mod:`mynakit.jpki.inputs`."""
    check_input_size(data, InputKind.CMS, "the CMS signature")
    objects = pem_or_der(data, ("CMS", "PKCS7"), "the CMS signature")
    if len(objects) != 1:
        raise DataError(f"the CMS input holds {len(objects)} PEM blocks, expected one")
    der = objects[0]
    try:
        content_info = asn1_cms.ContentInfo.load(der)
        content_type = content_info["content_type"].native
        # asn1crypto parses lazily; parse everything now so malformed input fails here.
        content_info["content"].native  # noqa: B018
    except _LAZY_PARSE_ERRORS as error:
        raise DataError(f"not a CMS structure: {error}") from error
    if content_type != "signed_data":
        raise DataError(f"CMS content is {content_type}, not signed data")
    return content_info


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CmsVerification:
    """A verified CMS signature."""

    signer: JpkiCertificate
    path: ValidatedPath
    digest_algorithm: str
    signing_time: dt.datetime | None
    detached: bool
    content: bytes

    def to_dict(self) -> dict[str, Any]:
        anchor = self.path.anchor.certificate
        return {
            "valid": True,
            "detached": self.detached,
            "digest_algorithm": self.digest_algorithm,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "content_length": len(self.content),
            "signer": {
                "kind": self.signer.kind.value,
                "serial": self.signer.serial_number,
                "serial_hex": f"{self.signer.serial_number:X}",
                "not_before": self.signer.not_before.isoformat(),
                "not_after": self.signer.not_after.isoformat(),
            },
            "trust": {
                "root": anchor.subject_name.rfc4514_string(),
                "root_serial": f"{anchor.serial_number:X}",
                "production": self.path.is_production,
                "validated_at": self.path.validated_at.isoformat(),
                "revocation": (
                    f"{self.path.revocation.state.value} ({self.path.revocation.source})"
                    if self.path.revocation is not None
                    else "not checked"
                ),
            },
        }


def verify_cms(
    signature: bytes,
    content: bytes | None = None,
    *,
    trust_store: TrustStore,
    at: dt.datetime | None = None,
    revocation: RevocationChecker | None = None,
    require_production: bool = False,
) -> CmsVerification:
    """Verify a one-signer CMS SignedData (DER or PEM).

    ``content`` is required for a detached signature; for an attached one it may be given and
    must then equal the signed content. The certificate is validated at ``at``, else at the
    signed signingTime, else now. signingTime is what the signer claims; a relying party with
    a trusted time for the signature (a timestamp, its own receipt time) passes it as ``at``.
    Signature problems raise :class:`CmsVerificationError`, certificate problems
    ``CertificateValidationError``.
    """
    signed_data = load_cms(signature)["content"]
    try:
        return _verify_signed_data(
            signed_data,
            content,
            trust_store=trust_store,
            at=at,
            revocation=revocation,
            require_production=require_production,
        )
    except _LAZY_PARSE_ERRORS as error:
        # asn1crypto decodes nested parts (names, keys, attribute values) on first access;
        # what fails there is malformed input, reported like any other (RFC 5652 §5).
        raise DataError(f"malformed CMS signature: {error}") from error


def _verify_signed_data(
    signed_data: asn1_cms.SignedData,
    content: bytes | None,
    *,
    trust_store: TrustStore,
    at: dt.datetime | None,
    revocation: RevocationChecker | None,
    require_production: bool,
) -> CmsVerification:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        # Verifying only some signers would let an unverified one ride along (the
        # GHSA-g258 lesson, docs/readers.md §1.7); JPKI signatures have one signer.
        raise DataError(f"the signature has {len(signer_infos)} signers; exactly one is supported")
    signer_info = signer_infos[0]

    encapsulated = signed_data["encap_content_info"]
    embedded = encapsulated["content"].native if encapsulated["content"] else None
    detached = embedded is None
    if detached:
        if content is None:
            raise UsageError("this is a detached signature: give the signed content too")
        signed_content = content
    else:
        assert isinstance(embedded, bytes)
        if content is not None and content != embedded:
            raise CmsVerificationError("the content given differs from the content signed")
        signed_content = embedded

    name = _digest_name(signer_info["digest_algorithm"]["algorithm"].native)
    _check_signature_algorithm(signer_info["signature_algorithm"], name)
    signer = _signer_certificate(signed_data, signer_info["sid"])
    key = signer.certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CmsVerificationError("the signer's key is not RSA, as JPKI keys are")

    signing_time: dt.datetime | None = None
    attributes = signer_info["signed_attrs"]
    if attributes:
        values = _attribute_values(attributes)
        content_type = values.get("content_type")
        if content_type != encapsulated["content_type"].native:
            raise CmsVerificationError(
                "the signed contentType differs from the encapsulated content type"
            )
        if values.get("message_digest") != hash_bytes(name, signed_content):
            raise CmsVerificationError(
                "message digest mismatch: the content is not what was signed"
            )
        signing_time = values.get("signing_time")
        signed_bytes = _signed_attributes_der(signer_info)
    else:
        signed_bytes = signed_content

    try:
        key.verify(
            signer_info["signature"].native, signed_bytes, padding.PKCS1v15(), HASHES[name]()
        )
    except InvalidSignature:
        raise CmsVerificationError(
            f"the signature does not verify with the key of certificate {signer.serial_number}"
        ) from None

    if signer.kind not in (CertificateKind.AUTH, CertificateKind.SIGN):
        raise CmsVerificationError(f"a {signer.kind.value} certificate made this signature")
    when = at if at is not None else signing_time
    path = validate_path(
        signer,
        trust_store,
        at=when,
        purpose=signer.kind,
        require_production=require_production,
        revocation=revocation,
    )
    return CmsVerification(
        signer=signer,
        path=path,
        digest_algorithm=name,
        signing_time=signing_time,
        detached=detached,
        content=signed_content,
    )


# -- helpers ----------------------------------------------------------------------------------


def _hash_name(hash_name: str) -> str:
    name = hash_name.lower().replace("-", "")
    if name not in HASHES:
        raise UsageError(f"digest {hash_name!r} is not one of {', '.join(DIGEST_ALGORITHMS)}")
    return name


def _digest_name(asn1_name: str) -> str:
    if asn1_name not in HASHES:
        raise DataError(f"the signature uses digest {asn1_name}, not one of SHA-1/2")
    return asn1_name


def _check_signature_algorithm(algorithm: asn1_cms.SignedDigestAlgorithm, digest: str) -> None:
    name = algorithm["algorithm"].native
    if name not in _PKCS1_SIGNATURE_ALGORITHMS:
        raise DataError(f"the signature algorithm is {name}, not RSA PKCS#1 v1.5")
    if name != "rsassa_pkcs1v15" and name.removesuffix("_rsa") != digest:
        raise CmsVerificationError(f"signature algorithm {name} disagrees with digest {digest}")


def _signed_attributes_der(signer_info: asn1_cms.SignerInfo) -> bytes:
    # Keep the bytes as received (a re-encoding might differ from what was signed) and put
    # back the universal SET tag in place of [0] IMPLICIT.
    tagged: bytes = signer_info["signed_attrs"].dump()
    return b"\x31" + tagged[1:]


def _attribute_values(attributes: asn1_cms.CMSAttributes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in attributes:
        kind = attribute["type"].native
        if kind in values:
            raise CmsVerificationError(f"signed attribute {kind} appears twice")
        items = attribute["values"]
        if len(items) != 1:
            raise CmsVerificationError(f"signed attribute {kind} has {len(items)} values")
        values[kind] = items[0].native
    return values


def _signer_certificate(
    signed_data: asn1_cms.SignedData, signer_identifier: asn1_cms.SignerIdentifier
) -> JpkiCertificate:
    candidates = [
        choice.chosen
        for choice in (signed_data["certificates"] or [])
        if choice.name == "certificate"
    ]
    for candidate in candidates:
        if _identifies(signer_identifier, candidate):
            return parse_certificate(candidate.dump())
    raise CmsVerificationError(
        "the signature does not carry the signer's certificate (mynakit includes it when signing)"
    )


def _identifies(
    signer_identifier: asn1_cms.SignerIdentifier, certificate: asn1_x509.Certificate
) -> bool:
    # Both SignerIdentifier forms (RFC 5652 §5.3); checking only one lets a signature name a
    # certificate that is not the one verified (GHSA-58hw, docs/readers.md §1.8).
    if signer_identifier.name == "issuer_and_serial_number":
        chosen = signer_identifier.chosen
        return bool(
            chosen["issuer"] == certificate.issuer
            and chosen["serial_number"].native == certificate.serial_number
        )
    if signer_identifier.name == "subject_key_identifier":
        return bool(certificate.key_identifier == signer_identifier.chosen.native)
    return False


def _signing_certificate_v2(certificate: asn1_x509.Certificate) -> asn1_tsp.SigningCertificateV2:
    # ESSCertIDv2 with the default hash, SHA-256, left out as DER requires (RFC 5035 §4).
    return asn1_tsp.SigningCertificateV2(
        {
            "certs": [
                asn1_tsp.ESSCertIDv2(
                    {
                        "cert_hash": hash_bytes("sha256", certificate.dump()),
                        "issuer_serial": {
                            "issuer": [
                                asn1_x509.GeneralName(
                                    name="directory_name", value=certificate.issuer
                                )
                            ],
                            "serial_number": certificate.serial_number,
                        },
                    }
                )
            ]
        }
    )


def _cms_time(moment: dt.datetime) -> asn1_cms.Time:
    # RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    moment = moment.astimezone(dt.UTC).replace(microsecond=0)
    if 1950 <= moment.year < 2050:
        return asn1_cms.Time(name="utc_time", value=moment)
    return asn1_cms.Time(name="general_time", value=moment)


def asn1_certificate(
    certificate: x509.Certificate | JpkiCertificate | bytes,
) -> asn1_x509.Certificate:
    """Any certificate form as asn1crypto's, fully parsed (a bad one fails here)."""
    if isinstance(certificate, JpkiCertificate):
        der = certificate.der
    elif isinstance(certificate, x509.Certificate):
        der = certificate.public_bytes(Encoding.DER)
    elif isinstance(certificate, bytes):
        der = certificate
    else:
        raise UsageError(f"not a certificate: {type(certificate).__name__}")
    try:
        parsed = asn1_x509.Certificate.load(der)
        parsed.native  # noqa: B018 - parse fully now, so a bad certificate fails here
    except ValueError as error:
        raise DataError(f"malformed certificate: {error}") from error
    return parsed
