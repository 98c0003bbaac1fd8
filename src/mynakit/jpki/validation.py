"""Path validation for JPKI certificates: end-entity certificate -> root, one step.

JPKI user certificates are issued directly by the self-signed J-LIS roots (docs/card.md
§9.3), so a path has exactly two certificates. The roots of different generations share one
DN, so the issuer is chosen by signature, not by name (docs/card.md §9.3), and a
certificate is checked at the time it was used (a signature's time), which may be after its
root expired.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from mynakit.errors import UsageError, VerificationError
from mynakit.jpki.certificates import (
    PRODUCTION_POLICIES,
    SANDBOX_POLICIES,
    CertificateKind,
    JpkiCertificate,
    from_x509,
    parse_certificate,
)
from mynakit.jpki.revocation import (
    RevocationChecker,
    RevocationCheckError,
    RevocationState,
    RevocationStatus,
)
from mynakit.jpki.trust import TrustAnchor, TrustStore


class ValidationFailure(enum.Enum):
    UNKNOWN_ISSUER = "unknown_issuer"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_PURPOSE = "wrong_purpose"
    BAD_KEY_USAGE = "bad_key_usage"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation_unknown"
    UNSUPPORTED_CRITICAL_EXTENSION = "unsupported_critical_extension"


# Critical extensions this validator understands and checks (the JPKI profile marks KeyUsage,
# CertificatePolicies and BasicConstraints critical, docs/card.md §9.1-§9.3). RFC 5280 §4.2: a
# certificate with any other critical extension must be rejected.
_UNDERSTOOD_CRITICAL = frozenset(
    {
        x509.oid.ExtensionOID.KEY_USAGE,
        x509.oid.ExtensionOID.CERTIFICATE_POLICIES,
        x509.oid.ExtensionOID.BASIC_CONSTRAINTS,
        x509.oid.ExtensionOID.EXTENDED_KEY_USAGE,
        x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)


class CertificateValidationError(VerificationError):
    """A certificate did not validate; ``reason`` says which check failed."""

    def __init__(self, reason: ValidationFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ValidatedPath:
    """A certificate that validated, the anchor it chains to, and when it was checked."""

    certificate: JpkiCertificate
    anchor: TrustAnchor
    validated_at: dt.datetime
    revocation: RevocationStatus | None = None

    @property
    def is_production(self) -> bool:
        return self.anchor.production


# Key usages the JPKI profile sets (docs/card.md §9.1, §9.2).
_REQUIRED_KEY_USAGE = {
    CertificateKind.AUTH: ("digital_signature",),
    CertificateKind.SIGN: ("digital_signature", "content_commitment"),
}


def validate_path(
    certificate: JpkiCertificate | x509.Certificate | bytes,
    trust_store: TrustStore,
    *,
    at: dt.datetime | None = None,
    purpose: CertificateKind,
    require_production: bool = False,
    revocation: RevocationChecker | None = None,
) -> ValidatedPath:
    """Validate ``certificate`` for ``purpose`` (AUTH or SIGN) against ``trust_store``.

    ``at`` is when the certificate was used (default now). With ``require_production`` only
    production anchors count. With ``revocation`` (for example
    ``mynakit.jpki.revocation.ocsp_checker()``) the status is checked too; a revoked
    certificate raises REVOKED and an unestablished status REVOCATION_UNKNOWN.
    """
    if purpose not in _REQUIRED_KEY_USAGE:
        raise UsageError(f"validate for AUTH or SIGN, not {purpose.value}")
    when = _aware(at)
    subject = _as_jpki(certificate)
    label = f"{subject.kind.value} certificate {subject.serial_number}"

    if subject.kind is not purpose:
        raise CertificateValidationError(
            ValidationFailure.WRONG_PURPOSE,
            f"{label} is not a {purpose.value} certificate",
        )
    anchor = _find_issuer(subject, trust_store, purpose, require_production, label)
    _check_anchor(anchor, when)
    _check_validity(subject, when, label)
    _check_critical_extensions(subject, label)
    _check_key_usage(subject, purpose, label)
    _check_policy(subject, anchor, purpose, label)

    status: RevocationStatus | None = None
    if revocation is not None:
        try:
            status = revocation(subject.certificate, anchor.x509_certificate)
        except RevocationCheckError as error:
            raise CertificateValidationError(
                ValidationFailure.REVOCATION_UNKNOWN,
                f"revocation status of {label} unknown: {error}",
            ) from error
        if status.state is RevocationState.REVOKED:
            reason = status.reason.value if status.reason else "unspecified"
            when_revoked = status.revocation_time.isoformat() if status.revocation_time else "?"
            raise CertificateValidationError(
                ValidationFailure.REVOKED,
                f"{label} was revoked at {when_revoked} ({reason})",
            )
        if status.state is not RevocationState.GOOD:
            raise CertificateValidationError(
                ValidationFailure.REVOCATION_UNKNOWN,
                f"the {status.source} answer for {label} is 'unknown'",
            )
    return ValidatedPath(certificate=subject, anchor=anchor, validated_at=when, revocation=status)


def _as_jpki(certificate: JpkiCertificate | x509.Certificate | bytes) -> JpkiCertificate:
    if isinstance(certificate, JpkiCertificate):
        return certificate
    if isinstance(certificate, x509.Certificate):
        return from_x509(certificate)
    return parse_certificate(certificate)


def _aware(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        raise UsageError("pass an aware datetime (with tzinfo) as the validation time")
    return at


def _find_issuer(
    subject: JpkiCertificate,
    trust_store: TrustStore,
    purpose: CertificateKind,
    require_production: bool,
    label: str,
) -> TrustAnchor:
    named = trust_store.anchors_for(subject.issuer_name)
    if not named:
        raise CertificateValidationError(
            ValidationFailure.UNKNOWN_ISSUER,
            f"no trust anchor is named {subject.issuer_name.rfc4514_string()} (issuer of {label})",
        )
    # Roots of several generations share the DN: keep the one whose key made the signature.
    verifying = [anchor for anchor in named if _signed_by(subject, anchor)]
    if not verifying:
        raise CertificateValidationError(
            ValidationFailure.BAD_SIGNATURE,
            f"the signature of {label} verifies with none of the {len(named)} anchor(s) "
            f"named {subject.issuer_name.rfc4514_string()}",
        )
    if require_production:
        production = [anchor for anchor in verifying if anchor.production]
        if not production:
            raise CertificateValidationError(
                ValidationFailure.UNKNOWN_ISSUER,
                f"{label} chains only to a sandbox root, refused in production mode",
            )
        verifying = production
    matching = [anchor for anchor in verifying if anchor.purpose is purpose]
    if not matching:
        raise CertificateValidationError(
            ValidationFailure.WRONG_PURPOSE,
            f"{label} chains to a {verifying[0].purpose.value} root, not a {purpose.value} one",
        )
    return matching[0]


def _signed_by(subject: JpkiCertificate, anchor: TrustAnchor) -> bool:
    try:
        subject.certificate.verify_directly_issued_by(anchor.x509_certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _check_anchor(anchor: TrustAnchor, when: dt.datetime) -> None:
    root = anchor.certificate
    label = f"root {root.serial_number} ({anchor.subject_text})"
    try:
        constraints = root.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise CertificateValidationError(
            ValidationFailure.WRONG_PURPOSE, f"{label} is not a CA (basicConstraints CA:FALSE)"
        )
    try:
        usage = root.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise CertificateValidationError(
            ValidationFailure.BAD_KEY_USAGE, f"{label} may not sign certificates (keyCertSign)"
        )
    _check_validity(root, when, label)


def _check_validity(certificate: JpkiCertificate, when: dt.datetime, label: str) -> None:
    if when < certificate.not_before:
        raise CertificateValidationError(
            ValidationFailure.NOT_YET_VALID,
            f"{label} is valid only from {certificate.not_before.isoformat()} "
            f"(checked at {when.isoformat()})",
        )
    if when > certificate.not_after:
        raise CertificateValidationError(
            ValidationFailure.EXPIRED,
            f"{label} expired at {certificate.not_after.isoformat()} "
            f"(checked at {when.isoformat()})",
        )


def _check_critical_extensions(subject: JpkiCertificate, label: str) -> None:
    for extension in subject.certificate.extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise CertificateValidationError(
                ValidationFailure.UNSUPPORTED_CRITICAL_EXTENSION,
                f"{label} has a critical extension this validator does not understand "
                f"({extension.oid.dotted_string}); RFC 5280 requires rejecting it",
            )


def _check_key_usage(subject: JpkiCertificate, purpose: CertificateKind, label: str) -> None:
    try:
        usage = subject.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateValidationError(
            ValidationFailure.BAD_KEY_USAGE, f"{label} has no KeyUsage extension"
        ) from None
    missing = [name for name in _REQUIRED_KEY_USAGE[purpose] if not getattr(usage, name)]
    if missing:
        raise CertificateValidationError(
            ValidationFailure.BAD_KEY_USAGE,
            f"{label} KeyUsage lacks {', '.join(missing)}",
        )


def _check_policy(
    subject: JpkiCertificate, anchor: TrustAnchor, purpose: CertificateKind, label: str
) -> None:
    # A production root vouches only for the production policy, a sandbox root only for the
    # sandbox one (certificates.py), so a sandbox certificate never passes as a real one.
    expected = PRODUCTION_POLICIES[purpose] if anchor.production else SANDBOX_POLICIES[purpose]
    if expected not in subject.policies:
        where = "production" if anchor.production else "sandbox"
        raise CertificateValidationError(
            ValidationFailure.WRONG_PURPOSE,
            f"{label} lacks the {where} {purpose.value} policy {expected.dotted_string}",
        )
