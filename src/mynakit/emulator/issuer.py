"""The sandbox issuer: plays J-LIS (the JPKI CAs, CRLs, OCSP and serial links) for virtual cards.

It issues certificates in the JPKI profile of docs/card.md §9 from two self-signed roots that look
like the J-LIS roots (docs/card.md §9.3) but say ``O=JPKI-SANDBOX`` and carry sandbox policies
(mynakit.jpki.certificates), so nothing it issues can pass for a real certificate.

Everything lives in one folder, so a demo, a test session and a CLI command can share it:

    state.json                 serials, revocations, serial links, CRL numbers, responder port
    auth-root.pem / sign-root.pem            the root certificates (public, 0644)
    auth-root.key.pem / sign-root.key.pem    their keys (PKCS#8 PEM, unencrypted: sandbox only)
    roots.pem                  both roots as one bundle (what TrustStore.with_sandbox reads)
    certificates/<serial>.pem  every issued certificate (folder 0700; sign certificates 0600)
    lock                       held while the register changes

:class:`SandboxIssuer` is the facade; the work is done by ``issuer_registry`` (the register of
typed ``IssuedCertificate`` records, the responder port), ``issuer_roots`` (the roots on disk),
``certificate_profile`` (what a certificate looks like) and ``revocation_answers`` (CRLs and
OCSP answered from the register's status).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from mynakit.atomic_files import (
    PUBLIC_FOLDER,
    check_writable,
    ensure_folder,
)
from mynakit.emulator.certificate_profile import (
    CA_KEY_USAGE,
    DEFAULT_TERMINAL_CODE,
    DEFAULT_VALIDITY_DAYS,
    JST,
    MAX_ADDRESS_LENGTH,
    ROOT_VALIDITY_DAYS,
    SANDBOX_UNIT,
    SUBSTITUTE_CHARACTER,
    Root,
    auth_common_name,
    basic_info_alternative_name,
    end_entity_certificate,
    validity_end,
)
from mynakit.emulator.issued_certificates import IssuedCertificate
from mynakit.emulator.issuer_registry import (
    CERTIFICATES_FOLDER,
    LOOPBACK_HOST,
    STATE_FILE,
    STATE_FORMAT,
    IssuerRegistry,
    checked_port,
    free_loopback_port,
)
from mynakit.emulator.issuer_roots import create_roots, load_roots
from mynakit.emulator.revocation_answers import (
    CRL_REFRESH,
    CRL_VALIDITY,
    OCSP_VALIDITY,
    CachedCrl,
    build_crl,
)
from mynakit.emulator.revocation_answers import ocsp_response as answer_ocsp
from mynakit.errors import DataError, UsageError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import RevocationStatus
from mynakit.personal import BasicInfo

__all__ = [
    "CA_KEY_USAGE",
    "CERTIFICATES_FOLDER",
    "CRL_REFRESH",
    "CRL_VALIDITY",
    "DEFAULT_TERMINAL_CODE",
    "DEFAULT_VALIDITY_DAYS",
    "JST",
    "LOOPBACK_HOST",
    "MAX_ADDRESS_LENGTH",
    "OCSP_VALIDITY",
    "ROOT_VALIDITY_DAYS",
    "SANDBOX_UNIT",
    "STATE_FILE",
    "STATE_FORMAT",
    "SUBSTITUTE_CHARACTER",
    "IssuedCertificate",
    "RenewalRefusedError",
    "SandboxIssuer",
    "SerialLinkRefusedError",
    "basic_info_alternative_name",
]


class SerialLinkRefusedError(UsageError):
    """The holder did not consent to linking this certificate's serial to the previous one."""


class RenewalRefusedError(UsageError):
    """Renewal is for a certificate in good standing; a revoked one needs a new issuance."""


class SandboxIssuer:
    """A persistent sandbox J-LIS. Build one with :meth:`create`, :meth:`open` or
    :meth:`open_or_create`."""

    def __init__(
        self, directory: Path, roots: dict[CertificateKind, Root], registry: IssuerRegistry
    ) -> None:
        self._directory = directory
        self._roots = roots
        self._registry = registry
        self._crl_lock = threading.Lock()
        self._crl_cache: dict[CertificateKind, CachedCrl] = {}

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        ocsp_port: int | None = None,
        not_before: dt.datetime | None = None,
        validity_days: int = ROOT_VALIDITY_DAYS,
    ) -> SandboxIssuer:
        """Make a new issuer with fresh roots in ``directory`` (created if missing, must not
        already hold an issuer). Without ``ocsp_port`` a free loopback port is picked; it is
        written into every certificate's OCSP and CRL URLs, so the responder must use it."""
        path = Path(directory)
        if (path / STATE_FILE).exists():
            raise UsageError(f"{path} already holds a sandbox issuer; open it instead")
        port = free_loopback_port() if ocsp_port is None else checked_port(ocsp_port)
        start = _aware(not_before) if not_before is not None else _now() - dt.timedelta(minutes=5)
        ensure_folder(path, mode=PUBLIC_FOLDER)
        roots = create_roots(path, start, validity_days)
        return cls(path, roots, IssuerRegistry.create(path, ocsp_port=port))

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SandboxIssuer:
        """Open an issuer made earlier by :meth:`create`; a damaged or read-only folder is a
        one-line ``DataError`` naming it."""
        path = Path(directory)
        if not (path / STATE_FILE).exists():
            raise UsageError(f"{path} holds no sandbox issuer (no {STATE_FILE}); create one")
        registry = IssuerRegistry.open(path)
        roots = load_roots(path)
        # Every answer writes (CRL numbers, issued certificates): refuse now, not half-way.
        check_writable(path, "sandbox issuer folder")
        return cls(path, roots, registry)

    @classmethod
    def open_or_create(
        cls, directory: str | os.PathLike[str], *, ocsp_port: int | None = None
    ) -> SandboxIssuer:
        if (Path(directory) / STATE_FILE).exists():
            return cls.open(directory)
        return cls.create(directory, ocsp_port=ocsp_port)

    # -- roots -----------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def registry(self) -> IssuerRegistry:
        return self._registry

    @property
    def ocsp_port(self) -> int:
        return self._registry.ocsp_port

    @property
    def base_url(self) -> str:
        """Where the loopback responder answers (``mynakit.emulator.ocsp_server``)."""
        return f"http://{LOOPBACK_HOST}:{self.ocsp_port}"

    @property
    def auth_root(self) -> x509.Certificate:
        return self._roots[CertificateKind.AUTH].certificate

    @property
    def sign_root(self) -> x509.Certificate:
        return self._roots[CertificateKind.SIGN].certificate

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return (self.auth_root, self.sign_root)

    def root_for(self, kind: CertificateKind) -> x509.Certificate:
        return self._roots[_end_entity_kind(kind)].certificate

    def root_pem_bundle(self) -> bytes:
        return b"".join(root.public_bytes(serialization.Encoding.PEM) for root in self.roots)

    # -- issuance --------------------------------------------------------------------------------

    def issue_auth_certificate(
        self,
        public_key: CertificatePublicKeyTypes,
        *,
        terminal_code: str | None = None,
        random_string: str | None = None,
        not_before: dt.datetime | None = None,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
    ) -> x509.Certificate:
        """Issue an authentication certificate (利用者証明用電子証明書, docs/card.md §9.1).

        The CN is ``random_string`` (14 upper-case letters and digits, random unless given,
        e.g. a holder-chosen ID at reissue) followed by the 9-character ``terminal_code``.
        """
        return self._issue(
            CertificateKind.AUTH,
            public_key,
            common_name=auth_common_name(random_string, terminal_code),
            subject_alternative_name=None,
            not_before=not_before,
            validity_days=validity_days,
        )

    def issue_sign_certificate(
        self,
        public_key: CertificatePublicKeyTypes,
        basic_info: BasicInfo,
        *,
        terminal_code: str | None = None,
        not_before: dt.datetime | None = None,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
    ) -> x509.Certificate:
        """Issue a signature certificate (署名用電子証明書) carrying ``basic_info``
        (docs/card.md §9.2).

        docs/card.md §9.2 does not give the subject DN of a signature certificate; the sandbox
        uses the same opaque CN form as the authentication certificate, so the DN holds no
        personal data.
        """
        return self._issue(
            CertificateKind.SIGN,
            public_key,
            common_name=auth_common_name(None, terminal_code),
            subject_alternative_name=basic_info_alternative_name(basic_info),
            not_before=not_before,
            validity_days=validity_days,
        )

    def renew(
        self,
        old_serial: int,
        new_public_key: CertificatePublicKeyTypes,
        *,
        consent_serial_link: bool = True,
        not_before: dt.datetime | None = None,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
    ) -> x509.Certificate:
        """Issue the successor of ``old_serial`` for a new key, with the same subject data.

        Renewal is for a certificate in good standing: a revoked one (above all one revoked for
        keyCompromise) is refused with :class:`RenewalRefusedError` and its revocation stays as
        it is. As on a real renewal the old certificate is then revoked (reason superseded).
        The old->new serial link (新旧シリアル番号の紐付け) is kept only with the holder's
        consent.
        """
        old = self.certificate(old_serial)
        try:
            alternative_name: x509.SubjectAlternativeName | None = (
                old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            )
        except x509.ExtensionNotFound:
            alternative_name = None
        names = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = names[0].value if names else None
        if not isinstance(common_name, str):
            raise DataError(f"issued certificate {old_serial} has no text CN to renew")
        with self._registry.change():
            record = self._registry.require(old_serial)
            _refuse_renewal_if_revoked(record)
            new = self._issue(
                record.kind,
                new_public_key,
                common_name=common_name,
                subject_alternative_name=alternative_name,
                not_before=not_before,
                validity_days=validity_days,
                renewal_of=old_serial,
                consent_serial_link=consent_serial_link,
            )
            self._registry.update(record.with_revocation(_now(), x509.ReasonFlags.superseded))
        return new

    def previous_serial(self, serial: int) -> int | None:
        """The serial this certificate replaced, or None for a first issuance.

        Answers only for holders who consented to the serial link; otherwise raises
        :class:`SerialLinkRefusedError`.
        """
        record = self._registry.require(serial)
        if not record.renewal:
            return None
        if not record.serial_link_consent or record.previous_serial is None:
            raise SerialLinkRefusedError(
                f"certificate {serial} is a renewal, but its holder did not consent "
                "to linking it to the previous serial"
            )
        return record.previous_serial

    def certificate(self, serial: int) -> x509.Certificate:
        """A certificate this issuer issued."""
        return self._registry.read_certificate(serial)

    def record(self, serial: int) -> IssuedCertificate:
        """The register's record of ``serial`` (``UsageError`` if never issued)."""
        return self._registry.require(serial)

    def issued_serials(self, kind: CertificateKind | None = None) -> list[int]:
        wanted = None if kind is None else _end_entity_kind(kind)
        return [record.serial for record in self._registry.records(wanted)]

    def withdraw(self, serial: int) -> None:
        """Forget ``serial`` as if never issued: only for a certificate that never reached a
        card (a card creation that failed after issuance)."""
        with self._registry.change():
            self._registry.withdraw(serial)

    # -- revocation ------------------------------------------------------------------------------

    def revoke(
        self,
        serial: int,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
        *,
        at: dt.datetime | None = None,
    ) -> None:
        """Revoke ``serial`` (失効). Revocation is final, as in JPKI: there is no hold/release."""
        if reason in (x509.ReasonFlags.remove_from_crl, x509.ReasonFlags.certificate_hold):
            raise UsageError(f"the sandbox issuer does not support {reason.value}")
        when = _aware(at) if at is not None else _now()
        with self._registry.change():
            record = self._registry.require(serial)
            if record.revoked:
                raise UsageError(f"certificate {serial} is already revoked")
            self._registry.update(record.with_revocation(when, reason))

    def status(self, serial: int) -> RevocationStatus:
        """What the issuer's own records say about ``serial`` (unknown if it never issued it)."""
        return self._registry.status(serial)

    def crl(
        self, kind: CertificateKind, *, at: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        """The current CRL of the ``kind`` root (AUTH or SIGN), signed by that root."""
        kind = _end_entity_kind(kind)
        now = _aware(at) if at is not None else _now()
        with self._crl_lock:
            revoked = [record for record in self._registry.records(kind) if record.revoked]
            serials = frozenset(record.serial for record in revoked)
            cached = self._crl_cache.get(kind)
            if at is None and cached is not None and cached.still_current(serials, now):
                return cached.crl
            with self._registry.change():
                # Listed and numbered under one lock: a CRL never misses a revocation made
                # before its number was taken (RFC 5280 §5.2.3).
                revoked = [record for record in self._registry.records(kind) if record.revoked]
                serials = frozenset(record.serial for record in revoked)
                number = self._registry.next_crl_number(kind)
            crl = build_crl(self._roots[kind], revoked, number=number, now=now)
            if at is None:
                self._crl_cache[kind] = CachedCrl(serials, crl)
            return crl

    def ocsp_response(
        self,
        request_der: bytes,
        *,
        kind: CertificateKind | None = None,
        at: dt.datetime | None = None,
    ) -> bytes:
        """Answer a DER OCSP request (RFC 6960), signed directly by the issuing root, from the
        register's status. With ``kind`` only certificates of that root are answered (the
        responder URL names the kind). The request's nonce is echoed."""
        roots = (
            {_end_entity_kind(kind): self._roots[_end_entity_kind(kind)]}
            if kind is not None
            else dict(self._roots)
        )
        now = _aware(at) if at is not None else _now()
        return answer_ocsp(request_der, roots, self._registry, now=now)

    # -- internals -------------------------------------------------------------------------------

    def _issue(
        self,
        kind: CertificateKind,
        public_key: CertificatePublicKeyTypes,
        *,
        common_name: str,
        subject_alternative_name: x509.SubjectAlternativeName | None,
        not_before: dt.datetime | None,
        validity_days: int,
        renewal_of: int | None = None,
        consent_serial_link: bool = False,
    ) -> x509.Certificate:
        start = _aware(not_before) if not_before is not None else _now()
        end = validity_end(start, validity_days)
        with self._registry.change():
            serial = self._registry.new_serial()
            certificate = end_entity_certificate(
                kind,
                self._roots[kind],
                public_key,
                serial=serial,
                common_name=common_name,
                subject_alternative_name=subject_alternative_name,
                start=start,
                end=end,
                base_url=self.base_url,
            )
            linked = renewal_of is not None and consent_serial_link
            record = IssuedCertificate(
                serial=serial,
                kind=kind,
                issued_at=start,
                not_after=end,
                renewal=renewal_of is not None,
                serial_link_consent=linked,
                previous_serial=renewal_of if linked else None,
            )
            self._registry.add(record, certificate)
        return certificate


def _refuse_renewal_if_revoked(record: IssuedCertificate) -> None:
    if not record.revoked:
        return
    reason = record.revocation_reason or x509.ReasonFlags.unspecified
    if reason is x509.ReasonFlags.key_compromise:
        raise RenewalRefusedError(
            f"certificate {record.serial} was revoked for keyCompromise: a compromised key "
            "needs a new issuance (新規発行), not a renewal"
        )
    raise RenewalRefusedError(
        f"certificate {record.serial} is already revoked ({reason.value}); renewal is for a "
        "certificate in good standing"
    )


def _end_entity_kind(kind: CertificateKind) -> CertificateKind:
    return kind.end_entity_kind if kind.is_ca else kind


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise UsageError("pass an aware datetime (with tzinfo)")
    return moment.astimezone(dt.UTC)
