"""CMS and PDF signatures made by the in-process virtual card, checked by mynakit, by the
``openssl cms`` command and by pyHanko's validator."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.jpki import CardPrivateKey, JpkiAp
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona
from mynakit.errors import DataError, UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.cms import CmsVerificationError, sign_cms, to_pem, verify_cms
from mynakit.jpki.pdf import (
    AUTH_KEY_NOT_FOR_DOCUMENTS,
    JpkiPdfSigner,
    require_document_signing_key,
    sign_pdf,
    verify_pdf,
)
from mynakit.jpki.trust import TrustStore
from mynakit.transport.in_process import InProcessConnection
from support.openssl import openssl_cms_verify
from support.pdf import minimal_pdf

if TYPE_CHECKING:
    from mynakit.card.jpki import KeyKind

pytestmark = pytest.mark.emulator

CONTENT = "電子申請 — mynakit signature test\n".encode()


@dataclass
class CardSigner:
    key: CardPrivateKey
    certificate: bytes
    ca_certificate: bytes


def _card_signer(connection: InProcessConnection, persona: Persona, kind: KeyKind) -> CardSigner:
    session = JpkiAp(ApduProtocol(connection, extended_length=connection.extended_length))
    if kind == "sign":
        session.verify_sign_password(persona.sign_password)
    else:
        session.verify_auth_pin(persona.auth_pin)
    return CardSigner(
        key=session.private_key(kind),
        certificate=session.read_certificate(kind),
        ca_certificate=session.read_certificate("sign_ca" if kind == "sign" else "auth_ca"),
    )


@pytest.fixture
def sign_key(virtual_card_connection: InProcessConnection, persona: Persona) -> CardSigner:
    return _card_signer(virtual_card_connection, persona, "sign")


@pytest.fixture
def trust(sandbox_issuer: SandboxIssuer) -> TrustStore:
    return TrustStore.jlis().with_sandbox(sandbox_issuer)


@pytest.mark.parametrize("detached", [False, True])
@pytest.mark.parametrize("kind", ["sign", "auth"])
def test_openssl_verifies_card_cms(
    virtual_card_connection: InProcessConnection,
    persona: Persona,
    sandbox_issuer: SandboxIssuer,
    trust: TrustStore,
    tmp_path: Path,
    detached: bool,
    kind: KeyKind,
) -> None:
    signer = _card_signer(virtual_card_connection, persona, kind)
    signature = sign_cms(
        CONTENT,
        signer.key,
        signer.certificate,
        detached=detached,
        ca_certificates=[signer.ca_certificate],
    )
    signature_file = tmp_path / "signature.p7s"
    signature_file.write_bytes(signature)
    content_file = tmp_path / "content.txt"
    content_file.write_bytes(CONTENT)
    root = sandbox_issuer.root_for(CertificateKind(kind)).public_bytes(Encoding.PEM)

    any_purpose = kind == "auth"
    result = openssl_cms_verify(
        signature_file,
        root,
        tmp_path,
        content_file if detached else None,
        any_purpose=any_purpose,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Verification successful" in result.stderr
    assert (tmp_path / "verified.out").read_bytes() == CONTENT

    verified = verify_cms(signature, CONTENT if detached else None, trust_store=trust)
    assert verified.signer.kind.value == kind
    assert verified.path.anchor.production is False

    # Tampered content: openssl and mynakit both refuse it.
    tampered = CONTENT.replace(b"test", b"TEST")
    if detached:
        content_file.write_bytes(tampered)
        refused = openssl_cms_verify(
            signature_file, root, tmp_path, content_file, any_purpose=any_purpose
        )
        with pytest.raises(CmsVerificationError):
            verify_cms(signature, tampered, trust_store=trust)
    else:
        forged = signature.replace(CONTENT, tampered)
        signature_file.write_bytes(forged)
        refused = openssl_cms_verify(signature_file, root, tmp_path, any_purpose=any_purpose)
        with pytest.raises(CmsVerificationError):
            verify_cms(forged, trust_store=trust)
    assert refused.returncode != 0


def test_openssl_reads_pem_output(
    sign_key: CardSigner, sandbox_issuer: SandboxIssuer, tmp_path: Path
) -> None:
    signature_file = tmp_path / "signature.pem"
    signature_file.write_bytes(to_pem(sign_cms(CONTENT, sign_key.key, sign_key.certificate)))
    result = openssl_cms_verify(
        signature_file,
        sandbox_issuer.sign_root.public_bytes(Encoding.PEM),
        tmp_path,
        pem=True,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")


# -- PDF ----------------------------------------------------------------------------------------


@pytest.fixture
def signed_pdf(sign_key: CardSigner) -> Iterator[bytes]:
    output = io.BytesIO()
    result = sign_pdf(
        minimal_pdf(),
        output,
        JpkiPdfSigner(
            sign_key.key, sign_key.certificate, ca_certificates=[sign_key.ca_certificate]
        ),
        reason="mynakit test",
    )
    assert result.field_name == "Signature1"
    yield output.getvalue()


def test_card_signed_pdf_validates(signed_pdf: bytes, trust: TrustStore) -> None:
    verification = verify_pdf(signed_pdf, trust)
    assert verification.ok
    (signature,) = verification.signatures
    assert signature.intact and signature.valid and signature.trusted
    assert signature.coverage == "entire_file"
    assert signature.signer is not None and signature.signer.kind.value == "sign"
    assert signature.jpki_problem is None
    assert b"/ETSI.CAdES.detached" in signed_pdf


def test_tampered_pdf_does_not_validate(signed_pdf: bytes, trust: TrustStore) -> None:
    position = signed_pdf.index(b"(mynakit)")
    tampered = signed_pdf[:position] + b"(MYNAKIT)" + signed_pdf[position + 9 :]
    verification = verify_pdf(tampered, trust)
    assert not verification.ok
    assert not verification.signatures[0].intact


def test_pdf_from_an_untrusted_issuer_does_not_validate(signed_pdf: bytes) -> None:
    verification = verify_pdf(signed_pdf, TrustStore.jlis())
    assert not verification.ok
    assert not verification.signatures[0].trusted
    assert verification.signatures[0].trust_problem == "NO_CERTIFICATE_CHAIN_FOUND"
    assert verification.signatures[0].jpki_problem is not None


def test_second_signature_and_unsigned_pdf(
    signed_pdf: bytes, sign_key: CardSigner, trust: TrustStore
) -> None:
    output = io.BytesIO()
    result = sign_pdf(signed_pdf, output, JpkiPdfSigner(sign_key.key, sign_key.certificate))
    assert result.field_name == "Signature2"
    verification = verify_pdf(output.getvalue(), trust)
    assert verification.ok
    assert [s.coverage for s in verification.signatures] == ["entire_revision", "entire_file"]

    assert not verify_pdf(minimal_pdf(), trust).ok  # no signature at all


# -- the auth key and PDFs: sign and verify agree (issue 7) ----------------------------------


@pytest.fixture
def auth_key(virtual_card_connection: InProcessConnection, persona: Persona) -> CardSigner:
    return _card_signer(virtual_card_connection, persona, "auth")


def test_pdf_signing_refuses_the_auth_key_and_says_why(auth_key: CardSigner) -> None:
    with pytest.raises(UsageError) as raised:
        JpkiPdfSigner(auth_key.key, auth_key.certificate)
    message = str(raised.value)
    assert "user-authentication key does not sign documents" in message
    assert "nonRepudiation" in message
    with pytest.raises(UsageError, match="does not sign documents"):
        require_document_signing_key("auth")
    require_document_signing_key("sign")


def test_an_auth_signed_pdf_from_elsewhere_is_not_ok_for_the_same_reason(
    auth_key: CardSigner, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PDF signed with an auth key by another tool: the signer refusal is bypassed here only
    # to make one; verification must say NOT OK with the reason the signer gives.
    monkeypatch.setattr("mynakit.jpki.pdf.require_document_signing_key", lambda kind: None)
    output = io.BytesIO()
    sign_pdf(minimal_pdf(), output, JpkiPdfSigner(auth_key.key, auth_key.certificate))
    monkeypatch.undo()
    verification = verify_pdf(output.getvalue(), trust)
    assert not verification.ok
    (signature,) = verification.signatures
    assert signature.intact and signature.valid  # the bytes are signed, by an auth key
    assert signature.jpki_problem == AUTH_KEY_NOT_FOR_DOCUMENTS


def _corrupt_contents(pdf: bytes, offset: int, replacement: bytes) -> bytes:
    start = pdf.index(b"/Contents <") + len(b"/Contents <") + offset
    return pdf[:start] + replacement + pdf[start + len(replacement) :]


@pytest.mark.parametrize(
    ("offset", "replacement"),
    [
        (0, b"0" * 40),  # the CMS header zeroed
        (0, b"F" * 40),  # an absurd length
        (10, b"ZZ"),  # not hex at all
    ],
)
def test_a_corrupted_signature_contents_is_not_ok_per_signature(
    signed_pdf: bytes, trust: TrustStore, offset: int, replacement: bytes
) -> None:
    verification = verify_pdf(_corrupt_contents(signed_pdf, offset, replacement), trust)
    assert not verification.ok
    (signature,) = verification.signatures
    assert signature.field_name == "Signature1"
    assert not signature.ok
    assert signature.to_dict()["ok"] is False


def test_a_corrupted_signature_value_is_not_valid(signed_pdf: bytes, trust: TrustStore) -> None:
    from asn1crypto import cms as asn1_cms

    start = signed_pdf.index(b"/Contents <") + len(b"/Contents <")
    end = signed_pdf.index(b">", start)
    content_info = asn1_cms.ContentInfo.load(bytes.fromhex(signed_pdf[start:end].decode()))
    value = content_info["content"]["signer_infos"][0]["signature"].native
    position = signed_pdf.lower().index(value.hex().encode(), start)
    flipped = bytes(byte ^ 0xFF for byte in value[:4]).hex().encode()
    corrupted = signed_pdf[:position] + flipped + signed_pdf[position + len(flipped) :]
    (signature,) = verify_pdf(corrupted, trust).signatures
    assert not signature.valid
    assert not signature.ok


def test_one_corrupted_signature_leaves_the_other_reported(
    signed_pdf: bytes, sign_key: CardSigner, trust: TrustStore
) -> None:
    output = io.BytesIO()
    sign_pdf(signed_pdf, output, JpkiPdfSigner(sign_key.key, sign_key.certificate))
    two = output.getvalue()
    second = two.rindex(b"/Contents <") + len(b"/Contents <")
    corrupted = two[:second] + b"0" * 40 + two[second + 40 :]
    verification = verify_pdf(corrupted, trust)
    by_name = {signature.field_name: signature for signature in verification.signatures}
    assert set(by_name) == {"Signature1", "Signature2"}
    assert by_name["Signature2"].malformed is not None
    assert not by_name["Signature2"].ok
    assert by_name["Signature1"].intact and by_name["Signature1"].valid


def test_a_damaged_compressed_stream_is_one_data_error(
    signed_pdf: bytes, trust: TrustStore
) -> None:
    # The cross-reference stream is Flate-compressed; damaged, zlib raised zlib.error, which
    # escaped as a traceback.
    start = signed_pdf.index(b"stream", signed_pdf.rindex(b"/XRef")) + len(b"stream\n")
    damaged = signed_pdf[: start + 4] + b"\xff\xff\xff\xff" + signed_pdf[start + 8 :]
    try:
        verification = verify_pdf(damaged, trust)
    except DataError as error:
        assert "\n" not in str(error)
    else:
        assert not verification.ok


def test_seeded_pdf_mutants_raise_only_documented_errors(
    signed_pdf: bytes, trust: TrustStore
) -> None:
    import logging
    import random

    from mynakit.errors import MynakitError
    from support.certificate_fuzz import RAW_MUTATIONS

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    rng = random.Random(5)
    outcomes: dict[str, int] = {}
    for _ in range(40):  # pyHanko reads each one whole: tens of milliseconds apiece
        mutant = signed_pdf
        for _ in range(rng.randint(1, 4)):
            mutant = rng.choice(RAW_MUTATIONS)(rng, mutant)
        try:
            outcome = "ok" if verify_pdf(mutant, trust).ok else "not ok"
        except MynakitError as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert set(outcomes) <= {"ok", "not ok", "DataError", "UsageError"}, outcomes
