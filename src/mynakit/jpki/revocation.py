"""Revocation checking for JPKI certificates: OCSP (RFC 6960) and CRLs (RFC 5280).

Whatever goes wrong (network, a bad signature, a stale answer) raises
:class:`RevocationCheckError`; nothing here ever turns a failure into a "good" answer.
Production JPKI certificates name an OCSP responder in AuthorityInfoAccess (docs/card.md
§9.1) but publish CRLs only under a directory name, so :func:`fetch_crl` works only with URLs,
such as those of the sandbox issuer.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from mynakit.errors import UsageError, VerificationError

DEFAULT_TIMEOUT = 10.0
# Clocks of the responder and the relying party disagree a little.
CLOCK_SKEW = dt.timedelta(minutes=5)
# Without nextUpdate an OCSP answer or a CRL says nothing about how long it holds; accept it
# only while it is this young.
DEFAULT_MAX_AGE = dt.timedelta(days=1)
# A CRL of a national CA with many revocations runs to megabytes; cap what we accept.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
NONCE_LENGTH = 16


class RevocationCheckError(VerificationError):
    """The revocation status could not be established (network, signature, freshness)."""


class RevocationState(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RevocationStatus:
    """The answer of an OCSP responder or a CRL for one certificate."""

    state: RevocationState
    source: str  # "ocsp", "crl" or "issuer"
    reason: x509.ReasonFlags | None = None
    revocation_time: dt.datetime | None = None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None

    @property
    def is_good(self) -> bool:
        return self.state is RevocationState.GOOD

    @property
    def is_revoked(self) -> bool:
        return self.state is RevocationState.REVOKED


#: What :func:`mynakit.jpki.validation.validate_path` calls to learn a certificate's status:
#: ``checker(certificate, issuer_certificate) -> RevocationStatus``.
RevocationChecker = Callable[[x509.Certificate, x509.Certificate], RevocationStatus]


def ocsp_url(certificate: x509.Certificate) -> str:
    """The OCSP responder URL of AuthorityInfoAccess (docs/card.md §9.1)."""
    for description in _access_descriptions(certificate):
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            description.access_location, x509.UniformResourceIdentifier
        ):
            return description.access_location.value
    raise RevocationCheckError(
        f"certificate {certificate.serial_number} names no OCSP responder; pass a URL"
    )


def crl_url(certificate: x509.Certificate) -> str:
    """The first URL in CRLDistributionPoints.

    Production JPKI certificates give only a directory name there (docs/card.md §9.1), so this
    raises for them; sandbox certificates carry a loopback URL.
    """
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        raise RevocationCheckError(
            f"certificate {certificate.serial_number} has no CRL distribution point"
        ) from None
    for point in points.value:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                return name.value
    raise RevocationCheckError(
        f"certificate {certificate.serial_number} gives no CRL URL "
        "(only a directory name, as production JPKI certificates do)"
    )


def check_ocsp(
    certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    use_nonce: bool = True,
    at: dt.datetime | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> RevocationStatus:
    """Ask the OCSP responder about ``certificate`` and verify the answer.

    The request goes to ``url`` or to the certificate's AuthorityInfoAccess OCSP URL. The
    answer must be signed by the issuer or by a responder certificate the issuer delegated
    (RFC 6960 §4.2.2.2), echo the nonce when one was sent, and be fresh at ``at`` (now).
    """
    target = url if url is not None else ocsp_url(certificate)
    nonce = os.urandom(NONCE_LENGTH) if use_nonce else None
    # SHA-1 CertIDs are what every responder must understand (RFC 5019 §2.1.1); the hash only
    # names the issuer here, it protects nothing.
    cert_id_hash = hashes.SHA1()  # noqa: S303
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        certificate, issuer_certificate, cert_id_hash
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    request_der = builder.build().public_bytes(serialization.Encoding.DER)
    response_der = _http(
        target,
        timeout,
        data=request_der,
        content_type="application/ocsp-request",
        what="OCSP responder",
    )
    return verify_ocsp_response(
        response_der,
        certificate,
        issuer_certificate,
        nonce=nonce,
        at=at,
        max_age=max_age,
    )


def verify_ocsp_response(
    response_der: bytes,
    certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
    *,
    nonce: bytes | None,
    at: dt.datetime | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> RevocationStatus:
    """Check an OCSP response's signature, nonce and freshness and return the status it gives.

    A response that does not parse, including the parts cryptography decodes lazily (names,
    extensions, algorithms), is a ``RevocationCheckError``: the status is then unknown.
    """
    now = _aware(at)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # off-profile fields warn; the checks decide
            return _verify_ocsp_response(
                response_der, certificate, issuer_certificate, nonce=nonce, now=now, max_age=max_age
            )
    except _MALFORMED as error:
        raise RevocationCheckError(f"OCSP response is malformed: {error}") from error


# What cryptography raises on malformed revocation data, at load or on the first access of a
# lazily decoded part (RFC 5280 §5, RFC 6960 §4.2.1).
_MALFORMED = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def _verify_ocsp_response(
    response_der: bytes,
    certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
    *,
    nonce: bytes | None,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> RevocationStatus:
    response = ocsp.load_der_ocsp_response(response_der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationCheckError(
            f"OCSP responder refused the request: {response.response_status.name}"
        )
    signer = _ocsp_signer(response, issuer_certificate, now)
    _verify_signature(
        signer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
        "OCSP response",
    )
    if nonce is not None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            # We asked for replay protection; an answer without it may be a replay.
            raise RevocationCheckError(
                "OCSP response does not echo the request nonce (retry with use_nonce=False "
                "for responders that ignore nonces)"
            ) from None
        if echoed != nonce:
            raise RevocationCheckError("OCSP response nonce differs from the request nonce")
    single = _matching_single_response(response, certificate, issuer_certificate)
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    _check_freshness(this_update, next_update, now, max_age, "OCSP response")
    if single.certificate_status is ocsp.OCSPCertStatus.GOOD:
        state = RevocationState.GOOD
    elif single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        state = RevocationState.REVOKED
    else:
        state = RevocationState.UNKNOWN
    revoked = state is RevocationState.REVOKED
    return RevocationStatus(
        state=state,
        source="ocsp",
        reason=(single.revocation_reason or x509.ReasonFlags.unspecified) if revoked else None,
        revocation_time=single.revocation_time_utc if revoked else None,
        this_update=this_update,
        next_update=next_update,
    )


def check_crl(
    certificate: x509.Certificate,
    crl: x509.CertificateRevocationList,
    issuer_certificate: x509.Certificate,
    *,
    at: dt.datetime | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> RevocationStatus:
    """Look ``certificate`` up in ``crl`` after checking the CRL's issuer, signature and dates.

    A CRL whose lazily decoded parts (issuer name, extensions, entries) do not parse is a
    ``RevocationCheckError``: the status is then unknown.
    """
    now = _aware(at)
    verify_crl(crl, issuer_certificate)
    return crl_status(certificate, crl, issuer_certificate, at=now, max_age=max_age)


def verify_crl(crl: x509.CertificateRevocationList, issuer_certificate: x509.Certificate) -> None:
    """Check that ``issuer_certificate`` issued and signed ``crl`` (RFC 5280 §6.3.3 (f), (g));
    ``RevocationCheckError`` otherwise. A pure function of the two: a holder of a downloaded
    CRL checks it once, then looks certificates up with :func:`crl_status`."""
    with _reading_crl():
        _verify_crl(crl, issuer_certificate)


def crl_status(
    certificate: x509.Certificate,
    crl: x509.CertificateRevocationList,
    issuer_certificate: x509.Certificate,
    *,
    at: dt.datetime | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> RevocationStatus:
    """:func:`check_crl` for a CRL that :func:`verify_crl` accepted for ``issuer_certificate``:
    the certificate's issuer, the CRL's freshness at ``at`` and the certificate's entry."""
    now = _aware(at)
    with _reading_crl():
        return _crl_status(certificate, crl, issuer_certificate, now=now, max_age=max_age)


@contextmanager
def _reading_crl() -> Iterator[None]:
    # A CRL whose lazily decoded parts do not parse makes the status unknown.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # off-profile fields warn; the checks decide
            yield
    except _MALFORMED as error:
        raise RevocationCheckError(f"CRL is malformed: {error}") from error


def _verify_crl(crl: x509.CertificateRevocationList, issuer_certificate: x509.Certificate) -> None:
    if crl.issuer != issuer_certificate.subject:
        raise RevocationCheckError(
            f"CRL issued by {crl.issuer.rfc4514_string()}, "
            f"not by {issuer_certificate.subject.rfc4514_string()}"
        )
    try:
        signature_valid = crl.is_signature_valid(_verifying_key(issuer_certificate))
    except (TypeError, UnsupportedAlgorithm) as error:
        raise RevocationCheckError(f"CRL signature cannot be checked: {error}") from error
    if not signature_valid:
        raise RevocationCheckError("CRL signature does not verify with the issuer's key")


def _crl_status(
    certificate: x509.Certificate,
    crl: x509.CertificateRevocationList,
    issuer_certificate: x509.Certificate,
    *,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> RevocationStatus:
    if certificate.issuer != issuer_certificate.subject:
        raise RevocationCheckError("the certificate was not issued by the CRL's issuer")
    _check_freshness(crl.last_update_utc, crl.next_update_utc, now, max_age, "CRL")
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is None:
        return RevocationStatus(
            state=RevocationState.GOOD,
            source="crl",
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
        )
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        reason = x509.ReasonFlags.unspecified
    return RevocationStatus(
        state=RevocationState.REVOKED,
        source="crl",
        reason=reason,
        revocation_time=entry.revocation_date_utc,
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
    )


def fetch_crl(url: str, timeout: float = DEFAULT_TIMEOUT) -> x509.CertificateRevocationList:
    """Download a CRL (DER, or PEM as some servers send) from an http(s) URL."""
    body = _http(url, timeout, data=None, content_type=None, what="CRL distribution point")
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(body)
        return x509.load_der_x509_crl(body)
    except _MALFORMED as error:
        raise RevocationCheckError(f"{url} did not return a CRL: {error}") from error


def ocsp_checker(
    *, url: str | None = None, timeout: float = DEFAULT_TIMEOUT, use_nonce: bool = True
) -> RevocationChecker:
    """A :data:`RevocationChecker` that asks the OCSP responder (``url`` or the AIA URL)."""

    def checker(certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        return check_ocsp(certificate, issuer, url, timeout, use_nonce=use_nonce)

    return checker


def crl_checker(
    crl: x509.CertificateRevocationList | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> RevocationChecker:
    """A :data:`RevocationChecker` using ``crl``, or fetching the certificate's CRL URL."""

    def checker(certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        current = crl if crl is not None else fetch_crl(crl_url(certificate), timeout)
        return check_crl(certificate, current, issuer)

    return checker


# -- helpers ---------------------------------------------------------------------------------


def _aware(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        raise UsageError("pass an aware datetime (with tzinfo) for revocation checks")
    return at


def _access_descriptions(certificate: x509.Certificate) -> list[x509.AccessDescription]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value)


def _http(
    url: str, timeout: float, *, data: bytes | None, content_type: str | None, what: str
) -> bytes:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        # urllib would also open file: and ftp: URLs taken from a certificate.
        raise RevocationCheckError(f"{what} URL {url!r} is not http(s)")
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            body: bytes = reply.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise RevocationCheckError(f"{what} {url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RevocationCheckError(f"cannot reach {what} {url}: {reason}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise RevocationCheckError(f"{what} {url} sent more than {MAX_RESPONSE_BYTES} bytes")
    return body


def _ocsp_signer(
    response: ocsp.OCSPResponse, issuer_certificate: x509.Certificate, now: dt.datetime
) -> x509.Certificate:
    """The certificate whose key must verify the response: the issuer or its delegate."""
    if _is_responder(response, issuer_certificate):
        return issuer_certificate
    for candidate in response.certificates:
        if not _is_responder(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer_certificate)
        except (ValueError, TypeError, InvalidSignature) as error:
            raise RevocationCheckError(
                "OCSP responder certificate was not issued by the certificate's issuer"
            ) from error
        try:
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            raise RevocationCheckError("OCSP responder certificate lacks the OCSPSigning usage")
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            raise RevocationCheckError("OCSP responder certificate is not valid now")
        return candidate
    raise RevocationCheckError(
        "OCSP response is signed neither by the issuer nor by a responder it delegated"
    )


def _is_responder(response: ocsp.OCSPResponse, candidate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == candidate.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest
    return response.responder_key_hash == key_hash


def _matching_single_response(
    response: ocsp.OCSPResponse,
    certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if single.serial_number != certificate.serial_number:
            continue
        expected = cert_id_hashes(issuer_certificate, single.hash_algorithm)
        if (single.issuer_name_hash, single.issuer_key_hash) == expected:
            return single
    raise RevocationCheckError(
        f"OCSP response has no answer for certificate {certificate.serial_number}"
    )


def cert_id_hashes(
    issuer_certificate: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """issuerNameHash and issuerKeyHash of an OCSP CertID (RFC 6960 §4.1.1)."""
    name_digest = hashes.Hash(algorithm)
    name_digest.update(issuer_certificate.subject.public_bytes())
    key_digest = hashes.Hash(algorithm)
    key_digest.update(_subject_public_key_bits(issuer_certificate))
    return name_digest.finalize(), key_digest.finalize()


def _subject_public_key_bits(certificate: x509.Certificate) -> bytes:
    # The key hash covers the BIT STRING contents of subjectPublicKey, which for RSA is the
    # PKCS#1 RSAPublicKey and for EC the uncompressed point.
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    raise RevocationCheckError(f"unsupported issuer key type {type(key).__name__}")


def _verifying_key(
    certificate: x509.Certificate,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise RevocationCheckError(f"unsupported issuer key type {type(key).__name__}")


def _verify_signature(
    key: object,
    signature: bytes,
    signed_bytes: bytes,
    algorithm: hashes.HashAlgorithm | None,
    what: str,
) -> None:
    if algorithm is None:
        raise RevocationCheckError(f"{what} uses a signature algorithm without a hash")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(algorithm))
        else:
            raise RevocationCheckError(f"{what} signer has an unsupported key type")
    except InvalidSignature:
        raise RevocationCheckError(f"{what} signature does not verify") from None


def _check_freshness(
    this_update: dt.datetime,
    next_update: dt.datetime | None,
    now: dt.datetime,
    max_age: dt.timedelta,
    what: str,
) -> None:
    if this_update > now + CLOCK_SKEW:
        raise RevocationCheckError(f"{what} is dated in the future ({this_update.isoformat()})")
    if next_update is not None:
        if next_update < now - CLOCK_SKEW:
            raise RevocationCheckError(
                f"{what} is stale: its next update was due {next_update.isoformat()}"
            )
    elif now - this_update > max_age:
        raise RevocationCheckError(
            f"{what} from {this_update.isoformat()} has no next update and is older than {max_age}"
        )
