"""The certificate profile of the sandbox issuer: roots that look like the J-LIS roots
(docs/card.md §9.3) and end-entity certificates in the JPKI profile (docs/card.md §9.1, §9.2),
but saying ``O=JPKI-SANDBOX`` and carrying sandbox policies, so nothing issued can pass for
real.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynakit.errors import UsageError
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
from mynakit.personal import BasicInfo, EraDate

SANDBOX_UNIT = "mynakit sandbox issuer"
# The terminal code used when the caller names none: 9 characters like a real 受付端末識別記号,
# and plainly not one.
DEFAULT_TERMINAL_CODE = "SANDBOX01"
# JPKI certificates last until the holder's 5th birthday after issuance (docs/card.md §9.1,
# UNCONFIRMED); the sandbox uses a flat five years unless told otherwise.
DEFAULT_VALIDITY_DAYS = 5 * 365
ROOT_VALIDITY_DAYS = 10 * 365  # J-LIS roots last ten years (docs/card.md §9.3)
# docs/card.md §9.2: characters outside JIS levels 1/2 and the supplementary kanji (補助漢字)
# are replaced by substitute characters. Python's EUC-JP codec covers exactly JIS X 0201, 0208
# (levels 1/2) and 0212 (補助漢字); the sandbox writes GETA MARK 〓, the customary placeholder,
# for anything else and flags the position.
SUBSTITUTE_CHARACTER = "\u3013"
MAX_ADDRESS_LENGTH = 200  # docs/card.md §9.2

# Japan Standard Time: real certificates expire at 23:59:59 JST (docs/card.md §9.1).
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
_CA_UNITS = {CertificateKind.AUTH: AUTH_CA_UNIT, CertificateKind.SIGN: SIGN_CA_UNIT}


@dataclass(frozen=True)
class Root:
    """A sandbox root: its certificate and signing key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


def end_entity_certificate(
    kind: CertificateKind,
    root: Root,
    public_key: CertificatePublicKeyTypes,
    *,
    serial: int,
    common_name: str,
    subject_alternative_name: x509.SubjectAlternativeName | None,
    start: dt.datetime,
    end: dt.datetime,
    base_url: str,
) -> x509.Certificate:
    """Build and sign one end-entity certificate."""
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
    for extension, critical in end_entity_extensions(kind, root.certificate, public_key, base_url):
        builder = builder.add_extension(extension, critical=critical)
    if subject_alternative_name is not None:
        builder = builder.add_extension(subject_alternative_name, critical=False)
    return builder.sign(root.key, hashes.SHA256())


def validity_end(start: dt.datetime, validity_days: int) -> dt.datetime:
    """Real certificates end at 23:59:59 JST on their last day (docs/card.md §9.1)."""
    if validity_days < 1:
        raise UsageError("a certificate must be valid for at least one day")
    last_day = (start.astimezone(JST) + dt.timedelta(days=validity_days)).date()
    return dt.datetime.combine(last_day, dt.time(23, 59, 59), JST).astimezone(dt.UTC)


def end_entity_extensions(
    kind: CertificateKind,
    root: x509.Certificate,
    public_key: CertificatePublicKeyTypes,
    base_url: str,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The docs/card.md §9.1 extension set, with loopback URLs in place of the J-LIS ones."""
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
        *([] if is_sign else [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)]),
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
                            x509.UniformResourceIdentifier(f"{base_url}/crl/{kind.value}.crl")
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
                        x509.UniformResourceIdentifier(f"{base_url}/ocsp/{kind.value}"),
                    )
                ]
            ),
            False,
        ),
        (
            # keyid + issuer DirName + issuer serial, as in the real certificate
            # (docs/card.md §9.1).
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
    """The six subjectAltName otherNames of a signature certificate (docs/card.md §9.2)."""
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


def auth_common_name(random_string: str | None, terminal_code: str | None) -> str:
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


def make_root(kind: CertificateKind, start: dt.datetime, validity_days: int) -> Root:
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
    return Root(certificate=certificate, key=key)
