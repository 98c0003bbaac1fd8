"""JPKI X.509 certificates: kind, identifiers and the basic-4 information they carry.

docs/card.md §9 describes the profile: the authentication certificate (利用者証明用) names
no person (its CN is an opaque 23-character identifier); the signature certificate (署名用) carries
the basic-4 information in subjectAltName otherNames. This module only parses; path validation
is in :mod:`mynakit.jpki.validation` and revocation in :mod:`mynakit.jpki.revocation`.
"""

from __future__ import annotations

import datetime as dt
import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from mynakit.errors import DataError, UsageError
from mynakit.iso7816 import tlv
from mynakit.jpki.inputs import InputKind, check_input_size, pem_or_der
from mynakit.personal import BasicInfo, EraDate, Sex

# Certificate policies (docs/card.md §9.1, §9.2; arcs per a public jsrsasign OID table).
AUTH_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")  # auth-class30
SIGN_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")  # sign-class20

# Sandbox policies. docs/card.md §9.2 reports that the JPKI *test* hierarchy uses the ".0" arc
# (1.2.392.200149.8.5.1.0.20 for signatures). The sandbox issuer uses that arc too, with the
# same class numbers as production: .0.30 for authentication, .0.20 for signatures. A
# sandbox certificate therefore never carries a production policy, and a relying party can
# tell the two apart from the certificate alone.
SANDBOX_AUTH_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.0.30")
SANDBOX_SIGN_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.0.20")

# subjectAltName otherName type-ids of the signature certificate (docs/card.md §9.2).
NAME_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")
NAME_SUBSTITUTE_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.2")
SEX_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")
BIRTH_DATE_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")
ADDRESS_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")
ADDRESS_SUBSTITUTE_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.5.6")
BASIC_INFO_OIDS = (
    NAME_OID,
    NAME_SUBSTITUTE_OID,
    SEX_OID,
    BIRTH_DATE_OID,
    ADDRESS_OID,
    ADDRESS_SUBSTITUTE_OID,
)

# Organisational units naming the two CA hierarchies (docs/card.md §9.3). The root DNs
# carry no policy, so a CA certificate is classified by this OU.
AUTH_CA_UNIT = "JPKI for user authentication"
SIGN_CA_UNIT = "JPKI for digital signature"
PRODUCTION_ORGANIZATION = "JPKI"
SANDBOX_ORGANIZATION = "JPKI-SANDBOX"

# The authentication CN: 14-character random string + 9-character terminal code
# (docs/architecture.md §5).
RANDOM_STRING_LENGTH = 14
TERMINAL_CODE_LENGTH = 9
AUTH_COMMON_NAME_LENGTH = RANDOM_STRING_LENGTH + TERMINAL_CODE_LENGTH


class CertificateKind(enum.Enum):
    """What a JPKI certificate is for."""

    AUTH = "auth"  # 利用者証明用電子証明書
    SIGN = "sign"  # 署名用電子証明書
    AUTH_CA = "auth_ca"
    SIGN_CA = "sign_ca"

    @property
    def is_ca(self) -> bool:
        return self in (CertificateKind.AUTH_CA, CertificateKind.SIGN_CA)

    @property
    def end_entity_kind(self) -> CertificateKind:
        """The end-entity kind a CA of this kind issues (AUTH_CA -> AUTH)."""
        if self is CertificateKind.AUTH_CA:
            return CertificateKind.AUTH
        if self is CertificateKind.SIGN_CA:
            return CertificateKind.SIGN
        raise UsageError(f"{self.value} is not a CA kind")


PRODUCTION_POLICIES: Mapping[CertificateKind, x509.ObjectIdentifier] = {
    CertificateKind.AUTH: AUTH_POLICY_OID,
    CertificateKind.SIGN: SIGN_POLICY_OID,
}
SANDBOX_POLICIES: Mapping[CertificateKind, x509.ObjectIdentifier] = {
    CertificateKind.AUTH: SANDBOX_AUTH_POLICY_OID,
    CertificateKind.SIGN: SANDBOX_SIGN_POLICY_OID,
}


def certificate_length_from_header(first_bytes: bytes) -> int | None:
    """Total DER length of a certificate from its first bytes, or None if more are needed
    (:func:`mynakit.iso7816.tlv.der_sequence_length`); a header that no certificate has is a
    ``DataError``."""
    return tlv.der_sequence_length(first_bytes, "certificate")


@dataclass(frozen=True)
class _SignatureAttributes:
    """The six subjectAltName values of a signature certificate, as strings."""

    name: str
    name_substitute_flags: str
    sex_code: str
    birth_date: str
    address: str
    address_substitute_flags: str


@dataclass(frozen=True, eq=False)
class JpkiCertificate:
    """A parsed JPKI certificate. Build one with :func:`parse_certificate`."""

    certificate: x509.Certificate
    der: bytes = field(repr=False)
    kind: CertificateKind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JpkiCertificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        # The subject of a signature certificate is not personal data, but the SAN is; keep
        # repr to what identifies the certificate.
        return f"JpkiCertificate(kind={self.kind.value}, serial={self.serial_number})"

    # The accessors below are cached: cryptography builds a new object on every access, and a
    # parsed certificate is immutable (parse_certificate_cached shares it between requests).
    @cached_property
    def serial_number(self) -> int:
        return self.certificate.serial_number

    @cached_property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @cached_property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @cached_property
    def issuer_name(self) -> x509.Name:
        return self.certificate.issuer

    @cached_property
    def subject_name(self) -> x509.Name:
        return self.certificate.subject

    @cached_property
    def subject_common_name(self) -> str | None:
        return _single_attribute(self.certificate.subject, NameOID.COMMON_NAME)

    @cached_property
    def policies(self) -> frozenset[x509.ObjectIdentifier]:
        # Cached: a pure function of the certificate's bytes, read by every path validation.
        return _policies(self.certificate)

    @property
    def is_sandbox(self) -> bool:
        """True for certificates of the mynakit sandbox issuer (sandbox policy or organisation)."""
        if self.kind.is_ca:
            organization = _single_attribute(self.certificate.subject, NameOID.ORGANIZATION_NAME)
            return organization == SANDBOX_ORGANIZATION
        return SANDBOX_POLICIES[self.kind] in self.policies

    # -- authentication certificate ------------------------------------------------------------

    @property
    def random_string(self) -> str:
        """The 14-character random string that opens the authentication CN."""
        return self._auth_common_name()[:RANDOM_STRING_LENGTH]

    @property
    def terminal_code(self) -> str:
        """The 9-character terminal code (受付端末識別記号) that closes the authentication CN."""
        return self._auth_common_name()[RANDOM_STRING_LENGTH:]

    def _auth_common_name(self) -> str:
        self._require_kind(CertificateKind.AUTH, "the random string and terminal code")
        common_name = self.subject_common_name
        if common_name is None or len(common_name) != AUTH_COMMON_NAME_LENGTH:
            length = 0 if common_name is None else len(common_name)
            raise DataError(
                f"authentication certificate CN has {length} characters, "
                f"expected {AUTH_COMMON_NAME_LENGTH} (14 random + 9 terminal code)"
            )
        return common_name

    # -- signature certificate -----------------------------------------------------------------

    @property
    def basic_info(self) -> BasicInfo:
        """Basic-4 information (基本4情報) from the signature certificate's subjectAltName."""
        attributes = self._signature_attributes
        birth = self.birth_era_date
        return BasicInfo(
            name=attributes.name,
            address=attributes.address,
            birth_date=birth.to_date(),
            sex=Sex.from_certificate_code(attributes.sex_code),
        )

    @property
    def birth_era_date(self) -> EraDate:
        """The birth date with the era named by the certificate (docs/card.md §9.2)."""
        try:
            return EraDate.from_certificate_value(self._signature_attributes.birth_date)
        except DataError:
            # The underlying message quotes the date, which is basic-4 information and must
            # stay out of messages and logs (docs/architecture.md §6).
            raise DataError(
                "signature certificate birth date is not a valid EYYYYMMDD date of its era"
            ) from None

    @property
    def name_substitute_positions(self) -> tuple[int, ...]:
        """Zero-based positions of the name's characters that are substitute characters."""
        attributes = self._signature_attributes
        return _substitute_positions(attributes.name_substitute_flags, attributes.name, "name")

    @property
    def address_substitute_positions(self) -> tuple[int, ...]:
        """Zero-based positions of the address's characters that are substitute characters."""
        attributes = self._signature_attributes
        return _substitute_positions(
            attributes.address_substitute_flags, attributes.address, "address"
        )

    @cached_property
    def _signature_attributes(self) -> _SignatureAttributes:
        self._require_kind(CertificateKind.SIGN, "basic-4 information")
        values = _san_other_names(self.certificate)
        missing = [oid.dotted_string for oid in BASIC_INFO_OIDS if oid not in values]
        if missing:
            raise DataError(
                "signature certificate subjectAltName lacks the basic-4 entries "
                + ", ".join(missing)
            )
        return _SignatureAttributes(
            name=values[NAME_OID],
            name_substitute_flags=values[NAME_SUBSTITUTE_OID],
            sex_code=values[SEX_OID],
            birth_date=values[BIRTH_DATE_OID],
            address=values[ADDRESS_OID],
            address_substitute_flags=values[ADDRESS_SUBSTITUTE_OID],
        )

    def _require_kind(self, kind: CertificateKind, what: str) -> None:
        if self.kind is not kind:
            raise UsageError(
                f"{what} exist only in {kind.value} certificates; this is {self.kind.value}"
            )


def parse_certificate(der: bytes) -> JpkiCertificate:
    """Parse a DER JPKI certificate, raising DataError on truncated or malformed input."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise UsageError(f"a certificate must be DER bytes, not {type(der).__name__}")
    der = check_input_size(bytes(der), InputKind.CERTIFICATE, "the certificate")
    total_length = certificate_length_from_header(der)
    if total_length is None:
        raise DataError(f"truncated certificate: {len(der)} bytes hold no complete DER header")
    if len(der) < total_length:
        raise DataError(f"truncated certificate: {len(der)} of {total_length} bytes")
    if len(der) > total_length:
        raise DataError(
            f"{len(der) - total_length} bytes follow the {total_length}-byte certificate; "
            "pass exactly the DER (certificate_length_from_header gives its length)"
        )
    try:
        with warnings.catch_warnings():
            # cryptography warns (rather than fails) on some off-profile fields, such as
            # attribute lengths; warnings on stderr are not answers, the checks below are.
            warnings.simplefilter("ignore")
            certificate = x509.load_der_x509_certificate(der)
            _parse_everything(certificate)
            serial = certificate.serial_number
        kind = _classify(certificate)
    except _PARSE_ERRORS as error:
        raise DataError(f"malformed certificate: {_error_text(error)}") from error
    if serial <= 0:
        raise DataError(
            "malformed certificate: the serial number is not positive (RFC 5280 §4.1.2.2)"
        )
    return JpkiCertificate(certificate=certificate, der=der, kind=kind)


# How many parsed certificates parse_certificate_cached keeps (least recently used dropped).
PARSE_CACHE_ENTRIES = 4096


def parse_certificate_cached(der: bytes) -> JpkiCertificate:
    """:func:`parse_certificate` for a relying party that sees the same certificates again and
    again (a service verifying every request of a card): the parse of DER bytes is a pure
    function of them, so authentication and CA certificates are kept, parsed, in a bounded
    per-process cache. Only the parse is cached, never a verdict: the caller still checks the
    signature, the path, validity and revocation every time. Signature certificates are parsed
    afresh and never kept: they carry the holder's basic-4 information (docs/card.md §9.2),
    which must not outlive the request that brought it. A malformed input raises every time
    (errors are not cached)."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise UsageError(f"a certificate must be DER bytes, not {type(der).__name__}")
    der = bytes(der)
    cached = _PARSED.get(der)
    if cached is not None:
        # Move to the newest end (dicts keep insertion order: the oldest entry is first).
        _PARSED.pop(der, None)
        _PARSED[der] = cached
        return cached
    certificate = parse_certificate(der)
    if certificate.kind is not CertificateKind.SIGN:
        _PARSED[der] = certificate
        while len(_PARSED) > PARSE_CACHE_ENTRIES:
            # Other threads may drop the same oldest entry at once: tolerate a miss.
            try:
                del _PARSED[next(iter(_PARSED))]
            except (KeyError, StopIteration, RuntimeError):
                break
    return certificate


# The cache of parse_certificate_cached: DER bytes -> the parsed, immutable certificate.
_PARSED: dict[bytes, JpkiCertificate] = {}


# What cryptography raises for malformed parts of a certificate. It parses names, extensions
# and the key lazily, on first access, so parse_certificate touches every part once (below):
# afterwards no accessor of JpkiCertificate can meet a part that does not parse.
# UnicodeDecodeError (bad UTF-8 in a name) is a ValueError.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


def _parse_everything(certificate: x509.Certificate) -> None:
    """Parse every lazily decoded part now, so malformed input fails here (RFC 5280 §4.1,
    §4.2: at most one instance of an extension; versions v1-v3 only)."""
    certificate.version  # noqa: B018
    certificate.serial_number  # noqa: B018
    certificate.not_valid_before_utc  # noqa: B018
    certificate.not_valid_after_utc  # noqa: B018
    for name in (certificate.issuer, certificate.subject):
        for attribute in name:
            attribute.value  # noqa: B018
    for extension in certificate.extensions:
        extension.value  # noqa: B018
    certificate.public_key()
    certificate.signature_algorithm_oid  # noqa: B018


def _error_text(error: BaseException) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "a name holds text that is not valid UTF-8"
    return str(error) or type(error).__name__


def load_certificate(data: bytes, origin: str = "the input") -> JpkiCertificate:
    """One JPKI certificate from DER or PEM bytes (a file's content), size-capped and parsed
    in linear time (:mod:`mynakit.jpki.inputs`); anything else is a ``DataError``."""
    check_input_size(data, InputKind.CERTIFICATE, origin)
    objects = pem_or_der(data, ("CERTIFICATE",), origin)
    if len(objects) != 1:
        raise DataError(f"{origin} holds {len(objects)} PEM certificates, expected one")
    return parse_certificate(objects[0])


def from_x509(certificate: x509.Certificate) -> JpkiCertificate:
    """Wrap an already-loaded cryptography certificate."""
    return parse_certificate(certificate.public_bytes(Encoding.DER))


def _classify(certificate: x509.Certificate) -> CertificateKind:
    policies = _policies(certificate)
    for kind in (CertificateKind.AUTH, CertificateKind.SIGN):
        if PRODUCTION_POLICIES[kind] in policies or SANDBOX_POLICIES[kind] in policies:
            return kind
    if _is_ca(certificate):
        units = {
            attribute.value
            for attribute in certificate.subject.get_attributes_for_oid(
                NameOID.ORGANIZATIONAL_UNIT_NAME
            )
        }
        if AUTH_CA_UNIT in units:
            return CertificateKind.AUTH_CA
        if SIGN_CA_UNIT in units:
            return CertificateKind.SIGN_CA
        raise DataError(
            f"CA certificate {certificate.subject.rfc4514_string()} is not a JPKI CA "
            f"(no OU {AUTH_CA_UNIT!r} or {SIGN_CA_UNIT!r})"
        )
    shown = ", ".join(sorted(oid.dotted_string for oid in policies)) or "none"
    raise DataError(f"not a JPKI certificate: no JPKI certificate policy (policies: {shown})")


def _policies(certificate: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(policy.policy_identifier for policy in extension.value)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return extension.value.ca


def _single_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attributes = name.get_attributes_for_oid(oid)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _san_other_names(certificate: x509.Certificate) -> dict[x509.ObjectIdentifier, str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise DataError("signature certificate has no subjectAltName") from None
    values: dict[x509.ObjectIdentifier, str] = {}
    for other_name in extension.value.get_values_for_type(x509.OtherName):
        if other_name.type_id in BASIC_INFO_OIDS:
            values[other_name.type_id] = _decode_other_name_value(other_name)
    return values


def _decode_other_name_value(other_name: x509.OtherName) -> str:
    # docs/card.md §9.2: the value is a UTF8String inside [0] EXPLICIT (cryptography strips the
    # explicit tag). One public parser also accepts OCTET STRING, so take any string type holding
    # UTF-8.
    try:
        value = asn1_core.Asn1Value.load(other_name.value, strict=True)
    except ValueError as error:
        raise DataError(
            f"subjectAltName entry {other_name.type_id.dotted_string} is not valid DER"
        ) from error
    if isinstance(value, asn1_core.AbstractString):
        try:
            text = value.native
        except UnicodeDecodeError as error:
            # asn1crypto decodes lazily; the message must not quote the bytes (basic-4).
            raise DataError(
                f"subjectAltName entry {other_name.type_id.dotted_string} is not valid "
                f"{type(value).__name__}"
            ) from error
        if isinstance(text, str):
            return text
    if isinstance(value, asn1_core.OctetString):
        try:
            return bytes(value.native).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"subjectAltName entry {other_name.type_id.dotted_string} is not UTF-8"
            ) from error
    raise DataError(
        f"subjectAltName entry {other_name.type_id.dotted_string} is a "
        f"{type(value).__name__}, not a string"
    )


def _substitute_positions(flags: str, text: str, what: str) -> tuple[int, ...]:
    # One "0"/"1" per character of the value (docs/card.md §9.2).
    if any(flag not in "01" for flag in flags):
        raise DataError(f"{what} substitute-character flags hold characters other than 0 and 1")
    if len(flags) != len(text):
        raise DataError(
            f"{what} substitute-character flags cover {len(flags)} characters, "
            f"the {what} has {len(text)}"
        )
    return tuple(position for position, flag in enumerate(flags) if flag == "1")


def substitute_flags(positions: set[int] | frozenset[int], length: int) -> str:
    """The "0"/"1" string for a value of ``length`` characters with these substituted positions."""
    return "".join("1" if position in positions else "0" for position in range(length))
