"""OpenSC's JPKI driver (pkcs15-tool, pkcs11-tool) against the virtual card through pcscd.

This is the acceptance test that the card behaves like a real one to third-party middleware
(docs/testing.md §6).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.card.readout import ReadoutSecrets, standard_readout
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.pcscd import PcscdSession, card_in_virtual_reader
from mynakit.emulator.personas import Persona
from mynakit.emulator.transcripts import (
    RecordingConnection,
    make_transcript,
    persona_card_state,
    virtual_card_from_transcript,
)
from mynakit.profiles import load_profile
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.limits import protocol_for

pytestmark = pytest.mark.pcsc

PKCS11_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
AUTH_TOKEN_SLOT = "0"  # slot 0 is the auth PIN token, slot 1 the sign password token


def run_tool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False)


def read_sign_certificate(reader: str, sign_password: str) -> subprocess.CompletedProcess[str]:
    """The signature certificate (PKCS#15 id 02) as PEM, read after the signature password."""
    return run_tool(
        "pkcs15-tool",
        "--reader",
        reader,
        "--read-certificate",
        "02",
        "--auth-id",
        "02",
        "--verify-pin",
        "--pin",
        sign_password,
    )


def wrong_pin(pin: str) -> str:
    return "".join(str((int(digit) + 1) % 10) for digit in pin)


def pkcs11_sign(
    pin: str, data_file: Path, signature_file: Path
) -> subprocess.CompletedProcess[str]:
    return run_tool(
        "pkcs11-tool",
        "--module",
        PKCS11_MODULE,
        "--slot-index",
        AUTH_TOKEN_SLOT,
        "--login",
        "--pin",
        pin,
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "--input-file",
        str(data_file),
        "--output-file",
        str(signature_file),
    )


@pytest.fixture
def pkcs11_module() -> str:
    if not Path(PKCS11_MODULE).exists():
        pytest.fail(f"OpenSC's PKCS#11 module is missing at {PKCS11_MODULE}: install opensc")
    return PKCS11_MODULE


def test_pkcs15_lists_both_jpki_certificates(pcsc_virtual_reader: str) -> None:
    result = run_tool("pkcs15-tool", "--reader", pcsc_virtual_reader, "--list-certificates")
    assert result.returncode == 0, result.stderr
    assert "User Authentication Certificate" in result.stdout
    assert "Digital Signature Certificate" in result.stdout
    assert "User Authentication Certificate CA" in result.stdout
    assert "Digital Signature Certificate CA" in result.stdout


def test_pkcs15_reads_the_auth_certificate(pcsc_virtual_reader: str) -> None:
    result = run_tool("pkcs15-tool", "--reader", pcsc_virtual_reader, "--read-certificate", "01")
    assert result.returncode == 0, result.stderr
    certificate = x509.load_pem_x509_certificate(result.stdout.encode())
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048


def test_pkcs15_reads_the_signature_certificate_with_the_password(
    pcsc_virtual_reader: str, persona: Persona
) -> None:
    # OpenSC marks the signature certificate private (docs/card.md §3.1): without the password the
    # card refuses the read (6982), with it the certificate comes back and carries basic-4 data.
    refused = run_tool("pkcs15-tool", "--reader", pcsc_virtual_reader, "--read-certificate", "02")
    assert "BEGIN CERTIFICATE" not in refused.stdout
    result = read_sign_certificate(pcsc_virtual_reader, persona.sign_password)
    assert result.returncode == 0, result.stderr
    certificate = x509.load_pem_x509_certificate(result.stdout.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # basic-4 otherNames (docs/card.md §9.2)
    assert len(names.get_values_for_type(x509.OtherName)) == 6


@pytest.mark.parametrize("certificate_id", ["03", "04"])
def test_pkcs15_reads_the_ca_certificates(pcsc_virtual_reader: str, certificate_id: str) -> None:
    result = run_tool(
        "pkcs15-tool", "--reader", pcsc_virtual_reader, "--read-certificate", certificate_id
    )
    assert result.returncode == 0, result.stderr
    certificate = x509.load_pem_x509_certificate(result.stdout.encode())
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca


def test_pkcs11_signs_with_the_auth_key_and_the_certificate_verifies_it(
    pcsc_virtual_reader: str, pkcs11_module: str, persona: Persona, tmp_path: Path
) -> None:
    data = b"nonce from the eligibility service"
    (tmp_path / "data").write_bytes(data)
    result = pkcs11_sign(persona.auth_pin, tmp_path / "data", tmp_path / "signature")
    assert result.returncode == 0, result.stdout + result.stderr
    signature = (tmp_path / "signature").read_bytes()
    certificate_pem = run_tool(
        "pkcs15-tool", "--reader", pcsc_virtual_reader, "--read-certificate", "01"
    ).stdout
    public_key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def auth_token_flags() -> str:
    listing = run_tool("pkcs11-tool", "--module", PKCS11_MODULE, "--list-slots").stdout
    return next(line for line in listing.splitlines() if "token flags" in line)


def test_wrong_pins_count_down_and_block_the_auth_pin(
    pcsc_virtual_reader: str, pkcs11_module: str, persona: Persona, tmp_path: Path
) -> None:
    (tmp_path / "data").write_bytes(b"x")
    wrong = wrong_pin(persona.auth_pin)
    # The auth PIN allows 3 tries (docs/architecture.md §9); OpenSC shows the count through the
    # token flags.
    for tries_left, flag in ((2, "user PIN count low"), (1, "final user PIN try"), (0, "locked")):
        result = pkcs11_sign(wrong, tmp_path / "data", tmp_path / "signature")
        assert result.returncode != 0
        assert "CKR_PIN_INCORRECT" in result.stderr, result.stderr
        assert flag in auth_token_flags()
        pins = run_tool("pkcs15-tool", "--reader", pcsc_virtual_reader, "--list-pins").stdout
        auth_section = pins.split("PIN [Digital Signature PIN]")[0]
        assert f"Tries left     : {tries_left}" in auth_section, pins
    # Blocked: now even the right PIN is refused. The card answers 6984 like real cards
    # (docs/card.md §8), which OpenSC 0.23 reports as CKR_GENERAL_ERROR.
    result = pkcs11_sign(persona.auth_pin, tmp_path / "data", tmp_path / "signature")
    assert result.returncode != 0
    assert "C_Login failed" in result.stderr
    assert not (tmp_path / "signature").exists()


@pytest.fixture
def replayed_reader(
    pcscd: PcscdSession,
    virtual_card: VirtualCard,
    persona: Persona,
    sandbox_issuer: SandboxIssuer,
    tmp_path: Path,
) -> Iterator[tuple[str, VirtualCard]]:
    """A card rebuilt from a transcript of ``virtual_card`` (read with every PIN), in the
    virtual reader."""
    recording = RecordingConnection(InProcessConnection(virtual_card))
    secrets = ReadoutSecrets(persona.auth_pin, persona.sign_password, persona.text_pin)
    standard_readout(protocol_for(recording), secrets)
    transcript = make_transcript(
        recording.exchanges,
        atr=recording.atr,
        profile=virtual_card.profile,
        persona_state=persona_card_state(load_profile(), sandbox_issuer, seed="opensc"),
    )
    replayed = virtual_card_from_transcript(transcript, sandbox_issuer, tmp_path, seed="replay")
    with card_in_virtual_reader(replayed) as bridge:
        yield bridge.reader_name, replayed


def test_opensc_reads_and_signs_on_a_card_rebuilt_from_a_transcript(
    replayed_reader: tuple[str, VirtualCard], pkcs11_module: str, tmp_path: Path
) -> None:
    # The transcript's certificates are well-formed X.509 (OpenSC parses them to build its
    # PKCS#15 objects), and the rebuilt card's key signs under the auth certificate.
    reader, card = replayed_reader
    holder = card.state.persona
    auth_pem = run_tool("pkcs15-tool", "--reader", reader, "--read-certificate", "01")
    assert auth_pem.returncode == 0, auth_pem.stderr
    certificate = x509.load_pem_x509_certificate(auth_pem.stdout.encode())
    sign_pem = read_sign_certificate(reader, holder.sign_password)
    assert sign_pem.returncode == 0, sign_pem.stderr
    x509.load_pem_x509_certificate(sign_pem.stdout.encode())
    data = b"nonce for the replayed card"
    (tmp_path / "data").write_bytes(data)
    result = pkcs11_sign(holder.auth_pin, tmp_path / "data", tmp_path / "signature")
    assert result.returncode == 0, result.stdout + result.stderr
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        (tmp_path / "signature").read_bytes(), data, padding.PKCS1v15(), hashes.SHA256()
    )
