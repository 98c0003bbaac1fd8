"""The sandbox issuer: plays J-LIS (the JPKI CAs, CRLs, OCSP and serial links) for virtual cards.

It issues certificates in the JPKI profile of protocol reference §9 from two self-signed roots
that look like the J-LIS roots (§9.3) but say ``O=JPKI-SANDBOX`` and carry sandbox policies
(mynakit.jpki.certificates), so nothing it issues can pass for a real certificate.

Everything lives in one directory, so a demo, a test session and a CLI command can share it:

    state.json                 serials, revocations, serial links, CRL numbers, responder port
    auth-root.pem / sign-root.pem            the root certificates
    auth-root.key.pem / sign-root.key.pem    their keys (PKCS#8 PEM, unencrypted: sandbox only)
    roots.pem                  both roots as one bundle (what TrustStore.with_sandbox reads)
    certificates/<serial>.pem  every issued certificate

Files are replaced atomically (write a temporary file, then ``os.replace``). Within a process a
lock serialises changes; another process's changes are picked up when ``state.json`` changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import string
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynakit.errors import DataError, TransportError, UsageError
from mynakit.jpki.certificates import (
    ADDRESS_OID,
    ADDRESS_SUBSTITUTE_OID,
    AUTH_CA_UNIT,
    BIRTH_DATE_OID,
    NAME_OID,
    NAME_SUBSTITUTE_OID,
    RANDOM_STRING_LENGTH,
    SANDBOX_ORGANIZATION,
    SANDBOX_POLICIES,
    SEX_OID,
    SIGN_CA_UNIT,
    TERMINAL_CODE_LENGTH,
    CertificateKind,
    substitute_flags,
)
from mynakit.jpki.revocation import RevocationState, RevocationStatus, cert_id_hashes
from mynakit.jpki.trust import SANDBOX_ROOTS_FILE
from mynakit.personal import BasicInfo, EraDate

STATE_FILE = "state.json"
CERTIFICATES_FOLDER = "certificates"
STATE_FORMAT = 1

LOOPBACK_HOST = "127.0.0.1"
SANDBOX_UNIT = "mynakit sandbox issuer"
# The terminal code used when the caller names none: 9 characters like a real 受付端末識別記号,
# and plainly not one.
DEFAULT_TERMINAL_CODE = "SANDBOX01"
# JPKI certificates last until the holder's 5th birthday after issuance (§9.1, UNCONFIRMED);
# the sandbox uses a flat five years unless told otherwise.
DEFAULT_VALIDITY_DAYS = 5 * 365
ROOT_VALIDITY_DAYS = 10 * 365  # J-LIS roots last ten years (§9.3)
CRL_VALIDITY = dt.timedelta(days=1)
# Rebuild a cached CRL this long before its nextUpdate even if nothing was revoked.
CRL_REFRESH = dt.timedelta(hours=1)
OCSP_VALIDITY = dt.timedelta(hours=1)
# §9.2: characters outside JIS levels 1/2 and the supplementary kanji (補助漢字) are replaced by
# substitute characters. Python's EUC-JP codec covers exactly JIS X 0201, 0208 (levels 1/2) and
# 0212 (補助漢字); the sandbox writes GETA MARK 〓, the customary placeholder, for anything else
# and flags the position.
SUBSTITUTE_CHARACTER = "\u3013"
MAX_ADDRESS_LENGTH = 200  # §9.2

# Japan Standard Time: real certificates expire at 23:59:59 JST (§9.1).
JST = dt.timezone(dt.timedelta(hours=9), "JST")
_WINDOWS_TO_JIS_VARIANTS = str.maketrans(
    {
        "\uff0d": "\u2212",  # FULLWIDTH HYPHEN-MINUS -> MINUS SIGN
        "\uff5e": "\u301c",  # FULLWIDTH TILDE -> WAVE DASH
        "\u2225": "\u2016",  # PARALLEL TO -> DOUBLE VERTICAL LINE
        "\uffe0": "\u00a2",  # FULLWIDTH CENT SIGN -> CENT SIGN
        "\uffe1": "\u00a3",  # FULLWIDTH POUND SIGN -> POUND SIGN
        "\uffe2": "\u00ac",  # FULLWIDTH NOT SIGN -> NOT SIGN
    }
)
# A JPKI root signs certificates and CRLs only (docs/card.md §9.3).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_RANDOM_ALPHABET = string.ascii_uppercase + string.digits
_ROOT_FILES = {CertificateKind.AUTH: "auth-root", CertificateKind.SIGN: "sign-root"}
_CA_UNITS = {CertificateKind.AUTH: AUTH_CA_UNIT, CertificateKind.SIGN: SIGN_CA_UNIT}


class SerialLinkRefusedError(UsageError):
    """The holder did not consent to linking this certificate's serial to the previous one."""


@dataclass(frozen=True)
class _Root:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class _CachedCrl:
    revoked: frozenset[int]
    crl: x509.CertificateRevocationList


class SandboxIssuer:
    """A persistent sandbox J-LIS. Build one with :meth:`create`, :meth:`open` or
    :meth:`open_or_create`."""

    def __init__(
        self, directory: Path, roots: dict[CertificateKind, _Root], state: dict[str, Any]
    ) -> None:
        self._directory = directory
        self._roots = roots
        self._state = state
        self._state_signature = _file_signature(self._state_path)
        self._lock = threading.RLock()
        self._crl_cache: dict[CertificateKind, _CachedCrl] = {}

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
        port = _free_loopback_port() if ocsp_port is None else _checked_port(ocsp_port)
        start = _aware(not_before) if not_before is not None else _now() - dt.timedelta(minutes=5)
        path.mkdir(parents=True, exist_ok=True)
        (path / CERTIFICATES_FOLDER).mkdir(exist_ok=True)
        roots: dict[CertificateKind, _Root] = {}
        for kind, base_name in _ROOT_FILES.items():
            root = _make_root(kind, start, validity_days)
            roots[kind] = root
            _write_atomic(
                path / f"{base_name}.key.pem",
                root.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                private=True,
            )
            _write_atomic(
                path / f"{base_name}.pem",
                root.certificate.public_bytes(serialization.Encoding.PEM),
            )
        _write_atomic(
            path / SANDBOX_ROOTS_FILE,
            b"".join(
                root.certificate.public_bytes(serialization.Encoding.PEM) for root in roots.values()
            ),
        )
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "ocsp_port": port,
            "crl_numbers": {kind.value: 0 for kind in _ROOT_FILES},
            "certificates": {},
        }
        # state.json last: its presence marks a complete issuer directory.
        _write_atomic(path / STATE_FILE, _encode_state(state))
        return cls(path, roots, state)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SandboxIssuer:
        """Open an issuer made earlier by :meth:`create`."""
        path = Path(directory)
        if not (path / STATE_FILE).exists():
            raise UsageError(f"{path} holds no sandbox issuer (no {STATE_FILE}); create one")
        state = _read_state(path / STATE_FILE)
        roots = {kind: _load_root(path, base_name) for kind, base_name in _ROOT_FILES.items()}
        return cls(path, roots, state)

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
    def ocsp_port(self) -> int:
        return int(self._state["ocsp_port"])

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
        """Issue an authentication certificate (利用者証明用電子証明書) in the §9.1 profile.

        The CN is ``random_string`` (14 upper-case letters and digits, random unless given,
        e.g. a holder-chosen ID at reissue) followed by the 9-character ``terminal_code``.
        """
        common_name = _auth_common_name(random_string, terminal_code)
        return self._issue(
            CertificateKind.AUTH,
            public_key,
            common_name=common_name,
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
        """Issue a signature certificate (署名用電子証明書) carrying ``basic_info`` (§9.2).

        §9.2 does not give the subject DN of a signature certificate; the sandbox uses the
        same opaque CN form as the authentication certificate, so the DN holds no personal data.
        """
        return self._issue(
            CertificateKind.SIGN,
            public_key,
            common_name=_auth_common_name(None, terminal_code),
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

        As on a real renewal the old certificate is revoked (reason superseded) unless it
        already was. The old->new serial link (新旧シリアル番号の紐付け) is kept only with
        the holder's consent.
        """
        with self._lock:
            self._refresh()
            record = self._record(old_serial)
            old = self.certificate(old_serial)
            kind = CertificateKind(record["kind"])
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
            new = self._issue(
                kind,
                new_public_key,
                common_name=common_name,
                subject_alternative_name=alternative_name,
                not_before=not_before,
                validity_days=validity_days,
                renewal_of=old_serial,
                consent_serial_link=consent_serial_link,
            )
            if self._record(old_serial)["revoked_at"] is None:
                self.revoke(old_serial, x509.ReasonFlags.superseded)
            return new

    def previous_serial(self, serial: int) -> int | None:
        """The serial this certificate replaced, or None for a first issuance.

        Answers only for holders who consented to the serial link; otherwise raises
        :class:`SerialLinkRefusedError`.
        """
        with self._lock:
            self._refresh()
            record = self._record(serial)
            if not record.get("renewal"):
                return None
            if not record.get("serial_link_consent"):
                raise SerialLinkRefusedError(
                    f"certificate {serial} is a renewal, but its holder did not consent "
                    "to linking it to the previous serial"
                )
            previous = record["previous_serial"]
            return int(previous)

    def certificate(self, serial: int) -> x509.Certificate:
        """A certificate this issuer issued."""
        self._record(serial)
        path = self._certificate_path(serial)
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read issued certificate {path}: {error}") from error

    def issued_serials(self, kind: CertificateKind | None = None) -> list[int]:
        with self._lock:
            self._refresh()
            return [
                int(serial)
                for serial, record in self._state["certificates"].items()
                if kind is None or record["kind"] == _end_entity_kind(kind).value
            ]

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
        with self._lock:
            self._refresh()
            record = self._record(serial)
            if record["revoked_at"] is not None:
                raise UsageError(f"certificate {serial} is already revoked")
            record["revoked_at"] = _encode_time(when)
            record["revocation_reason"] = reason.value
            self._save_state()

    def status(self, serial: int) -> RevocationStatus:
        """What the issuer's own records say about ``serial`` (unknown if it never issued it)."""
        with self._lock:
            self._refresh()
            record = self._state["certificates"].get(str(serial))
        if record is None:
            return RevocationStatus(state=RevocationState.UNKNOWN, source="issuer")
        if record["revoked_at"] is None:
            return RevocationStatus(state=RevocationState.GOOD, source="issuer")
        return RevocationStatus(
            state=RevocationState.REVOKED,
            source="issuer",
            reason=x509.ReasonFlags(record["revocation_reason"]),
            revocation_time=_decode_time(record["revoked_at"]),
        )

    def crl(
        self, kind: CertificateKind, *, at: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        """The current CRL of the ``kind`` root (AUTH or SIGN), signed by that root."""
        kind = _end_entity_kind(kind)
        now = _aware(at) if at is not None else _now()
        with self._lock:
            self._refresh()
            revoked = {
                int(serial): record
                for serial, record in self._state["certificates"].items()
                if record["kind"] == kind.value and record["revoked_at"] is not None
            }
            cached = self._crl_cache.get(kind)
            if (
                at is None
                and cached is not None
                and cached.revoked == frozenset(revoked)
                and cached.crl.last_update_utc <= now
                and cached.crl.next_update_utc is not None
                and now < cached.crl.next_update_utc - CRL_VALIDITY + CRL_REFRESH
            ):
                return cached.crl
            crl_numbers = self._state["crl_numbers"]
            crl_numbers[kind.value] += 1
            number = crl_numbers[kind.value]
            self._save_state()
            root = self._roots[kind]
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
            for serial, record in sorted(revoked.items()):
                entry = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(_decode_time(record["revoked_at"]))
                )
                reason = x509.ReasonFlags(record["revocation_reason"])
                # RFC 5280 §5.3.1: leave reasonCode out rather than say "unspecified".
                if reason is not x509.ReasonFlags.unspecified:
                    entry = entry.add_extension(x509.CRLReason(reason), critical=False)
                builder = builder.add_revoked_certificate(entry.build())
            crl = builder.sign(root.key, hashes.SHA256())
            if at is None:
                self._crl_cache[kind] = _CachedCrl(frozenset(revoked), crl)
            return crl

    def ocsp_response(
        self,
        request_der: bytes,
        *,
        kind: CertificateKind | None = None,
        at: dt.datetime | None = None,
    ) -> bytes:
        """Answer a DER OCSP request (RFC 6960), signed directly by the issuing root.

        With ``kind`` only certificates of that root are answered (the responder URL names the
        kind). The request's nonce is echoed.
        """
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
        except (ValueError, UnsupportedAlgorithm):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        kinds = [_end_entity_kind(kind)] if kind is not None else list(self._roots)
        root_kind = next(
            (
                candidate
                for candidate in kinds
                if cert_id_hashes(self._roots[candidate].certificate, algorithm)
                == (request.issuer_name_hash, request.issuer_key_hash)
            ),
            None,
        )
        if root_kind is None:
            # RFC 6960 §2.3: not a CA this responder answers for.
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        root = self._roots[root_kind]
        now = _aware(at) if at is not None else _now()
        with self._lock:
            self._refresh()
            record = self._state["certificates"].get(str(request.serial_number))
        revocation_time: dt.datetime | None = None
        reason: x509.ReasonFlags | None = None
        if record is None or record["kind"] != root_kind.value:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif record["revoked_at"] is None:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = _decode_time(record["revoked_at"])
            reason = x509.ReasonFlags(record["revocation_reason"])
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + OCSP_VALIDITY,
            revocation_time=revocation_time,
            revocation_reason=None if reason is x509.ReasonFlags.unspecified else reason,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, root.certificate)
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        except x509.ExtensionNotFound:
            nonce = None
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        response = builder.sign(root.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    # -- internals -------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self._directory / STATE_FILE

    def _certificate_path(self, serial: int) -> Path:
        return self._directory / CERTIFICATES_FOLDER / f"{serial:x}.pem"

    def _record(self, serial: int) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            record = self._state["certificates"].get(str(serial))
        if record is None:
            raise UsageError(f"this sandbox issuer never issued serial {serial}")
        if not isinstance(record, dict):
            raise DataError(f"sandbox issuer state has a malformed record for {serial}")
        return record

    def _refresh(self) -> None:
        """Reload state.json if another process (say a CLI command) changed it."""
        signature = _file_signature(self._state_path)
        if signature != self._state_signature:
            self._state = _read_state(self._state_path)
            self._state_signature = signature

    def _save_state(self) -> None:
        _write_atomic(self._state_path, _encode_state(self._state))
        self._state_signature = _file_signature(self._state_path)

    def _new_serial(self) -> int:
        # Random 32-bit serials, as long as real ones (§9.1: 0x012D57CA), unique in this issuer.
        taken = self._state["certificates"]
        while True:
            serial = secrets.randbelow(2**32 - 2**24) + 2**24
            if str(serial) not in taken:
                return serial

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
        if validity_days < 1:
            raise UsageError("a certificate must be valid for at least one day")
        start = _aware(not_before) if not_before is not None else _now()
        # Real certificates end at 23:59:59 JST on their last day (§9.1).
        last_day = (start.astimezone(JST) + dt.timedelta(days=validity_days)).date()
        end = dt.datetime.combine(last_day, dt.time(23, 59, 59), JST).astimezone(dt.UTC)
        root = self._roots[kind]
        with self._lock:
            self._refresh()
            serial = self._new_serial()
            builder = (
                x509.CertificateBuilder()
                .subject_name(
                    x509.Name(
                        [
                            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                        ]
                    )
                )
                .issuer_name(root.certificate.subject)
                .public_key(public_key)
                .serial_number(serial)
                .not_valid_before(start)
                .not_valid_after(end)
            )
            for extension, critical in self._end_entity_extensions(kind, public_key):
                builder = builder.add_extension(extension, critical=critical)
            if subject_alternative_name is not None:
                builder = builder.add_extension(subject_alternative_name, critical=False)
            certificate = builder.sign(root.key, hashes.SHA256())
            _write_atomic(
                self._certificate_path(serial),
                certificate.public_bytes(serialization.Encoding.PEM),
            )
            linked = renewal_of is not None and consent_serial_link
            self._state["certificates"][str(serial)] = {
                "kind": kind.value,
                "issued_at": _encode_time(start),
                "not_after": _encode_time(end),
                "revoked_at": None,
                "revocation_reason": None,
                "renewal": renewal_of is not None,
                "serial_link_consent": linked,
                # Without consent the old serial is not written down at all.
                "previous_serial": renewal_of if linked else None,
            }
            self._save_state()
        return certificate

    def _end_entity_extensions(
        self, kind: CertificateKind, public_key: CertificatePublicKeyTypes
    ) -> list[tuple[x509.ExtensionType, bool]]:
        """The §9.1 extension set, with loopback URLs in place of the J-LIS ones."""
        root = self._roots[kind].certificate
        is_sign = kind is CertificateKind.SIGN
        issuer_key_identifier = x509.SubjectKeyIdentifier.from_public_key(root.public_key())
        return [
            (
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=is_sign,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
            *(
                []
                if is_sign
                else [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)]
            ),
            (
                x509.CertificatePolicies(
                    [x509.PolicyInformation(SANDBOX_POLICIES[kind], policy_qualifiers=None)]
                ),
                True,
            ),
            (
                x509.IssuerAlternativeName(
                    [
                        x509.DirectoryName(
                            x509.Name(
                                [
                                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                                    x509.NameAttribute(
                                        NameOID.ORGANIZATION_NAME,
                                        "公的個人認証サービス (mynakit sandbox)",
                                    ),
                                ]
                            )
                        )
                    ]
                ),
                False,
            ),
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[
                                x509.UniformResourceIdentifier(
                                    f"{self.base_url}/crl/{kind.value}.crl"
                                )
                            ],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                False,
            ),
            (
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            x509.oid.AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(f"{self.base_url}/ocsp/{kind.value}"),
                        )
                    ]
                ),
                False,
            ),
            (
                # keyid + issuer DirName + issuer serial, as in the real certificate (§9.1).
                x509.AuthorityKeyIdentifier(
                    key_identifier=issuer_key_identifier.digest,
                    authority_cert_issuer=[x509.DirectoryName(root.issuer)],
                    authority_cert_serial_number=root.serial_number,
                ),
                False,
            ),
            (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        ]


def basic_info_alternative_name(basic_info: BasicInfo) -> x509.SubjectAlternativeName:
    """The six subjectAltName otherNames of a signature certificate (§9.2)."""
    if len(basic_info.address) > MAX_ADDRESS_LENGTH:
        raise UsageError(
            f"an address in a signature certificate has at most {MAX_ADDRESS_LENGTH} characters"
        )
    if not basic_info.name or not basic_info.address:
        raise UsageError("a signature certificate needs a name and an address")
    name, name_flags = _with_substitutes(basic_info.name)
    address, address_flags = _with_substitutes(basic_info.address)
    values = (
        (NAME_OID, name),
        (NAME_SUBSTITUTE_OID, name_flags),
        (SEX_OID, basic_info.sex.certificate_code),
        (BIRTH_DATE_OID, EraDate.from_date(basic_info.birth_date).certificate_value()),
        (ADDRESS_OID, address),
        (ADDRESS_SUBSTITUTE_OID, address_flags),
    )
    return x509.SubjectAlternativeName(
        [x509.OtherName(oid, _utf8_string(value)) for oid, value in values]
    )


def _with_substitutes(text: str) -> tuple[str, str]:
    positions = {index for index, character in enumerate(text) if not _representable(character)}
    replaced = "".join(
        SUBSTITUTE_CHARACTER if index in positions else character
        for index, character in enumerate(text)
    )
    return replaced, substitute_flags(frozenset(positions), len(text))


def _representable(character: str) -> bool:
    # Python's EUC-JP maps a few JIS X 0208 code points to other Unicode characters than
    # Windows input methods produce (the well-known "－" / "～" mismatch); fold those first so
    # a full-width hyphen in an address is not taken for a missing character.
    folded = character.translate(_WINDOWS_TO_JIS_VARIANTS)
    try:
        folded.encode("euc_jp")
    except UnicodeEncodeError:
        return False
    return True


def _utf8_string(value: str) -> bytes:
    # cryptography wraps an OtherName value in [0] EXPLICIT itself; we give the inner DER.
    encoded = value.encode("utf-8")
    return bytes([0x0C]) + _der_length(len(encoded)) + encoded


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _auth_common_name(random_string: str | None, terminal_code: str | None) -> str:
    code = DEFAULT_TERMINAL_CODE if terminal_code is None else terminal_code
    if len(code) != TERMINAL_CODE_LENGTH or not _is_upper_alphanumeric(code):
        raise UsageError(f"a terminal code has {TERMINAL_CODE_LENGTH} upper-case letters or digits")
    if random_string is None:
        random_string = "".join(
            secrets.choice(_RANDOM_ALPHABET) for _ in range(RANDOM_STRING_LENGTH)
        )
    elif len(random_string) != RANDOM_STRING_LENGTH or not _is_upper_alphanumeric(random_string):
        raise UsageError(
            f"the CN's random string has {RANDOM_STRING_LENGTH} upper-case letters or digits"
        )
    return random_string + code


def _is_upper_alphanumeric(text: str) -> bool:
    return all(character in _RANDOM_ALPHABET for character in text)


def _make_root(kind: CertificateKind, start: dt.datetime, validity_days: int) -> _Root:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SANDBOX_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _CA_UNITS[kind]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, SANDBOX_UNIT),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=validity_days))
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Root(certificate=certificate, key=key)


def _load_root(directory: Path, base_name: str) -> _Root:
    try:
        certificate = x509.load_pem_x509_certificate((directory / f"{base_name}.pem").read_bytes())
        key = serialization.load_pem_private_key(
            (directory / f"{base_name}.key.pem").read_bytes(), password=None
        )
    except (OSError, ValueError, TypeError) as error:
        raise DataError(
            f"cannot load sandbox root {base_name} from {directory}: {error}"
        ) from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DataError(f"sandbox root key {base_name} is not an RSA key")
    if _public_key_info(key.public_key()) != _public_key_info(certificate.public_key()):
        raise DataError(f"sandbox root key {base_name} does not match its certificate")
    return _Root(certificate=certificate, key=key)


def _public_key_info(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _end_entity_kind(kind: CertificateKind) -> CertificateKind:
    return kind.end_entity_kind if kind.is_ca else kind


# The responder's port is recorded in every certificate, so it must stay free for as long as the
# issuer lives. Ports the kernel hands out for outgoing connections (Linux's ephemeral range,
# 32768-60999) can be taken at any moment by any client socket, so the sandbox picks below it.
_SANDBOX_PORTS = range(20000, 32768)


def _free_loopback_port() -> int:
    chooser = secrets.SystemRandom()
    for _ in range(100):
        port = chooser.choice(_SANDBOX_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK_HOST, port))
            except OSError:
                continue
            return port
    raise TransportError(
        f"no free loopback port between {_SANDBOX_PORTS.start} and {_SANDBOX_PORTS.stop - 1}"
    )


def _checked_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port} is not between 1 and 65535")
    return port


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise UsageError("pass an aware datetime (with tzinfo)")
    return moment.astimezone(dt.UTC)


def _encode_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _decode_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _file_signature(path: Path) -> tuple[int, int, int]:
    # Every save replaces the file (new inode), so inode + mtime + size tells a change even
    # within the file system's timestamp granularity.
    try:
        status = path.stat()
    except OSError as error:
        raise DataError(f"sandbox issuer state {path} is unreadable: {error}") from error
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def _encode_state(state: dict[str, Any]) -> bytes:
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read sandbox issuer state {path}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise DataError(f"{path} is not a format-{STATE_FORMAT} sandbox issuer state")
    return state


def _write_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` so readers see the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if not private:
            # mkstemp creates 0600 files; certificates and state may be read by others.
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
