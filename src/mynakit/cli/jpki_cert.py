"""``mynakit jpki cert`` and ``mynakit jpki pkey``: certificates and raw signatures of the JPKI
AP, offering at least what jpki/myna's commands do (docs/card.md §10.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mynakit.cli.util import (
    HASH_ALGORITHMS,
    VerificationFailedError,
    emit,
    force_option,
    open_certificate,
    pin_stdin_option,
    read_certificate_command,
    read_input,
    sign_command,
)
from mynakit.jpki.inputs import InputKind

if TYPE_CHECKING:
    from mynakit.card.jpki import CertificateName, KeyKind


@click.command()
@click.option(
    "-t",
    "--type",
    "kind",
    default="auth",
    show_default=True,
    metavar="[auth|sign|auth_ca|sign_ca]",
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
    read_certificate_command(
        ctx,
        kind,
        output_format,
        output,
        show_personal=show_personal,
        pin_stdin=pin_stdin,
        force=force,
    )


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
    sign_command(ctx, key, input_file, output, digest, raw=raw, pin_stdin=pin_stdin, force=force)


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
