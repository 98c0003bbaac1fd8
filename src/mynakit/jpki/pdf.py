"""PDF signatures (PAdES B-B) made with a JPKI key through pyHanko, and their verification.

pyHanko's ``Signer`` is agnostic about where the private-key operation happens:
:class:`JpkiPdfSigner` implements ``async_sign_raw`` with any signer of
:mod:`mynakit.jpki.cms` (the card's ``CardPrivateKey`` or a DigestInfo signer), so the PDF
side is pyHanko's own, incremental update, ``/SubFilter /ETSI.CAdES.detached`` and ESS
signingCertificateV2 included.

Verification runs pyHanko's validator on *every* signature of the file (the GHSA-g258 lesson,
docs/readers.md §1.7) with only the trust store's roots and no network fetching, then the JPKI
profile check of :func:`mynakit.jpki.validation.validate_path` on each signer certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from asn1crypto import x509 as asn1_x509
from asn1crypto.algos import SignedDigestAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields as pdf_fields
from pyhanko.sign import signers as pdf_signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation import EmbeddedPdfSignature, validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mynakit.errors import DataError, UsageError, VerificationError
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate
from mynakit.jpki.cms import Signer, asn1_certificate, sign_raw
from mynakit.jpki.inputs import InputKind, check_input_size, read_bounded
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, validate_path

DEFAULT_FIELD_PREFIX = "Signature"
PDF_DIGESTS = ("sha256", "sha384", "sha512")  # PAdES B-B: no SHA-1 (ETSI EN 319 142-1)
# What may follow a signature in later revisions (pyHanko's difference analysis): further
# signatures and validation data, form filling, annotations. Anything else is a change to the
# signed document.
_ACCEPTED_MODIFICATIONS = ("none", "lta_updates", "form_filling", "annotations", None)


# What pyHanko raises on a file, a signature dictionary or a /Contents it cannot read: its own
# PdfError and SignatureValidationError (a ValueError), and, on damaged objects and streams,
# KeyError, IndexError, AttributeError, NotImplementedError (unknown filter) and zlib.error
# (all seen with seeded mutants of a signed PDF), OverflowError and its internal asserts.
_PDF_READ_ERRORS = (
    PdfError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    OverflowError,
    AssertionError,
    zlib.error,
)


class PdfVerificationError(VerificationError):
    """A PDF has no signature, or one of its signatures did not verify."""


#: Why a PDF is never signed with the user-authentication key, and why such a signature does
#: not verify. The auth certificate names no person and is for proving who is at the terminal:
#: policy auth-class30, KeyUsage digitalSignature only (docs/card.md §9.1, §9.2), while a
#: document signature needs the signature certificate's nonRepudiation (contentCommitment,
#: RFC 5280 §4.2.1.3) and signature policy; PDF validators such as pyHanko refuse the auth key
#: for it (CHAIN_CONSTRAINTS_FAILURE). A CMS signature over a challenge with the auth key is a
#: different use (authentication) and stays possible with mynakit.jpki.cms.
AUTH_KEY_NOT_FOR_DOCUMENTS = (
    "the user-authentication key does not sign documents: its certificate is for proving who "
    "is at the terminal (policy auth-class30, key usage digitalSignature without "
    "nonRepudiation), so PDF validators reject it for a document signature; sign PDFs with "
    "the signature key (署名用電子証明書)"
)


def require_document_signing_key(kind: CertificateKind | str) -> None:
    """Raise ``UsageError`` (with the reason) unless ``kind`` is the signature key or
    certificate; call it before asking for a PIN, so a refused signature costs nothing."""
    value = kind.value if isinstance(kind, CertificateKind) else kind
    if value != CertificateKind.SIGN.value:
        raise UsageError(AUTH_KEY_NOT_FOR_DOCUMENTS if value == "auth" else f"no PDF key {value!r}")


class JpkiPdfSigner(pdf_signers.Signer):
    """A pyHanko signer whose private key is a JPKI key (the card, or any cms.Signer).

    The signature mechanism is fixed to RSASSA-PKCS1-v1_5, the only one the card offers with
    a host-built DigestInfo (docs/card.md §5.1, §11.13).
    """

    def __init__(
        self,
        key: Signer,
        certificate: x509.Certificate | JpkiCertificate | bytes,
        *,
        ca_certificates: Sequence[x509.Certificate | JpkiCertificate | bytes] = (),
    ) -> None:
        signer_certificate = asn1_certificate(certificate)
        require_document_signing_key(parse_certificate(signer_certificate.dump()).kind)
        public_key = _cryptography_certificate(signer_certificate).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise UsageError("JPKI keys are RSA; this certificate holds another kind")
        self._key = key
        self._signature_length = (public_key.key_size + 7) // 8
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]  # pyHanko: untyped __init__
        for extra in ca_certificates:
            registry.register(asn1_certificate(extra))
        super().__init__(
            signing_cert=signer_certificate,
            cert_registry=registry,
            signature_mechanism=SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
            prefer_pss=False,
        )

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            # pyHanko sizes the /Contents placeholder with a dry run; the card is not needed
            # (and must not be asked: a signature costs a PIN-guarded operation).
            return bytes(self._signature_length)
        return sign_raw(self._key, data, digest_algorithm)


@dataclass(frozen=True)
class PdfSigned:
    field_name: str
    output_length: int
    digest_algorithm: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "field_name": self.field_name,
            "bytes": self.output_length,
            "digest_algorithm": self.digest_algorithm,
            "subfilter": "ETSI.CAdES.detached",
        }


def sign_pdf(
    source: str | os.PathLike[str] | bytes,
    output: str | os.PathLike[str] | IO[bytes],
    signer: JpkiPdfSigner,
    *,
    field_name: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    digest_algorithm: str = "sha256",
) -> PdfSigned:
    """Add a PAdES B-B signature to the PDF ``source`` (a path or the bytes) and write the
    signed file to ``output``. ``field_name`` defaults to the first free ``SignatureN``."""
    if digest_algorithm not in PDF_DIGESTS:
        raise UsageError(f"PDF signatures use {', '.join(PDF_DIGESTS)}, not {digest_algorithm}")
    data = _read_source(source)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    except _PDF_READ_ERRORS as error:
        raise DataError(f"not a readable PDF: {error}") from error
    if writer.prev.encrypted:
        raise UsageError("the PDF is encrypted; decrypt it before signing")
    name = field_name or _free_field_name(writer)
    metadata = pdf_signers.PdfSignatureMetadata(
        field_name=name,
        md_algorithm=digest_algorithm,
        subfilter=pdf_fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    signed = io.BytesIO()
    try:
        pdf_signers.PdfSigner(metadata, signer=signer).sign_pdf(writer, output=signed)
    except (SigningError, PdfError) as error:
        raise DataError(f"cannot sign this PDF: {error}") from error
    result = signed.getvalue()
    if isinstance(output, str | os.PathLike):
        Path(output).write_bytes(result)
    else:
        output.write(result)
    return PdfSigned(field_name=name, output_length=len(result), digest_algorithm=digest_algorithm)


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfSignatureResult:
    """One signature of a PDF, as pyHanko and the JPKI profile check judged it."""

    field_name: str
    intact: bool  # the signed bytes hash to the signed digest
    valid: bool  # the CMS signature verifies
    trusted: bool  # pyHanko built a path to one of the trusted roots
    coverage: str  # entire_file, entire_revision or partial
    modification_level: str | None
    signing_time: dt.datetime | None
    signer: JpkiCertificate | None
    jpki_problem: str | None  # why validate_path refused the signer, if it did
    production: bool | None
    trust_problem: str | None = None  # pyHanko's AdES sub-indication when not trusted
    docmdp_ok: bool | None = None  # later changes within the document's DocMDP permissions
    malformed: str | None = None  # why the signature could not be read or checked at all

    @property
    def ok(self) -> bool:
        return (
            self.malformed is None
            and self.intact
            and self.valid
            and self.trusted
            and self.jpki_problem is None
            and self.coverage in ("entire_file", "entire_revision")
            and self.modification_level in _ACCEPTED_MODIFICATIONS
            and self.docmdp_ok is not False
        )

    def to_dict(self) -> dict[str, Any]:
        signer = self.signer
        return {
            "field_name": self.field_name,
            "ok": self.ok,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "coverage": self.coverage,
            "modification_level": self.modification_level,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "signer": (
                {
                    "kind": signer.kind.value,
                    "serial": signer.serial_number,
                    "serial_hex": f"{signer.serial_number:X}",
                    "not_after": signer.not_after.isoformat(),
                }
                if signer is not None
                else None
            ),
            "production": self.production,
            "trust_problem": self.trust_problem,
            "docmdp_ok": self.docmdp_ok,
            "jpki_problem": self.jpki_problem,
            "malformed": self.malformed,
        }


@dataclass(frozen=True)
class PdfVerification:
    signatures: list[PdfSignatureResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one signature, every signature good, and the last one covers the file."""
        if not self.signatures or not all(result.ok for result in self.signatures):
            return False
        return self.signatures[-1].coverage == "entire_file"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "signatures": [result.to_dict() for result in self.signatures]}


def verify_pdf(
    source: str | os.PathLike[str] | bytes,
    trust_store: TrustStore,
    *,
    require_production: bool = False,
) -> PdfVerification:
    """Validate every signature of a PDF against ``trust_store``; never fetches anything.

    Returns the verdict per signature (:attr:`PdfVerification.ok` sums it up) rather than
    raising on the first bad one, so a caller can show all of them.
    """
    data = _read_source(source)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        fields = list(pdf_fields.enumerate_sig_fields(reader, filled_status=True))
    except _PDF_READ_ERRORS as error:
        raise DataError(f"not a readable PDF: {error}") from error
    anchors = [anchor for anchor in trust_store if anchor.production or not require_production]
    roots = [asn1_x509.Certificate.load(anchor.certificate.der) for anchor in anchors]
    results: list[PdfSignatureResult] = []
    for signature in _embedded_signatures(reader, fields):
        if isinstance(signature, PdfSignatureResult):
            results.append(signature)  # its /Contents could not be read: NOT OK as it is
            continue
        # A fresh context per signature: its caches must not carry one signature's findings
        # into another's.
        context = ValidationContext(
            trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
        )
        try:
            result = _check_signature(signature, context, trust_store, require_production)
        except _PDF_READ_ERRORS as error:
            result = _unreadable(signature.field_name, f"the signature is malformed: {error}")
        results.append(result)
    return PdfVerification(signatures=results)


def _embedded_signatures(
    reader: PdfFileReader, fields: list[tuple[str, Any, Any]]
) -> list[EmbeddedPdfSignature | PdfSignatureResult]:
    """Every filled signature field, in signing order: pyHanko's view of it, or a NOT OK
    result naming the field when its signature cannot even be read (a corrupted /Contents must
    not make the whole file unreadable, ISO 32000-1 §12.8.1: each signature stands alone)."""
    readable: list[EmbeddedPdfSignature] = []
    unreadable: list[PdfSignatureResult] = []
    for field_name, _, signature_field in fields:
        try:
            readable.append(EmbeddedPdfSignature(reader, signature_field, field_name))
        except _PDF_READ_ERRORS as error:
            unreadable.append(_unreadable(field_name, f"the signature cannot be read: {error}"))
    with contextlib.suppress(*_PDF_READ_ERRORS):  # else keep the field order
        readable = sorted(readable, key=lambda signature: signature.signed_revision)
    return [*readable, *unreadable]


def _unreadable(field_name: str, problem: str) -> PdfSignatureResult:
    return PdfSignatureResult(
        field_name=field_name,
        intact=False,
        valid=False,
        trusted=False,
        coverage="unclear",
        modification_level=None,
        signing_time=None,
        signer=None,
        jpki_problem=None,
        production=None,
        malformed=problem,
    )


def _check_signature(
    signature: Any,
    context: ValidationContext,
    trust_store: TrustStore,
    require_production: bool,
) -> PdfSignatureResult:
    try:
        status = validate_pdf_signature(signature, signer_validation_context=context)
    except _PDF_READ_ERRORS as error:
        return _unreadable(signature.field_name, f"the signature is malformed: {error}")
    signing_time = status.signer_reported_dt
    signer: JpkiCertificate | None = None
    problem: str | None = None
    production: bool | None = None
    try:
        signer = parse_certificate(status.signing_cert.dump())
    except DataError as error:
        problem = f"not a JPKI certificate: {error}"
    if signer is not None:
        if signer.kind is CertificateKind.AUTH:
            problem = AUTH_KEY_NOT_FOR_DOCUMENTS
        elif signer.kind is not CertificateKind.SIGN:
            problem = f"a {signer.kind.value} certificate made this signature"
        else:
            try:
                path = validate_path(
                    signer,
                    trust_store,
                    at=signing_time,
                    purpose=signer.kind,
                    require_production=require_production,
                )
                production = path.is_production
            except CertificateValidationError as error:
                problem = str(error)
    coverage = status.coverage
    level = status.modification_level
    return PdfSignatureResult(
        field_name=signature.field_name,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        coverage=_coverage_name(coverage),
        modification_level=level.name.lower() if level is not None else None,
        signing_time=signing_time,
        signer=signer,
        jpki_problem=problem,
        production=production,
        docmdp_ok=status.docmdp_ok,
        trust_problem=(
            str(status.trust_problem_indic.standard_name)
            if status.trust_problem_indic is not None
            else None
        ),
    )


def _coverage_name(coverage: SignatureCoverageLevel | None) -> str:
    if coverage is None:
        return "unclear"
    return str(coverage.name.lower())


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    taken = {name for name, _, _ in pdf_fields.enumerate_sig_fields(writer)}
    number = 1
    while f"{DEFAULT_FIELD_PREFIX}{number}" in taken:
        number += 1
    return f"{DEFAULT_FIELD_PREFIX}{number}"


def _read_source(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes):
        return check_input_size(source, InputKind.PDF, "the PDF")
    return read_bounded(source, InputKind.PDF)


def _cryptography_certificate(certificate: asn1_x509.Certificate) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(certificate.dump())
    except ValueError as error:
        raise DataError(f"malformed certificate: {error}") from error
