from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mynakit.emulator.issuer import (
    DEFAULT_TERMINAL_CODE,
    RenewalRefusedError,
    SandboxIssuer,
    SerialLinkRefusedError,
)
from mynakit.errors import UsageError
from mynakit.jpki.certificates import (
    NAME_OID,
    SANDBOX_AUTH_POLICY_OID,
    SANDBOX_SIGN_POLICY_OID,
    CertificateKind,
    from_x509,
)
from mynakit.jpki.revocation import RevocationState, cert_id_hashes, check_crl, crl_url, ocsp_url
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import validate_path
from mynakit.personal import BasicInfo, Sex

pytestmark = pytest.mark.emulator

UTC = dt.UTC
AUTH = CertificateKind.AUTH
SIGN = CertificateKind.SIGN
HOLDER = BasicInfo(
    name="髙橋　花子",  # 髙 is outside JIS X 0208/0212: a substitute character
    address="東京都千代田区霞が関１－２－３",
    birth_date=dt.date(1990, 4, 1),
    sex=Sex.FEMALE,
)


@pytest.fixture(scope="module")
def holder_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


@pytest.fixture(scope="module")
def issuer_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer")


@pytest.fixture(scope="module")
def issuer(issuer_directory: Path) -> SandboxIssuer:
    return SandboxIssuer.create(issuer_directory)


@pytest.fixture(scope="module")
def auth_certificate(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> x509.Certificate:
    return issuer.issue_auth_certificate(holder_keys[0].public_key(), terminal_code="12340001A")


@pytest.fixture(scope="module")
def sign_certificate(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> x509.Certificate:
    return issuer.issue_sign_certificate(holder_keys[0].public_key(), HOLDER)


def openssl_verify(tmp_path: Path, root: x509.Certificate, leaf: x509.Certificate) -> str:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl binary is part of the test set-up"
    root_file = tmp_path / "root.pem"
    leaf_file = tmp_path / "leaf.pem"
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(root_file), str(leaf_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:  # type: ignore[type-arg]
    return certificate.extensions.get_extension_for_class(kind)


def test_roots_mirror_the_jlis_profile(issuer: SandboxIssuer, issuer_directory: Path) -> None:
    for root, unit in (
        (issuer.auth_root, "JPKI for user authentication"),
        (issuer.sign_root, "JPKI for digital signature"),
    ):
        assert root.subject == root.issuer
        assert root.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
        assert (
            root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
            == "JPKI-SANDBOX"
        )
        units = [
            a.value for a in root.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]
        assert units == [unit, "mynakit sandbox issuer"]
        usage = extension(root, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        constraints = extension(root, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        public_key = root.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    assert [from_x509(root).kind for root in issuer.roots] == [
        CertificateKind.AUTH_CA,
        CertificateKind.SIGN_CA,
    ]
    assert all(from_x509(root).is_sandbox for root in issuer.roots)
    assert issuer.root_pem_bundle() == (issuer_directory / "roots.pem").read_bytes()
    for key_file in ("auth-root.key.pem", "sign-root.key.pem"):
        mode = stat.S_IMODE((issuer_directory / key_file).stat().st_mode)
        assert mode == 0o600
        assert (issuer_directory / key_file).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_openssl_verifies_issued_certificates(
    issuer: SandboxIssuer,
    auth_certificate: x509.Certificate,
    sign_certificate: x509.Certificate,
    tmp_path: Path,
) -> None:
    assert "OK" in openssl_verify(tmp_path, issuer.auth_root, auth_certificate)
    assert "OK" in openssl_verify(tmp_path, issuer.sign_root, sign_certificate)


def test_auth_certificate_profile(
    issuer: SandboxIssuer, auth_certificate: x509.Certificate
) -> None:
    parsed = from_x509(auth_certificate)
    assert parsed.kind is AUTH
    assert len(parsed.subject_common_name or "") == 23
    assert parsed.terminal_code == "12340001A"
    assert re.fullmatch("[A-Z0-9]{14}", parsed.random_string)
    assert [a.oid for a in auth_certificate.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    usage = extension(auth_certificate, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.content_commitment
    assert list(extension(auth_certificate, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    policies = extension(auth_certificate, x509.CertificatePolicies)
    assert policies.critical
    assert [p.policy_identifier for p in policies.value] == [SANDBOX_AUTH_POLICY_OID]
    assert extension(auth_certificate, x509.IssuerAlternativeName)
    assert ocsp_url(auth_certificate) == f"http://127.0.0.1:{issuer.ocsp_port}/ocsp/auth"
    assert crl_url(auth_certificate) == f"http://127.0.0.1:{issuer.ocsp_port}/crl/auth.crl"
    key_id = extension(auth_certificate, x509.AuthorityKeyIdentifier).value
    root_key_id = extension(issuer.auth_root, x509.SubjectKeyIdentifier).value
    assert key_id.key_identifier == root_key_id.digest
    assert key_id.authority_cert_serial_number == issuer.auth_root.serial_number
    assert extension(auth_certificate, x509.SubjectKeyIdentifier)
    # Ends at 23:59:59 JST like real certificates (docs/card.md §9.1).
    assert parsed.not_after.time() == dt.time(14, 59, 59)


def test_default_terminal_code_and_holder_chosen_random_string(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> None:
    certificate = issuer.issue_auth_certificate(
        holder_keys[1].public_key(), random_string="MYCHOSENID0001"
    )
    assert from_x509(certificate).subject_common_name == "MYCHOSENID0001" + DEFAULT_TERMINAL_CODE
    with pytest.raises(UsageError, match="terminal code"):
        issuer.issue_auth_certificate(holder_keys[1].public_key(), terminal_code="short")
    with pytest.raises(UsageError, match="random string"):
        issuer.issue_auth_certificate(holder_keys[1].public_key(), random_string="lower-case-id!")


def test_sign_certificate_profile_and_basic_info(sign_certificate: x509.Certificate) -> None:
    parsed = from_x509(sign_certificate)
    assert parsed.kind is SIGN
    usage = extension(sign_certificate, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert [
        p.policy_identifier for p in extension(sign_certificate, x509.CertificatePolicies).value
    ] == [SANDBOX_SIGN_POLICY_OID]
    assert ocsp_url(sign_certificate).endswith("/ocsp/sign")
    info = parsed.basic_info
    assert info.name == "〓橋　花子"
    assert parsed.name_substitute_positions == (0,)
    assert info.address == HOLDER.address  # full-width hyphens are JIS characters
    assert parsed.address_substitute_positions == ()
    assert info.birth_date == HOLDER.birth_date
    assert info.sex is Sex.FEMALE
    assert parsed.birth_era_date.certificate_value() == "419900401"
    # docs/card.md §9.2: otherName = [0] { type-id, [0] EXPLICIT UTF8String }.
    alternative_name = extension(sign_certificate, x509.SubjectAlternativeName).value
    encoded_name = "〓橋　花子".encode()
    expected = (
        bytes([0xA0, 12 + 2 + 2 + len(encoded_name)])
        + bytes.fromhex("060a2a83088c9b5508050501")
        + bytes([0xA0, 2 + len(encoded_name), 0x0C, len(encoded_name)])
        + encoded_name
    )
    assert expected in alternative_name.public_bytes()
    assert alternative_name.get_values_for_type(x509.OtherName)[0].type_id == NAME_OID


def test_revocation_reaches_crl_and_status(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> None:
    certificate = issuer.issue_auth_certificate(holder_keys[2].public_key())
    serial = certificate.serial_number
    assert issuer.status(serial).state is RevocationState.GOOD
    first = issuer.crl(AUTH)
    assert first.get_revoked_certificate_by_serial_number(serial) is None
    issuer.revoke(serial, x509.ReasonFlags.cessation_of_operation)
    status = issuer.status(serial)
    assert status.is_revoked and status.reason is x509.ReasonFlags.cessation_of_operation
    crl = issuer.crl(AUTH)
    assert crl.is_signature_valid(issuer.auth_root.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.cessation_of_operation
    )
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    assert check_crl(certificate, crl, issuer.auth_root).is_revoked
    # The signature CRL is separate and signed by the signature root.
    sign_crl = issuer.crl(SIGN)
    assert sign_crl.issuer == issuer.sign_root.subject
    assert sign_crl.get_revoked_certificate_by_serial_number(serial) is None
    with pytest.raises(UsageError, match="already revoked"):
        issuer.revoke(serial, x509.ReasonFlags.key_compromise)
    with pytest.raises(UsageError, match="never issued"):
        issuer.revoke(12345, x509.ReasonFlags.key_compromise)
    assert issuer.status(12345).state is RevocationState.UNKNOWN


def test_ocsp_response_unknown_and_malformed(issuer: SandboxIssuer) -> None:
    name_hash, key_hash = cert_id_hashes(issuer.auth_root, hashes.SHA256())
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(name_hash, key_hash, 999, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = ocsp.load_der_ocsp_response(issuer.ocsp_response(request))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # An auth root's CertID asked at the signature responder path is not answered.
    refused = ocsp.load_der_ocsp_response(issuer.ocsp_response(request, kind=SIGN))
    assert refused.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    malformed = ocsp.load_der_ocsp_response(issuer.ocsp_response(b"\x30\x03\x02\x01\x00"))
    assert malformed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_renewal_links_serials_with_consent(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> None:
    old = issuer.issue_sign_certificate(holder_keys[0].public_key(), HOLDER)
    new = issuer.renew(old.serial_number, holder_keys[1].public_key())
    assert new.serial_number != old.serial_number
    assert new.public_key() == holder_keys[1].public_key()
    assert new.subject == old.subject
    assert from_x509(new).basic_info == from_x509(old).basic_info
    assert issuer.previous_serial(new.serial_number) == old.serial_number
    assert issuer.previous_serial(old.serial_number) is None
    old_status = issuer.status(old.serial_number)
    assert old_status.is_revoked and old_status.reason is x509.ReasonFlags.superseded

    unlinked = issuer.renew(
        new.serial_number, holder_keys[2].public_key(), consent_serial_link=False
    )
    with pytest.raises(SerialLinkRefusedError, match="did not consent"):
        issuer.previous_serial(unlinked.serial_number)
    state = json.loads((issuer.directory / "state.json").read_text())
    assert state["certificates"][str(unlinked.serial_number)]["previous_serial"] is None
    with pytest.raises(UsageError, match="never issued"):
        issuer.previous_serial(1)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (x509.ReasonFlags.key_compromise, "revoked for keyCompromise: a compromised key needs"),
        (x509.ReasonFlags.superseded, r"already revoked \(superseded\)"),
    ],
)
def test_renewal_of_a_revoked_certificate_is_refused_and_keeps_its_revocation(
    issuer: SandboxIssuer,
    holder_keys: list[rsa.RSAPrivateKey],
    reason: x509.ReasonFlags,
    message: str,
) -> None:
    """Renewal is for good certificates; it must never relabel a keyCompromise revocation as
    superseded (RFC 5280 §5.3.1), nor issue a successor."""
    old = issuer.issue_auth_certificate(holder_keys[0].public_key())
    issuer.revoke(old.serial_number, reason)
    before = issuer.status(old.serial_number)
    issued = sorted(issuer.issued_serials())
    with pytest.raises(RenewalRefusedError, match=message):
        issuer.renew(old.serial_number, holder_keys[1].public_key())
    assert issuer.status(old.serial_number) == before
    assert before.reason is reason
    assert sorted(issuer.issued_serials()) == issued
    crl = issuer.crl(AUTH)
    entry = crl.get_revoked_certificate_by_serial_number(old.serial_number)
    assert entry is not None
    if reason is x509.ReasonFlags.key_compromise:
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is reason


def test_ocsp_answers_from_the_register(
    issuer: SandboxIssuer, holder_keys: list[rsa.RSAPrivateKey]
) -> None:
    """The OCSP status is the register's status: what ``status()`` says, OCSP says."""
    certificate = issuer.issue_auth_certificate(holder_keys[2].public_key())
    issuer.revoke(certificate.serial_number, x509.ReasonFlags.key_compromise)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer.auth_root, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answer = ocsp.load_der_ocsp_response(issuer.ocsp_response(request))
    register = issuer.record(certificate.serial_number)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is register.revocation_reason is x509.ReasonFlags.key_compromise
    assert register.revoked_at is not None
    # GeneralizedTime in OCSP carries whole seconds (RFC 6960 §4.2.2.1).
    assert answer.revocation_time_utc == register.revoked_at.replace(microsecond=0)


def test_validate_path_picks_the_right_generation(
    issuer: SandboxIssuer,
    auth_certificate: x509.Certificate,
    holder_keys: list[rsa.RSAPrivateKey],
    tmp_path: Path,
) -> None:
    second = SandboxIssuer.create(tmp_path / "generation-2", ocsp_port=issuer.ocsp_port)
    assert second.auth_root.subject == issuer.auth_root.subject
    assert second.auth_root.public_key() != issuer.auth_root.public_key()
    store = TrustStore.jlis().with_sandbox(issuer).with_sandbox(tmp_path / "generation-2")
    later = second.issue_auth_certificate(holder_keys[1].public_key())
    assert validate_path(later, store, purpose=AUTH).anchor.x509_certificate == second.auth_root
    assert (
        validate_path(auth_certificate, store, purpose=AUTH).anchor.x509_certificate
        == issuer.auth_root
    )
    signed = second.issue_sign_certificate(holder_keys[1].public_key(), HOLDER)
    assert validate_path(signed, store, purpose=SIGN).anchor.x509_certificate == second.sign_root


def test_reopened_issuer_continues(
    issuer: SandboxIssuer, issuer_directory: Path, holder_keys: list[rsa.RSAPrivateKey]
) -> None:
    certificate = issuer.issue_auth_certificate(holder_keys[0].public_key())
    issuer.revoke(certificate.serial_number, x509.ReasonFlags.privilege_withdrawn)
    crl_number = (
        issuer.crl(AUTH).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )

    reopened = SandboxIssuer.open(issuer_directory)
    assert reopened.roots == issuer.roots
    assert reopened.ocsp_port == issuer.ocsp_port
    assert reopened.status(certificate.serial_number).reason is x509.ReasonFlags.privilege_withdrawn
    assert reopened.certificate(certificate.serial_number) == certificate
    assert set(reopened.issued_serials()) == set(issuer.issued_serials())
    # New issuance in the reopened instance is seen by the first one (another process's view).
    fresh = reopened.issue_auth_certificate(holder_keys[1].public_key())
    reopened.revoke(fresh.serial_number, x509.ReasonFlags.key_compromise)
    assert issuer.status(fresh.serial_number).is_revoked
    next_crl = reopened.crl(AUTH)
    assert next_crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > crl_number
    assert next_crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    assert SandboxIssuer.open_or_create(issuer_directory).roots == issuer.roots
    with pytest.raises(UsageError, match="already holds"):
        SandboxIssuer.create(issuer_directory)


def test_open_of_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds no sandbox issuer"):
        SandboxIssuer.open(tmp_path)


def test_create_honours_root_dates(tmp_path: Path) -> None:
    start = dt.datetime(2015, 10, 20, tzinfo=UTC)
    old = SandboxIssuer.create(tmp_path, ocsp_port=8080, not_before=start, validity_days=3650)
    assert old.auth_root.not_valid_before_utc == start
    assert old.auth_root.not_valid_after_utc == start + dt.timedelta(days=3650)
    assert old.ocsp_port == 8080
    assert old.base_url == "http://127.0.0.1:8080"


def test_responder_port_is_outside_the_ephemeral_range(issuer: SandboxIssuer) -> None:
    # Client sockets take ephemeral ports (Linux: 32768-60999) at any time; the recorded
    # responder port must not be one of them, or a later run could find it taken.
    assert 20000 <= issuer.ocsp_port < 32768
