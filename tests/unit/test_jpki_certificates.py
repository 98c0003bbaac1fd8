from __future__ import annotations

import datetime as dt
from importlib import resources

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.errors import DataError, UsageError
from mynakit.jpki.certificates import (
    ADDRESS_OID,
    ADDRESS_SUBSTITUTE_OID,
    AUTH_POLICY_OID,
    BIRTH_DATE_OID,
    NAME_OID,
    NAME_SUBSTITUTE_OID,
    SANDBOX_AUTH_POLICY_OID,
    SEX_OID,
    SIGN_POLICY_OID,
    CertificateKind,
    certificate_length_from_header,
    from_x509,
    parse_certificate,
)
from mynakit.jpki.trust import TrustStore
from mynakit.personal import Era, Sex
from support.jpki_builders import (
    PRODUCTION_AUTH_CA_NAME,
    PRODUCTION_SIGN_CA_NAME,
    build_end_entity,
    build_root,
    der,
    key_usage,
    named_key,
    sign_certificate,
    utf8_other_name,
)

pytestmark = pytest.mark.unit

UTC = dt.UTC
ISSUED = dt.datetime(2019, 7, 25, 15, 28, 6, tzinfo=UTC)
EXPIRES = dt.datetime(2024, 5, 2, 14, 59, 59, tzinfo=UTC)
# A made-up CN in the 23-character form of docs/card.md §9.1 (14 random + 9 terminal code).
COMMON_NAME = "K7Q2M9X4R1T8ZA12340001A"


@pytest.fixture(scope="module")
def ca_key() -> rsa.RSAPrivateKey:
    return named_key("production-shaped CA")


@pytest.fixture(scope="module")
def holder_key() -> rsa.RSAPrivateKey:
    return named_key("holder")


@pytest.fixture(scope="module")
def production_shaped_auth(
    ca_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    """A certificate in the shape of the docs/card.md §9.1 production one, signed by a throwaway
    key."""
    return build_end_entity(
        ca_key,
        PRODUCTION_AUTH_CA_NAME,
        holder_key,
        common_name=COMMON_NAME,
        policies=[AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True),
        not_before=ISSUED,
        not_after=EXPIRES,
        client_auth=True,
        ocsp_url="http://ocspauthnorm.jpki.go.jp",
        crl_directory_name=x509.Name(
            [
                x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "JPKI"),
                x509.NameAttribute(
                    x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "CRL Distribution Points"
                ),
            ]
        ),
    )


def production_shaped_sign(
    ca_key: rsa.RSAPrivateKey,
    holder_key: rsa.RSAPrivateKey,
    values: dict[x509.ObjectIdentifier, str],
) -> x509.Certificate:
    return sign_certificate(
        ca_key,
        holder_key,
        issuer_name=PRODUCTION_SIGN_CA_NAME,
        common_name=COMMON_NAME,
        policies=[SIGN_POLICY_OID],
        not_before=ISSUED,
        not_after=EXPIRES,
        alternative_names=[utf8_other_name(oid, value) for oid, value in values.items()],
    )


SIGN_VALUES = {
    NAME_OID: "山田　〓子",
    NAME_SUBSTITUTE_OID: "00010",
    SEX_OID: "2",
    BIRTH_DATE_OID: "319800217",
    ADDRESS_OID: "東京都千代田区〓町１",
    ADDRESS_SUBSTITUTE_OID: "0000000100",
}


def test_production_shaped_auth_certificate_parses(
    production_shaped_auth: x509.Certificate,
) -> None:
    parsed = parse_certificate(der(production_shaped_auth))
    assert parsed.kind is CertificateKind.AUTH
    assert parsed.serial_number == 19748810
    assert parsed.not_before == ISSUED
    assert parsed.not_after == EXPIRES
    assert parsed.not_after.tzinfo is not None
    assert parsed.issuer_name == PRODUCTION_AUTH_CA_NAME
    assert parsed.subject_common_name == COMMON_NAME
    assert parsed.random_string == "K7Q2M9X4R1T8ZA"
    assert parsed.terminal_code == "12340001A"
    assert not parsed.is_sandbox
    assert parsed.der == der(production_shaped_auth)
    assert parsed.certificate == production_shaped_auth


def test_policy_oid_der_matches_reference() -> None:
    # docs/card.md §9.1: 06 0b 2a 83 08 8c 9b 55 08 05 01 03 1e
    encoded = x509.CertificatePolicies([x509.PolicyInformation(AUTH_POLICY_OID, None)])
    assert bytes.fromhex("060b2a83088c9b55080501031e") in encoded.public_bytes()


def test_auth_certificate_has_no_basic_info(production_shaped_auth: x509.Certificate) -> None:
    parsed = from_x509(production_shaped_auth)
    with pytest.raises(UsageError, match="sign certificates"):
        _ = parsed.basic_info


def test_sign_certificate_basic_info(
    ca_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey
) -> None:
    parsed = from_x509(production_shaped_sign(ca_key, holder_key, SIGN_VALUES))
    assert parsed.kind is CertificateKind.SIGN
    info = parsed.basic_info
    assert info.name == "山田　〓子"
    assert info.address == "東京都千代田区〓町１"
    assert info.birth_date == dt.date(1980, 2, 17)
    assert info.sex is Sex.FEMALE
    assert parsed.birth_era_date.era is Era.SHOWA
    assert parsed.name_substitute_positions == (3,)
    assert parsed.address_substitute_positions == (7,)
    assert "山田" not in repr(parsed)
    with pytest.raises(UsageError, match="auth certificates"):
        _ = parsed.terminal_code


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({NAME_SUBSTITUTE_OID: "0001"}, "cover 4 characters"),
        ({ADDRESS_SUBSTITUTE_OID: "00000002x0"}, "other than 0 and 1"),
        ({BIRTH_DATE_OID: "3198002"}, "EYYYYMMDD"),
        ({BIRTH_DATE_OID: "419800217"}, "EYYYYMMDD"),
        ({SEX_OID: "7"}, "sex code in the certificate"),
    ],
)
def test_bad_basic_info_values_raise_data_error(
    ca_key: rsa.RSAPrivateKey,
    holder_key: rsa.RSAPrivateKey,
    change: dict[x509.ObjectIdentifier, str],
    message: str,
) -> None:
    parsed = from_x509(production_shaped_sign(ca_key, holder_key, {**SIGN_VALUES, **change}))
    with pytest.raises(DataError, match=message) as caught:
        _ = parsed.basic_info
        _ = parsed.name_substitute_positions
        _ = parsed.address_substitute_positions
    assert "1980" not in str(caught.value)  # no personal data in messages


def test_missing_san_entry_is_named(
    ca_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey
) -> None:
    values = {oid: value for oid, value in SIGN_VALUES.items() if oid != ADDRESS_OID}
    parsed = from_x509(production_shaped_sign(ca_key, holder_key, values))
    with pytest.raises(DataError, match=r"1\.2\.392\.200149\.8\.5\.5\.5"):
        _ = parsed.basic_info


def test_short_auth_common_name_is_data_error(
    ca_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = build_end_entity(
        ca_key,
        PRODUCTION_AUTH_CA_NAME,
        holder_key,
        common_name="TOOSHORT",
        policies=[SANDBOX_AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True),
        not_before=ISSUED,
        not_after=EXPIRES,
    )
    parsed = from_x509(certificate)
    assert parsed.is_sandbox
    with pytest.raises(DataError, match="8 characters, expected 23"):
        _ = parsed.random_string


def test_truncated_der_names_both_lengths(production_shaped_auth: x509.Certificate) -> None:
    whole = der(production_shaped_auth)
    cut = len(whole) - 100
    with pytest.raises(DataError, match=f"truncated certificate: {cut} of {len(whole)} bytes"):
        parse_certificate(whole[:cut])
    with pytest.raises(DataError, match="truncated certificate"):
        parse_certificate(whole[:3])
    with pytest.raises(DataError, match="truncated certificate"):
        parse_certificate(b"")


def test_trailing_bytes_and_garbage_are_data_errors(
    production_shaped_auth: x509.Certificate,
) -> None:
    whole = der(production_shaped_auth)
    with pytest.raises(DataError, match="2 bytes follow"):
        parse_certificate(whole + b"\xff\xff")
    # Right length header, wrong content.
    with pytest.raises(DataError, match="malformed certificate"):
        parse_certificate(b"\x30\x03\x02\x01\x01")
    with pytest.raises(DataError, match="no certificate here"):
        parse_certificate(b"\xff" * 64)


def test_non_jpki_certificate_is_refused(
    ca_key: rsa.RSAPrivateKey, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = build_end_entity(
        ca_key,
        PRODUCTION_AUTH_CA_NAME,
        holder_key,
        common_name=COMMON_NAME,
        policies=[x509.ObjectIdentifier("2.23.140.1.2.1")],
        usage=key_usage(digital_signature=True),
        not_before=ISSUED,
        not_after=EXPIRES,
    )
    with pytest.raises(DataError, match=r"no JPKI certificate policy .*2\.23\.140\.1\.2\.1"):
        from_x509(certificate)
    foreign_root = build_root(
        ca_key,
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Some Root")]),
        not_before=ISSUED,
        not_after=EXPIRES,
    )
    with pytest.raises(DataError, match="not a JPKI CA"):
        from_x509(foreign_root)


def test_parse_rejects_non_bytes() -> None:
    with pytest.raises(UsageError):
        parse_certificate("3082")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "length"),
    [
        ("30", None),
        ("3082", None),
        ("308206", None),
        ("30820625", 4 + 0x625),  # 1573 bytes, the docs/card.md §9.1 certificate's size
        ("3082062530", 4 + 0x625),
        ("308105", 3 + 5),
        ("3081", None),
        ("3005", 7),
        ("3083010000", 5 + 0x10000),
    ],
)
def test_certificate_length_from_header(header: str, length: int | None) -> None:
    assert certificate_length_from_header(bytes.fromhex(header)) == length


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("3180", "SEQUENCE"),
        ("3080", "indefinite"),
        ("3085", "implausible"),
        ("FFFF", "no certificate here"),
        ("0000", "no certificate here"),
    ],
)
def test_certificate_length_from_bad_header(header: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        certificate_length_from_header(bytes.fromhex(header))


@pytest.mark.parametrize(
    ("file_name", "kind", "serial"),
    [
        ("auth_ca_2015.pem", CertificateKind.AUTH_CA, 0x01),
        ("auth_ca_2023.pem", CertificateKind.AUTH_CA, 0x06D18006),
        ("sign_ca_2015.pem", CertificateKind.SIGN_CA, 0x01),
        ("sign_ca_2023.pem", CertificateKind.SIGN_CA, 0x067C6A21),
    ],
)
def test_bundled_jlis_roots_classify(file_name: str, kind: CertificateKind, serial: int) -> None:
    pem = (resources.files("mynakit.jpki") / "roots" / file_name).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    parsed = from_x509(certificate)
    assert parsed.kind is kind
    assert parsed.serial_number == serial
    assert not parsed.is_sandbox
    assert parsed.subject_name == parsed.issuer_name


def test_jlis_trust_store_holds_four_production_anchors() -> None:
    store = TrustStore.jlis()
    assert len(store) == 4
    assert all(anchor.production for anchor in store)
    purposes = sorted(anchor.purpose.value for anchor in store)
    assert purposes == ["auth", "auth", "sign", "sign"]
    # Two generations share each DN (docs/card.md §9.3).
    assert len(store.anchors_for(PRODUCTION_AUTH_CA_NAME)) == 2
    assert len(store.anchors_for(PRODUCTION_SIGN_CA_NAME, CertificateKind.SIGN)) == 2


def test_trust_store_refuses_end_entity_and_marks_added_roots_as_sandbox(
    production_shaped_auth: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(UsageError, match="must be a JPKI CA"):
        TrustStore().add(production_shaped_auth)
    root = build_root(ca_key, PRODUCTION_AUTH_CA_NAME, not_before=ISSUED, not_after=EXPIRES)
    store = TrustStore.jlis().add(root)
    assert len(store) == 5
    assert len(store.production_only()) == 4
    assert store.add(der(root)) is not store
    assert len(store.add(der(root))) == 5  # the same root twice is one anchor
    explicit = TrustStore().add(root, production=True)
    assert explicit.anchors[0].production
