"""``mynakit jpki cms sign|verify``: CMS SignedData with the card, as jpki/myna's ``jpki cms``
offers (protocol reference §10.1), plus signing with the auth key (user-needs §1.7) and
revocation checks. Trust for ``verify``: see :mod:`mynakit.cli.jpki_auth`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from mynakit.cli.context import get_context
from mynakit.cli.jpki_auth import (
    certificate_facts,
    revocation_checker,
    revocation_options,
    sandbox_option,
    sandbox_responder,
    trust_store,
    with_sandbox_hint,
)
from mynakit.cli.output import emit, note
from mynakit.cli.secrets import force_option, pin_stdin_option
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.card.jpki import JpkiAp, KeyKind


def write_output(output: str, data: bytes) -> None:
    """Write ``data`` to a file, or to stdout for ``-`` (never to a terminal)."""
    if output == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; use -o FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(output).write_bytes(data)
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror or error}") from error


def read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error


def open_card_signer(
    ctx: click.Context, key: KeyKind, *, pin_stdin: bool, force: bool
) -> tuple[JpkiAp, bytes, list[bytes]]:
    """Open the JPKI AP, verify the key's PIN (guarded: counter first, never the last try
    without ``force``), read the signer's certificate and, when the card has it, the CA's."""
    from mynakit.card.jpki import PIN_OF_KEY, JpkiAp
    from mynakit.cli.secrets import verify_from_user
    from mynakit.errors import CardError

    session = JpkiAp.open(get_context(ctx).protocol())
    verify_from_user(session, PIN_OF_KEY[key], from_stdin=pin_stdin, force=force)
    certificate = session.read_certificate(key)
    ca_certificates: list[bytes] = []
    try:
        ca_certificates.append(session.read_certificate("auth_ca" if key == "auth" else "sign_ca"))
    except CardError:
        note("the card holds no CA certificate; the signature carries only the signer's")
    return session, certificate, ca_certificates


@click.group()
def cms() -> None:
    """CMS SignedData (PKCS#7): sign with the card, verify."""


@cms.command("sign")
@click.option(
    "-t",
    "--type",
    "key",
    type=click.Choice(["sign", "auth"]),
    default="sign",
    show_default=True,
    help="Which key: sign (signature password) or auth (4-digit PIN, for login-style use).",
)
@click.argument("input_file", metavar="INPUT", type=click.File("rb"))
@click.option("-o", "--output", required=True, help="Write the signature to FILE (- for stdout).")
@click.option(
    "-d",
    "--digest",
    type=click.Choice(["sha1", "sha256", "sha384", "sha512"]),
    default="sha256",
    show_default=True,
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["der", "pem"]),
    default="der",
    show_default=True,
)
@click.option("--detached", is_flag=True, help="Leave the content out of the signature.")
@pin_stdin_option
@force_option
@click.pass_context
def cms_sign(
    ctx: click.Context,
    key: str,
    input_file: BinaryIO,
    output: str,
    digest: str,
    output_format: str,
    detached: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Sign INPUT with the card into a CMS SignedData (signed attributes: contentType,
    signingTime, messageDigest, signingCertificateV2)."""
    from mynakit.jpki.certificates import parse_certificate
    from mynakit.jpki.cms import sign_cms, to_pem

    if pin_stdin and input_file is sys.stdin.buffer:
        raise UsageError("INPUT and --pin-stdin cannot both use standard input")
    key_kind: KeyKind = "auth" if key == "auth" else "sign"
    content = input_file.read()
    cli_context = get_context(ctx)
    session, certificate, ca_certificates = open_card_signer(
        ctx, key_kind, pin_stdin=pin_stdin, force=force
    )
    signature = sign_cms(
        content,
        session.private_key(key_kind),
        certificate,
        digest_algorithm=digest,
        detached=detached,
        ca_certificates=ca_certificates,
    )
    encoded = to_pem(signature) if output_format == "pem" else signature
    write_output(output, encoded)
    if output == "-":
        return
    data = {
        "written": output,
        "bytes": len(encoded),
        "format": output_format,
        "key": key_kind,
        "digest": digest,
        "detached": detached,
        "signer": certificate_facts(parse_certificate(certificate)),
        "apdus": len(cli_context.connection().counter),
    }
    emit(ctx, data, f"{'detached' if detached else 'attached'} CMS signature written to {output}")


@cms.command("verify")
@click.argument("signature_file", metavar="SIGNATURE", type=click.Path(dir_okay=False))
@click.option("-c", "--content", help="The signed content (required for --detached).")
@click.option(
    "-f",
    "--format",
    "input_format",
    type=click.Choice(["auto", "der", "pem"]),
    default="auto",
    show_default=True,
)
@click.option("--detached", is_flag=True, help="The signature is detached: -c gives the content.")
@click.option("-o", "--output", help="Write the signed content of an attached signature here.")
@revocation_options
@sandbox_option
@click.pass_context
def cms_verify(
    ctx: click.Context,
    signature_file: str,
    content: str | None,
    input_format: str,
    detached: bool,
    output: str | None,
    revocation: str | None,
    sandbox: bool,
) -> None:
    """Verify a CMS signature: the signature, the content's digest, and the signer's
    certificate at the signing time against the trusted roots."""
    from mynakit.jpki.cms import verify_cms
    from mynakit.jpki.validation import CertificateValidationError

    signature = read_input(signature_file)
    is_pem = signature.lstrip().startswith(b"-----BEGIN")
    if input_format == "der" and is_pem:
        raise UsageError(f"{signature_file} is PEM, not DER (drop -f or use -f pem)")
    if input_format == "pem" and not is_pem:
        raise UsageError(f"{signature_file} is not PEM (drop -f or use -f der)")
    if detached and content is None:
        raise UsageError("--detached needs the signed content: -c FILE")
    signed_content = read_input(content) if content is not None else None
    store = trust_store(ctx, sandbox=sandbox)
    with sandbox_responder(ctx, sandbox and revocation is not None):
        try:
            result = verify_cms(
                signature,
                signed_content,
                trust_store=store,
                revocation=revocation_checker(revocation) if revocation else None,
            )
        except CertificateValidationError as error:
            raise CertificateValidationError(
                error.reason, with_sandbox_hint(error, sandbox=sandbox)
            ) from error
    if detached and not result.detached:
        note("note: the signature is attached (it carries the content); checked against -c")
    if output is not None:
        write_output(output, result.content)
    data = result.to_dict()
    data["signer"] = certificate_facts(result.signer)
    trust = data["trust"]
    lines = [
        "Verification successful",
        f"  signer:      {result.signer.kind.value} certificate {result.signer.serial_number:X}",
        f"  signed at:   {data['signing_time'] or '-'} (as the signer states)",
        f"  root:        {trust['root']}"
        + (" (production)" if trust["production"] else " (sandbox)"),
        f"  revocation:  {trust['revocation']}",
    ]
    emit(ctx, data, "\n".join(lines))
