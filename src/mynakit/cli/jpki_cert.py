"""``mynakit jpki cert`` and ``mynakit jpki pkey``: certificates and raw signatures of the JPKI
AP, offering at least what jpki/myna's commands do (protocol reference §10.1)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import BinaryIO

import click
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.jpki import (
    DIGEST_INFO_PREFIXES,
    PIN_OF_KEY,
    CertificateName,
    JpkiAp,
    KeyKind,
    digest_info,
)
from mynakit.cli.context import get_context
from mynakit.cli.output import emit, note
from mynakit.cli.secrets import force_option, pin_stdin_option, verify_from_user
from mynakit.errors import UsageError, VerificationError
from mynakit.jpki.certificates import JpkiCertificate, parse_certificate

CERTIFICATE_KINDS = ("auth", "sign", "auth_ca", "sign_ca")
# jpki/myna accepts these spellings for the signature certificate (§10.1, §11.9).
_ALIASES = {
    "signature": "sign",
    "digital_signature": "sign",
    "auth-ca": "auth_ca",
    "sign-ca": "sign_ca",
}


def _certificate_kind(value: str) -> str:
    kind = _ALIASES.get(value, value)
    if kind not in CERTIFICATE_KINDS:
        raise click.BadParameter(f"choose from {', '.join(CERTIFICATE_KINDS)}")
    return kind


def open_with_certificate(
    ctx: click.Context, kind: str, *, pin_stdin: bool, force: bool
) -> tuple[JpkiAp, bytes]:
    """Open the JPKI AP, verify what the certificate file needs (sign password; a smartphone
    token's auth PIN), and read it."""
    session = JpkiAp.open(get_context(ctx).protocol())
    file = session.application.file(f"{kind}_certificate")
    if file.read_keys:
        key = session.application.keys[file.read_keys[0]]
        verify_from_user(session, key.name, from_stdin=pin_stdin, force=force)
    return session, session.read_certificate(kind)  # type: ignore[arg-type]


def certificate_summary(certificate: JpkiCertificate, *, show_personal: bool) -> dict[str, object]:
    summary: dict[str, object] = {
        "kind": certificate.kind.value,
        "serial": certificate.serial_number,
        "serial_hex": f"{certificate.serial_number:X}",
        "subject": certificate.subject_name.rfc4514_string(),
        "issuer": certificate.issuer_name.rfc4514_string(),
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "sandbox": certificate.is_sandbox,
    }
    if certificate.kind.value == "auth":
        summary["random_string"] = certificate.random_string
        summary["terminal_code"] = certificate.terminal_code
    if certificate.kind.value == "sign" and show_personal:
        info = certificate.basic_info
        summary["basic_info"] = {
            "name": info.name,
            "address": info.address,
            "birth_date": info.birth_date.isoformat(),
            "birth_date_era": str(certificate.birth_era_date),
            "sex": info.sex.value,
        }
    return summary


def _write_binary(output: str, data: bytes) -> None:
    if output == "-":
        stream = sys.stdout.buffer
        if sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; use -o FILE")
        stream.write(data)
        stream.flush()
    else:
        Path(output).write_bytes(data)


@click.command()
@click.option(
    "-t",
    "--type",
    "kind",
    default="auth",
    show_default=True,
    metavar="[auth|sign|auth_ca|sign_ca]",
    callback=lambda _ctx, _param, value: _certificate_kind(value),
    help="Which certificate (sign needs the signature password).",
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "pem", "der"]),
    default="text",
    show_default=True,
)
@click.option("-o", "--output", help="Write the certificate (pem/der) to FILE, or - for stdout.")
@click.option(
    "--show-personal",
    is_flag=True,
    help="Show the basic-4 information of the signature certificate.",
)
@pin_stdin_option
@force_option
@click.pass_context
def cert(
    ctx: click.Context,
    kind: str,
    output_format: str,
    output: str | None,
    show_personal: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Read a JPKI certificate from the card."""
    _, der = open_with_certificate(ctx, kind, pin_stdin=pin_stdin, force=force)
    certificate = parse_certificate(der)
    if output_format == "text":
        summary = certificate_summary(certificate, show_personal=show_personal)
        if output is not None:
            Path(output).write_text(
                "\n".join(f"{key}: {value}" for key, value in summary.items()) + "\n",
                encoding="utf-8",
            )
        emit(ctx, summary)
        return
    encoded = der if output_format == "der" else certificate.certificate.public_bytes(Encoding.PEM)
    if output is None and output_format == "der":
        output = "-"
    if output is None:
        data: dict[str, object] = {"kind": kind, "format": "pem", "pem": encoded.decode("ascii")}
        emit(ctx, data, encoded.decode("ascii").rstrip("\n"))
        return
    _write_binary(output, encoded)
    if output != "-":
        emit(ctx, {"kind": kind, "format": output_format, "written": output, "bytes": len(encoded)})


@click.group()
def pkey() -> None:
    """Raw signatures with the auth or sign key (80 2A), and their verification."""


key_type_option = click.option(
    "-t",
    "--type",
    "key",
    type=click.Choice(["auth", "sign"]),
    default="sign",
    show_default=True,
    help="Which key: auth (4-digit PIN) or sign (signature password).",
)
digest_option = click.option(
    "-d",
    "--digest",
    type=click.Choice(sorted(DIGEST_INFO_PREFIXES)),
    default="sha256",
    show_default=True,
    help="Hash of the input that the DigestInfo carries.",
)
raw_option = click.option(
    "--raw",
    is_flag=True,
    help="The input already is a DER DigestInfo: sign its bytes as given (as jpki/myna does).",
)


@pkey.command("sign")
@key_type_option
@click.argument("input_file", metavar="INPUT", type=click.File("rb"))
@click.option("-o", "--output", help="Write the raw signature to FILE (- for stdout).")
@digest_option
@raw_option
@pin_stdin_option
@force_option
@click.pass_context
def pkey_sign(
    ctx: click.Context,
    key: KeyKind,
    input_file: BinaryIO,
    output: str | None,
    digest: str,
    raw: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Sign INPUT with the card: the DigestInfo of its hash, or with --raw its bytes as given."""
    if pin_stdin and input_file is sys.stdin.buffer:
        raise UsageError("INPUT and --pin-stdin cannot both use standard input")
    content = input_file.read()
    block = content if raw else digest_info(digest, hashlib.new(digest, content).digest())
    session = JpkiAp.open(get_context(ctx).protocol())
    verify_from_user(session, PIN_OF_KEY[key], from_stdin=pin_stdin, force=force)
    signature = session.sign(key, block)
    result: dict[str, object] = {
        "key": key,
        "digest": None if raw else digest,
        "signature": signature.hex().upper(),
        "bytes": len(signature),
    }
    if output is not None:
        _write_binary(output, signature)
        if output == "-":
            return
        result["written"] = output
        note(f"signature written to {output}")
    emit(ctx, result)


@pkey.command("verify")
@key_type_option
@click.argument("input_file", metavar="INPUT", type=click.File("rb"))
@click.argument("signature_file", metavar="SIGNATURE", type=click.File("rb"))
@raw_option
@pin_stdin_option
@force_option
@click.pass_context
def pkey_verify(
    ctx: click.Context,
    key: CertificateName,
    input_file: BinaryIO,
    signature_file: BinaryIO,
    raw: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Check SIGNATURE of INPUT with the public key of the card's certificate (no key use):
    the RSA public operation recovers the DigestInfo, which must match INPUT's hash (or INPUT
    itself with --raw)."""
    content = input_file.read()
    signature = signature_file.read()
    _, der = open_with_certificate(ctx, key, pin_stdin=pin_stdin, force=force)
    public_key = parse_certificate(der).certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise VerificationError("the card's certificate does not hold an RSA key")
    try:
        recovered = public_key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        recovered = b""
    algorithm = next(
        (name for name, prefix in DIGEST_INFO_PREFIXES.items() if recovered.startswith(prefix)),
        None,
    )
    if raw:
        valid = recovered == content
    elif algorithm is None:
        valid = False
    else:
        valid = recovered == digest_info(algorithm, hashlib.new(algorithm, content).digest())
    emit(
        ctx,
        {"key": key, "valid": valid, "digest": None if raw else algorithm},
        "signature OK" if valid else "signature does NOT verify",
    )
    if not valid:
        ctx.exit(VerificationError.exit_code)
