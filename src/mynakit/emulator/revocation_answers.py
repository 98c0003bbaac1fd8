"""What the sandbox issuer answers about revocation: CRLs (RFC 5280 §5) and OCSP responses
(RFC 6960), both signed directly by the issuing root, both built from the register's status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynakit.emulator.certificate_profile import Root
from mynakit.emulator.issued_certificates import IssuedCertificate
from mynakit.emulator.issuer_registry import IssuerRegistry
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import RevocationState, cert_id_hashes

CRL_VALIDITY = dt.timedelta(days=1)
# Rebuild a cached CRL this long before its nextUpdate even if nothing was revoked.
CRL_REFRESH = dt.timedelta(hours=1)
OCSP_VALIDITY = dt.timedelta(hours=1)

_OCSP_STATUS = {
    RevocationState.GOOD: ocsp.OCSPCertStatus.GOOD,
    RevocationState.REVOKED: ocsp.OCSPCertStatus.REVOKED,
    RevocationState.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass(frozen=True)
class CachedCrl:
    """A CRL and the revoked serials it was built from."""

    revoked: frozenset[int]
    crl: x509.CertificateRevocationList

    def still_current(self, revoked: frozenset[int], now: dt.datetime) -> bool:
        next_update = self.crl.next_update_utc
        return (
            self.revoked == revoked
            and self.crl.last_update_utc <= now
            and next_update is not None
            and now < next_update - CRL_VALIDITY + CRL_REFRESH
        )


def build_crl(
    root: Root, revoked: list[IssuedCertificate], *, number: int, now: dt.datetime
) -> x509.CertificateRevocationList:
    """The CRL of ``root`` listing ``revoked``, numbered ``number`` (RFC 5280 §5.2.3)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.certificate.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
            critical=False,
        )
    )
    for record in sorted(revoked, key=lambda record: record.serial):
        if record.revoked_at is None:
            continue
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(record.serial)
            .revocation_date(record.revoked_at)
        )
        reason = record.revocation_reason
        # RFC 5280 §5.3.1: leave reasonCode out rather than say "unspecified".
        if reason is not None and reason is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(root.key, hashes.SHA256())


def ocsp_response(
    request_der: bytes,
    roots: dict[CertificateKind, Root],
    registry: IssuerRegistry,
    *,
    now: dt.datetime,
) -> bytes:
    """Answer a DER OCSP request for a certificate of one of ``roots`` from the register's
    status (RFC 6960 §2.2); the request's nonce is echoed (RFC 6960 §4.4.1)."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
    except (ValueError, UnsupportedAlgorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    root_kind = next(
        (
            kind
            for kind, root in roots.items()
            if cert_id_hashes(root.certificate, algorithm)
            == (request.issuer_name_hash, request.issuer_key_hash)
        ),
        None,
    )
    if root_kind is None:
        # RFC 6960 §2.3: not a CA this responder answers for.
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    root = roots[root_kind]
    status = registry.status(request.serial_number, root_kind)
    reason = status.reason if status.state is RevocationState.REVOKED else None
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash,
        issuer_key_hash=request.issuer_key_hash,
        serial_number=request.serial_number,
        algorithm=algorithm,
        cert_status=_OCSP_STATUS[status.state],
        this_update=now,
        next_update=now + OCSP_VALIDITY,
        revocation_time=status.revocation_time if status.state is RevocationState.REVOKED else None,
        revocation_reason=None if reason is x509.ReasonFlags.unspecified else reason,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, root.certificate)
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        nonce = None
    if nonce is not None:
        builder = builder.add_extension(nonce, critical=False)
    return builder.sign(root.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
