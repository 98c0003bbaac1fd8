"""The certificate fixtures of the unit tests, in one place: named test keys, roots, and
JPKI-shaped auth and sign certificates built in memory (no files, no network).

The sandbox issuer (mynakit.emulator.issuer) makes well-formed certificates; these builders
also make the malformed and off-profile ones the relying side must refuse. Certificates the
sandbox issued once, for tests that need real ones, are in tests/support/certificates/.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynakit.jpki.certificates import (
    AUTH_CA_UNIT,
    SANDBOX_AUTH_POLICY_OID,
    SANDBOX_SIGN_POLICY_OID,
    SIGN_CA_UNIT,
)

UTC = dt.UTC
#: A made-up CN in the 23-character form of docs/card.md §9.1 (14 random + 9 terminal code).
SANDBOX_COMMON_NAME = "AB12CD34EF56GHSANDBOX01"


@functools.cache
def named_key(name: str) -> rsa.RSAPrivateKey:
    """An RSA-2048 key per name, generated once per test process (the slow part of every
    certificate fixture); different names give different keys."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def ca_name(organization: str, unit: str, second_unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, second_unit),
        ]
    )


# The production DNs (docs/card.md §9.3), used only with throwaway keys in tests.
JLIS_AGENCY = "Japan Agency for Local Authority Information Systems"
PRODUCTION_AUTH_CA_NAME = ca_name("JPKI", AUTH_CA_UNIT, JLIS_AGENCY)
PRODUCTION_SIGN_CA_NAME = ca_name("JPKI", SIGN_CA_UNIT, JLIS_AGENCY)
TEST_AUTH_CA_NAME = ca_name("JPKI-SANDBOX", AUTH_CA_UNIT, "unit tests")
TEST_SIGN_CA_NAME = ca_name("JPKI-SANDBOX", SIGN_CA_UNIT, "unit tests")


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def build_root(
    key: rsa.RSAPrivateKey,
    name: x509.Name,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int = 1,
    ca: bool = True,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_end_entity(
    issuer_key: rsa.RSAPrivateKey,
    issuer_name: x509.Name,
    subject_key: rsa.RSAPrivateKey,
    *,
    common_name: str,
    policies: Sequence[x509.ObjectIdentifier],
    usage: x509.KeyUsage | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int = 0x12D57CA,
    alternative_names: Sequence[x509.GeneralName] = (),
    client_auth: bool = False,
    ocsp_url: str | None = None,
    crl_directory_name: x509.Name | None = None,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
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
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if client_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(policy, ["http://www.jpki.go.jp/cps.html"])
                    for policy in policies
                ]
            ),
            critical=True,
        )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(alternative_names)), critical=False
        )
    if crl_directory_name is not None:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.DirectoryName(crl_directory_name)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    if ocsp_url is not None:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(ocsp_url),
                    )
                ]
            ),
            critical=False,
        )
    for extension, critical in extra_extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def utf8_other_name(oid: x509.ObjectIdentifier, value: str) -> x509.OtherName:
    encoded = value.encode("utf-8")
    assert len(encoded) < 0x80, "test values stay short"
    return x509.OtherName(oid, bytes([0x0C, len(encoded)]) + encoded)


def auth_certificate(
    issuer_key: rsa.RSAPrivateKey,
    holder_key: rsa.RSAPrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_name: x509.Name = TEST_AUTH_CA_NAME,
    common_name: str = SANDBOX_COMMON_NAME,
    policies: Sequence[x509.ObjectIdentifier] | None = None,
    usage: x509.KeyUsage | None = None,
    serial: int = 0x01020304,
    ocsp_url: str | None = None,
) -> x509.Certificate:
    """A sandbox-shaped authentication certificate (docs/card.md §9.1): digitalSignature,
    TLS client authentication, the sandbox auth policy unless ``policies`` says otherwise."""
    return build_end_entity(
        issuer_key,
        issuer_name,
        holder_key,
        common_name=common_name,
        policies=[SANDBOX_AUTH_POLICY_OID] if policies is None else policies,
        usage=key_usage(digital_signature=True) if usage is None else usage,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        client_auth=True,
        ocsp_url=ocsp_url,
    )


def sign_certificate(
    issuer_key: rsa.RSAPrivateKey,
    holder_key: rsa.RSAPrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_name: x509.Name = TEST_SIGN_CA_NAME,
    common_name: str = SANDBOX_COMMON_NAME,
    policies: Sequence[x509.ObjectIdentifier] | None = None,
    usage: x509.KeyUsage | None = None,
    serial: int = 0x12D57CA,
    alternative_names: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """A sandbox-shaped signature certificate (docs/card.md §9.2): digitalSignature and
    nonRepudiation, the sandbox sign policy unless ``policies`` says otherwise."""
    return build_end_entity(
        issuer_key,
        issuer_name,
        holder_key,
        common_name=common_name,
        policies=[SANDBOX_SIGN_POLICY_OID] if policies is None else policies,
        usage=key_usage(digital_signature=True, content_commitment=True)
        if usage is None
        else usage,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        alternative_names=alternative_names,
    )
