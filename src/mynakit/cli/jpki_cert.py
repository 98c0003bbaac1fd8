"""``mynakit jpki cert`` and ``mynakit jpki pkey``: certificates and raw signatures of the JPKI
AP, offering at least what jpki/myna's commands do (docs/card.md §10.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import (
    HASH_ALGORITHMS,
    STDOUT,
    VerificationFailedError,
    certificate_facts,
    check_output,
    emit,
    force_option,
    note,
    open_certificate,
    pem_armor,
    pin_stdin_option,
    read_input,
    verify_from_user,
    write_output,
)
from mynakit.errors import UsageError
from mynakit.jpki.inputs import InputKind

if TYPE_CHECKING:
    from mynakit.card.jpki import CertificateName, KeyKind
    from mynakit.jpki.certificates import JpkiCertificate

CERTIFICATE_KINDS = ("auth", "sign", "auth_ca", "sign_ca")
# jpki/myna accepts these spellings for the signature certificate (docs/card.md §10.1, §11).
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


def certificate_summary(certificate: JpkiCertificate, *, show_personal: bool) -> dict[str, object]:
    """``certificate_facts`` plus subject, issuer and whether it is a sandbox certificate; the
    basic-4 information of a signature certificate only with ``show_personal``."""
    summary: dict[str, object] = {
        **certificate_facts(certificate),
        "subject": certificate.subject_name.rfc4514_string(),
        "issuer": certificate.issuer_name.rfc4514_string(),
        "sandbox": certificate.is_sandbox,
    }
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
    """Read a JPKI certificate from the card.

    DER and PEM are written as the card holds them, without parsing: only the text summary
    needs an X.509 parser (and its import time)."""
    if output is None and output_format == "der":
        output = STDOUT
    check_output(ctx, output)
    _, der = open_certificate(ctx, kind, pin_stdin=pin_stdin, force=force)
    # The signature certificate holds the basic-4 information: its file is the holder's only.
    private = kind == "sign"
    if output_format == "text":
        from mynakit.jpki.certificates import parse_certificate

        summary = certificate_summary(parse_certificate(der), show_personal=show_personal)
        if output is not None:
            text = "\n".join(f"{key}: {value}" for key, value in summary.items()) + "\n"
            write_output(ctx, output, text.encode("utf-8"), private=private)
        emit(ctx, summary)
        return
    encoded = der if output_format == "der" else pem_armor("CERTIFICATE", der)
    if output is None:
        data: dict[str, object] = {"kind": kind, "format": "pem", "pem": encoded.decode("ascii")}
        emit(ctx, data, encoded.decode("ascii").rstrip("\n"))
        return
    write_output(ctx, output, encoded, private=private)
    if output != STDOUT:
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
    type=click.Choice(HASH_ALGORITHMS),
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
@click.argument("input_file", metavar="INPUT")
@click.option("-o", "--output", help="Write the raw signature to FILE (- for stdout).")
@digest_option
@raw_option
@pin_stdin_option
@force_option
@click.pass_context
def pkey_sign(
    ctx: click.Context,
    key: KeyKind,
    input_file: str,
    output: str | None,
    digest: str,
    raw: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Sign INPUT (- for standard input) with the card: the DigestInfo of its hash, or with
    --raw its bytes as given."""
    import hashlib

    from mynakit.card.jpki import PIN_OF_KEY, JpkiAp, digest_info

    if pin_stdin and input_file == STDOUT:
        raise UsageError("INPUT and --pin-stdin cannot both use standard input")
    content = read_input(input_file, InputKind.DOCUMENT)
    block = content if raw else digest_info(digest, hashlib.new(digest, content).digest())
    check_output(ctx, output)
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
        write_output(ctx, output, signature)
        if output == STDOUT:
            return
        result["written"] = output
        note(f"signature written to {output}")
    emit(ctx, result)


@pkey.command("verify")
@key_type_option
@click.argument("input_file", metavar="INPUT")
@click.argument("signature_file", metavar="SIGNATURE")
@raw_option
@pin_stdin_option
@force_option
@click.pass_context
def pkey_verify(
    ctx: click.Context,
    key: CertificateName,
    input_file: str,
    signature_file: str,
    raw: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Check SIGNATURE of INPUT with the public key of the card's certificate (no key use):
    the RSA public operation recovers the DigestInfo, which must match INPUT's hash (or INPUT
    itself with --raw)."""
    from mynakit.jpki.raw_signature import verify_raw_signature

    content = read_input(input_file, InputKind.DOCUMENT)
    signature = read_input(signature_file, InputKind.CERTIFICATE)
    _, der = open_certificate(ctx, key, pin_stdin=pin_stdin, force=force)
    check = verify_raw_signature(der, content, signature, raw=raw)
    valid = check.valid
    result = {"key": key, **check.to_dict()}
    if not valid:
        raise VerificationFailedError(
            f"the signature does NOT verify with the card's {key} certificate", result=result
        )
    emit(ctx, result, "signature OK")
