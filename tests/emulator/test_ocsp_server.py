from __future__ import annotations

import base64
import datetime as dt
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.errors import TransportError, UsageError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import (
    RevocationCheckError,
    RevocationState,
    check_crl,
    check_ocsp,
    crl_checker,
    crl_url,
    fetch_crl,
    ocsp_checker,
    verify_ocsp_response,
)
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, ValidationFailure, validate_path
from mynakit.personal import BasicInfo, Sex

pytestmark = pytest.mark.emulator

AUTH = CertificateKind.AUTH
SIGN = CertificateKind.SIGN


@pytest.fixture(scope="module")
def holder_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> SandboxIssuer:
    return SandboxIssuer.create(tmp_path_factory.mktemp("ocsp-issuer"))


@pytest.fixture(scope="module")
def server(issuer: SandboxIssuer) -> Iterator[OcspServer]:
    with OcspServer(issuer) as running:
        yield running


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ocsp_request(certificate: x509.Certificate, issuer_certificate: x509.Certificate) -> bytes:
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer_certificate, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )


def test_server_listens_on_the_port_in_the_certificates(
    issuer: SandboxIssuer, server: OcspServer
) -> None:
    assert server.port == issuer.ocsp_port
    assert server.url == issuer.base_url
    assert server.ocsp_url(CertificateKind.AUTH_CA) == f"{issuer.base_url}/ocsp/auth"
    assert server.crl_url(SIGN) == f"{issuer.base_url}/crl/sign.crl"


def test_ocsp_good_then_revoked_through_the_loopback_server(
    issuer: SandboxIssuer, server: OcspServer, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    status = check_ocsp(certificate, issuer.auth_root)
    assert status.state is RevocationState.GOOD
    assert status.source == "ocsp"
    store = TrustStore().with_sandbox(issuer)
    path = validate_path(certificate, store, purpose=AUTH, revocation=ocsp_checker())
    assert path.revocation is not None and path.revocation.is_good

    issuer.revoke(certificate.serial_number, x509.ReasonFlags.key_compromise)
    status = check_ocsp(certificate, issuer.auth_root)
    assert status.state is RevocationState.REVOKED
    assert status.reason is x509.ReasonFlags.key_compromise
    assert status.revocation_time is not None
    with pytest.raises(CertificateValidationError) as caught:
        validate_path(certificate, store, purpose=AUTH, revocation=ocsp_checker())
    assert caught.value.reason is ValidationFailure.REVOKED
    # The CRL served over HTTP agrees.
    crl = fetch_crl(crl_url(certificate))
    crl_status = check_crl(certificate, crl, issuer.auth_root)
    assert crl_status.is_revoked and crl_status.reason is x509.ReasonFlags.key_compromise
    with pytest.raises(CertificateValidationError) as caught:
        validate_path(certificate, store, purpose=AUTH, revocation=crl_checker())
    assert caught.value.reason is ValidationFailure.REVOKED


def test_sign_certificate_ocsp(
    issuer: SandboxIssuer, server: OcspServer, holder_key: rsa.RSAPrivateKey
) -> None:
    info = BasicInfo("佐藤　一郎", "大阪府大阪市北区１", dt.date(1975, 5, 5), Sex.MALE)
    certificate = issuer.issue_sign_certificate(holder_key.public_key(), info)
    assert check_ocsp(certificate, issuer.sign_root).is_good
    # Asking with the wrong issuer: the CertID names the auth root, so the answer is refused.
    with pytest.raises(RevocationCheckError, match="UNAUTHORIZED"):
        check_ocsp(certificate, issuer.auth_root)


def test_nonce_and_freshness_are_enforced(
    issuer: SandboxIssuer, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    sent_nonce = b"0123456789abcdef"
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer.auth_root, hashes.SHA1())
        .add_extension(x509.OCSPNonce(sent_nonce), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = issuer.ocsp_response(request)
    good = verify_ocsp_response(response, certificate, issuer.auth_root, nonce=sent_nonce)
    assert good.is_good
    with pytest.raises(RevocationCheckError, match="nonce differs"):
        verify_ocsp_response(response, certificate, issuer.auth_root, nonce=b"another nonce!!!")
    without_nonce = issuer.ocsp_response(ocsp_request(certificate, issuer.auth_root))
    with pytest.raises(RevocationCheckError, match="does not echo"):
        verify_ocsp_response(without_nonce, certificate, issuer.auth_root, nonce=sent_nonce)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(RevocationCheckError, match="stale"):
        verify_ocsp_response(response, certificate, issuer.auth_root, nonce=sent_nonce, at=later)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with pytest.raises(RevocationCheckError, match="future"):
        verify_ocsp_response(response, certificate, issuer.auth_root, nonce=sent_nonce, at=earlier)


def test_response_signed_by_another_generation_is_refused(
    issuer: SandboxIssuer, holder_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    # Same DN, different key: a responder of the other generation cannot vouch.
    other = SandboxIssuer.create(tmp_path / "other", ocsp_port=issuer.ocsp_port)
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    foreign = other.ocsp_response(ocsp_request(certificate, issuer.auth_root))
    with pytest.raises(RevocationCheckError, match="refused the request: UNAUTHORIZED"):
        verify_ocsp_response(foreign, certificate, issuer.auth_root, nonce=None)
    # A CRL from the other generation carries the same issuer DN but fails the signature check.
    with pytest.raises(RevocationCheckError, match="signature"):
        check_crl(certificate, other.crl(AUTH), issuer.auth_root)


def load_root_key(issuer: SandboxIssuer, kind: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        (issuer.directory / f"{kind}-root.key.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def hand_built_response(
    certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    responder: x509.Certificate,
    extra_certificates: list[x509.Certificate],
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=certificate,
            issuer=issuer_certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, responder)
    )
    if extra_certificates:
        builder = builder.certificates(extra_certificates)
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_forged_and_delegated_responses(
    issuer: SandboxIssuer, holder_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    # The other generation's root has the same DN, so a by-name responder ID matches the
    # issuer; only the signature check stops the forgery.
    other = SandboxIssuer.create(tmp_path / "forger", ocsp_port=issuer.ocsp_port)
    forged = hand_built_response(
        certificate, issuer.auth_root, load_root_key(other, "auth"), other.auth_root, []
    )
    with pytest.raises(RevocationCheckError, match="signature does not verify"):
        verify_ocsp_response(forged, certificate, issuer.auth_root, nonce=None)

    # RFC 6960 §4.2.2.2: a responder certificate issued by the CA with id-kp-OCSPSigning.
    responder_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)

    def responder_certificate(usages: list[x509.ObjectIdentifier]) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "sandbox OCSP responder")])
            )
            .issuer_name(issuer.auth_root.subject)
            .public_key(responder_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(load_root_key(issuer, "auth"), hashes.SHA256())

    delegate = responder_certificate([ExtendedKeyUsageOID.OCSP_SIGNING])
    delegated = hand_built_response(
        certificate, issuer.auth_root, responder_key, delegate, [delegate]
    )
    assert verify_ocsp_response(delegated, certificate, issuer.auth_root, nonce=None).is_good
    not_a_responder = responder_certificate([ExtendedKeyUsageOID.CLIENT_AUTH])
    refused = hand_built_response(
        certificate, issuer.auth_root, responder_key, not_a_responder, [not_a_responder]
    )
    with pytest.raises(RevocationCheckError, match="OCSPSigning"):
        verify_ocsp_response(refused, certificate, issuer.auth_root, nonce=None)


def test_get_form_and_http_errors(
    issuer: SandboxIssuer, server: OcspServer, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    request = ocsp_request(certificate, issuer.auth_root)
    encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    with urllib.request.urlopen(f"{server.ocsp_url(AUTH)}/{encoded}", timeout=5) as reply:
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        response = ocsp.load_der_ocsp_response(reply.read())
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD

    status, _ = post(server.ocsp_url(AUTH), request, "text/plain")
    assert status == 415
    status, _ = post(f"{server.url}/ocsp/other", request, "application/ocsp-request")
    assert status == 404
    status, body = post(server.ocsp_url(AUTH), b"garbage", "application/ocsp-request")
    assert status == 200
    assert (
        ocsp.load_der_ocsp_response(body).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server.url}/crl/other.crl", timeout=5)
    assert caught.value.code == 404
    caught.value.close()


def test_network_failures_are_errors_not_good(
    issuer: SandboxIssuer, server: OcspServer, holder_key: rsa.RSAPrivateKey
) -> None:
    certificate = issuer.issue_auth_certificate(holder_key.public_key())
    stopped = OcspServer(issuer, port=0).start()
    closed_url = stopped.ocsp_url(AUTH)
    stopped.stop()
    with pytest.raises(RevocationCheckError, match="cannot reach OCSP responder"):
        check_ocsp(certificate, issuer.auth_root, url=closed_url, timeout=2)
    with pytest.raises(RevocationCheckError, match="HTTP 404"):
        check_ocsp(certificate, issuer.auth_root, url=f"{server.url}/nowhere", timeout=2)
    with pytest.raises(RevocationCheckError, match="not http"):
        check_ocsp(certificate, issuer.auth_root, url="file:///etc/passwd")
    with pytest.raises(RevocationCheckError, match="cannot reach CRL"):
        fetch_crl(closed_url.replace("/ocsp/auth", "/crl/auth.crl"), timeout=2)
    store = TrustStore().with_sandbox(issuer)
    with pytest.raises(CertificateValidationError) as caught:
        validate_path(
            certificate, store, purpose=AUTH, revocation=ocsp_checker(url=closed_url, timeout=2)
        )
    assert caught.value.reason is ValidationFailure.REVOCATION_UNKNOWN


def test_server_refuses_non_loopback_and_busy_ports(
    issuer: SandboxIssuer, server: OcspServer
) -> None:
    with pytest.raises(UsageError, match="loopback"):
        OcspServer(issuer, host="0.0.0.0")
    with pytest.raises(UsageError, match="loopback"):
        OcspServer(issuer, host="localhost.example")
    with pytest.raises(TransportError, match="cannot listen"):
        OcspServer(issuer).start()  # the module's server already holds the port
    with pytest.raises(UsageError, match="already running"):
        server.start()


def test_broken_issuer_directory_answers_500(holder_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    broken = SandboxIssuer.create(tmp_path / "broken")
    certificate = broken.issue_auth_certificate(holder_key.public_key())
    with OcspServer(broken, port=0) as running:
        (tmp_path / "broken" / "state.json").unlink()
        with pytest.raises(RevocationCheckError, match="HTTP 500"):
            check_ocsp(certificate, broken.auth_root, url=running.ocsp_url(AUTH), timeout=5)
        with pytest.raises(RevocationCheckError, match="HTTP 500"):
            fetch_crl(running.crl_url(AUTH), timeout=5)
