"""``mynakit jpki auth``, ``verify-cert``, ``cms`` and ``pdf`` against a persistent virtual
card, through ``main()`` with ``--reader virtual:NAME`` and ``MYNAKIT_HOME`` in a
temporary directory (the sandbox issuer is created beside the card, in ``$MYNAKIT_HOME/issuer``,
and its loopback responder is started by the commands themselves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.errors import WrongPinError
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.errors import UsageError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.cms import CmsVerificationError
from mynakit.jpki.pdf import PdfVerificationError
from mynakit.jpki.validation import CertificateValidationError, ValidationFailure
from support.cli import fails_with, invoke, ok_json
from support.openssl import openssl_cms_verify
from support.pdf import minimal_pdf

pytestmark = pytest.mark.emulator

READER = "virtual:relying"

CONTENT = "委任状 — letter of attorney\n".encode()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mynakit-home")
    create_card(directory / "cards", "relying", seed="cli-relying")
    return directory


@pytest.fixture(scope="module")
def holder(home: Path) -> Persona:
    return load_card_state(home / "cards", "relying").persona


# -- jpki auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("revocation", ["ocsp", "crl"])
def test_auth_against_the_sandbox_issuer(home: Path, holder: Persona, revocation: str) -> None:
    data = ok_json(
        invoke(
            home,
            READER,
            "jpki",
            "auth",
            "--revocation",
            revocation,
            "--pin-stdin",
            stdin=holder.auth_pin,
        )
    )
    assert data["authenticated"] is True
    assert data["serial"] == load_card_state(home / "cards", "relying").serials["auth"]
    assert data["revocation"] == f"good ({revocation})"
    assert data["production"] is False
    # JpkiAp.open (SELECT + token) + retry query + VERIFY + sign + certificate read(s).
    assert 6 <= data["apdus"] <= 12
    assert holder.auth_pin not in json.dumps(data)


def test_auth_as_text(home: Path, holder: Persona) -> None:
    result = invoke(
        home, READER, "jpki", "auth", "--pin-stdin", stdin=holder.auth_pin, as_json=False
    )
    assert result.exit_code == 0, result.output
    assert "Authenticated" in result.stdout and "APDUs:" in result.stdout
    assert "(sandbox)" in result.stdout


def test_auth_with_a_wrong_pin(home: Path, holder: Persona) -> None:
    wrong = "0000" if holder.auth_pin != "0000" else "1111"
    result = invoke(home, READER, "jpki", "auth", "--pin-stdin", stdin=wrong)
    fails_with(result, WrongPinError)
    # Put the counter back for the other tests.
    right_pin_args = ["jpki", "auth", "--revocation", "none", "--pin-stdin"]
    ok_json(invoke(home, READER, *right_pin_args, stdin=holder.auth_pin))


def test_auth_without_an_issuer(tmp_path: Path) -> None:
    result = invoke(tmp_path, None, "jpki", "auth", "--pin-stdin")
    assert "no sandbox issuer" in fails_with(result, UsageError)


# -- jpki verify-cert -----------------------------------------------------------------------------


def test_verify_card_certificate_with_ocsp(home: Path) -> None:
    data = ok_json(
        invoke(home, READER, "jpki", "verify-cert", "--from-card", "auth", "--sandbox", "--ocsp")
    )
    assert data["valid"] is True and data["kind"] == "auth"
    assert data["revocation"] == "good (ocsp)"
    assert data["production"] is False


def test_verify_cert_needs_the_sandbox_flag_for_sandbox_certificates(home: Path) -> None:
    result = invoke(home, READER, "jpki", "verify-cert", "--from-card", "auth")
    assert result.exit_code == CertificateValidationError.exit_code
    data = json.loads(result.stdout)["result"]
    assert data["valid"] is False and data["reason"] == ValidationFailure.UNKNOWN_ISSUER.value
    assert "add --sandbox" in data["message"]


def test_verify_revoked_certificate_file(home: Path, tmp_path: Path) -> None:
    issuer = SandboxIssuer.open(home / "issuer")
    card_certificate = x509.load_der_x509_certificate(_card_certificate(home))
    revoked = issuer.issue_auth_certificate(card_certificate.public_key())
    issuer.revoke(revoked.serial_number, x509.ReasonFlags.key_compromise)
    target = tmp_path / "revoked.pem"
    target.write_bytes(revoked.public_bytes(Encoding.PEM))

    for flag in ("--ocsp", "--crl"):
        result = invoke(home, READER, "jpki", "verify-cert", str(target), "--sandbox", flag)
        assert result.exit_code == CertificateValidationError.exit_code, result.output
        data = json.loads(result.stdout)["result"]
        assert data["reason"] == "revoked" and data["serial"] == revoked.serial_number
    # Without a revocation check the certificate itself is fine.
    assert (
        ok_json(invoke(home, READER, "jpki", "verify-cert", str(target), "--sandbox"))["valid"]
        is True
    )


def _card_certificate(home: Path) -> bytes:
    target = home / "auth.der"
    ok_json(invoke(home, READER, "jpki", "cert", "-t", "auth", "-f", "der", "-o", str(target)))
    return target.read_bytes()


def test_verify_cert_usage_errors(home: Path, tmp_path: Path) -> None:
    fails_with(invoke(home, READER, "jpki", "verify-cert"), UsageError)
    missing = invoke(home, READER, "jpki", "verify-cert", str(tmp_path / "none.der"))
    assert "cannot read" in fails_with(missing, UsageError)
    root = tmp_path / "root.pem"
    root.write_bytes((home / "issuer" / "auth-root.pem").read_bytes())
    fails_with(invoke(home, READER, "jpki", "verify-cert", str(root)), UsageError)


# -- jpki cms -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "options"),
    [("sign", []), ("sign", ["--detached", "-f", "pem", "-d", "sha512"]), ("auth", [])],
)
def test_cms_sign_and_verify(
    home: Path, holder: Persona, tmp_path: Path, key: str, options: list[str]
) -> None:
    content = tmp_path / "letter.txt"
    content.write_bytes(CONTENT)
    signature = tmp_path / "letter.p7s"
    secret = holder.sign_password if key == "sign" else holder.auth_pin
    signed = ok_json(
        invoke(
            home,
            READER,
            "jpki",
            "cms",
            "sign",
            "-t",
            key,
            str(content),
            "-o",
            str(signature),
            *options,
            "--pin-stdin",
            stdin=secret,
        )
    )
    detached = "--detached" in options
    assert signed["detached"] is detached and signed["signer"]["kind"] == key
    assert "basic_info" not in json.dumps(signed)

    # The acceptance check: OpenSSL, knowing nothing of mynakit, verifies the CLI's output
    # against the sandbox root (issue: "verifies with openssl cms -verify").
    root = SandboxIssuer.open(home / "issuer").root_for(CertificateKind(key))
    by_openssl = openssl_cms_verify(
        signature,
        root.public_bytes(Encoding.PEM),
        tmp_path,
        content if detached else None,
        pem="pem" in options,
        any_purpose=key == "auth",
    )
    assert by_openssl.returncode == 0, by_openssl.stderr
    assert b"Verification successful" in by_openssl.stderr

    verify_args = ["jpki", "cms", "verify", str(signature), "--sandbox"]
    if detached:
        verify_args += ["--detached", "-c", str(content)]
    verified = ok_json(invoke(home, READER, *verify_args, "--ocsp"))
    assert verified["valid"] is True and verified["signer"]["kind"] == key
    assert verified["trust"]["revocation"] == "good (ocsp)"

    untrusted_args = [arg for arg in verify_args if arg != "--sandbox"]
    untrusted = invoke(home, READER, *untrusted_args)
    assert "add --sandbox" in fails_with(untrusted, CertificateValidationError)
    assert json.loads(untrusted.stdout)["result"]["reason"] == "unknown_issuer"

    tampered = tmp_path / "tampered.txt"
    tampered.write_bytes(CONTENT + b"PS: and the house\n")
    if detached:
        forged = invoke(
            home,
            READER,
            "jpki",
            "cms",
            "verify",
            str(signature),
            "--sandbox",
            "--detached",
            "-c",
            str(tampered),
        )
    else:
        forged = invoke(
            home, READER, "jpki", "cms", "verify", str(signature), "--sandbox", "-c", str(tampered)
        )
    fails_with(forged, CmsVerificationError)


def test_cms_verify_writes_attached_content(home: Path, holder: Persona, tmp_path: Path) -> None:
    content = tmp_path / "in.txt"
    content.write_bytes(CONTENT)
    signature = tmp_path / "in.p7s"
    ok_json(
        invoke(
            home,
            READER,
            "jpki",
            "cms",
            "sign",
            str(content),
            "-o",
            str(signature),
            "--pin-stdin",
            stdin=holder.sign_password,
        )
    )
    extracted = tmp_path / "out.txt"
    result = invoke(
        home,
        READER,
        "jpki",
        "cms",
        "verify",
        str(signature),
        "--sandbox",
        "-o",
        str(extracted),
        as_json=False,
    )
    assert result.exit_code == 0 and "Verification successful" in result.stdout
    assert extracted.read_bytes() == CONTENT
    wrong_format = invoke(
        home, READER, "jpki", "cms", "verify", str(signature), "-f", "pem", "--sandbox"
    )
    fails_with(wrong_format, UsageError)
    needs_content = invoke(home, READER, "jpki", "cms", "verify", str(signature), "--detached")
    fails_with(needs_content, UsageError)


# -- jpki pdf -------------------------------------------------------------------------------------


def test_pdf_sign_and_verify(home: Path, holder: Persona, tmp_path: Path) -> None:
    source = tmp_path / "form.pdf"
    source.write_bytes(minimal_pdf())
    signed = tmp_path / "form-signed.pdf"
    data = ok_json(
        invoke(
            home,
            READER,
            "jpki",
            "pdf",
            "sign",
            str(source),
            "-o",
            str(signed),
            "--reason",
            "test",
            "--pin-stdin",
            stdin=holder.sign_password,
        )
    )
    assert data["field_name"] == "Signature1" and data["subfilter"] == "ETSI.CAdES.detached"

    verified = ok_json(invoke(home, READER, "jpki", "pdf", "verify", str(signed), "--sandbox"))
    assert verified["ok"] is True
    (signature,) = verified["signatures"]
    assert signature["intact"] and signature["valid"] and signature["trusted"]

    untrusted = invoke(home, READER, "jpki", "pdf", "verify", str(signed))
    assert "NOT OK" in fails_with(untrusted, PdfVerificationError)
    assert json.loads(untrusted.stdout)["result"]["signatures"][0]["trusted"] is False

    unsigned = invoke(home, READER, "jpki", "pdf", "verify", str(source), "--sandbox")
    assert "no signature" in fails_with(unsigned, PdfVerificationError)
