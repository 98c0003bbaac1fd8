"""``mynakit jpki cms sign|verify``: CMS SignedData with the card, as jpki/myna's ``jpki cms``
offers (docs/card.md §10.1), plus signing with the auth key (docs/readers.md §1.7) and
revocation checks. Trust for ``verify``: see :mod:`mynakit.cli.util`."""

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
    open_card_signer,
    pin_stdin_option,
    read_input,
    revocation_checker,
    revocation_options,
    sandbox_option,
    sandbox_responder,
    trust_store,
    with_sandbox_hint,
    write_output,
)
from mynakit.errors import UsageError, VerificationError
from mynakit.jpki.inputs import InputKind

if TYPE_CHECKING:
    from mynakit.card.jpki import KeyKind


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
@click.argument("input_file", metavar="INPUT")
@click.option("-o", "--output", required=True, help="Write the signature to FILE (- for stdout).")
@click.option(
    "-d",
    "--digest",
    type=click.Choice(HASH_ALGORITHMS),
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
    input_file: str,
    output: str,
    digest: str,
    output_format: str,
    detached: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Sign INPUT (- for standard input) with the card into a CMS SignedData (signed
    attributes: contentType, signingTime, messageDigest, signingCertificateV2)."""
    from mynakit.jpki.certificates import parse_certificate
    from mynakit.jpki.cms import sign_cms, to_pem

    if pin_stdin and input_file == STDOUT:
        raise UsageError("INPUT and --pin-stdin cannot both use standard input")
    key_kind: KeyKind = "auth" if key == "auth" else "sign"
    content = read_input(input_file, InputKind.DOCUMENT)
    cli_context = get_context(ctx)
    check_output(ctx, output)
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
    write_output(ctx, output, encoded)
    if output == STDOUT:
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

    signature = read_input(signature_file, InputKind.CMS)
    is_pem = signature.lstrip().startswith(b"-----BEGIN")
    if input_format == "der" and is_pem:
        raise UsageError(f"{signature_file} is PEM, not DER (drop -f or use -f pem)")
    if input_format == "pem" and not is_pem:
        raise UsageError(f"{signature_file} is not PEM (drop -f or use -f der)")
    if detached and content is None:
        raise UsageError("--detached needs the signed content: -c FILE")
    signed_content = read_input(content, InputKind.DOCUMENT) if content is not None else None
    store = trust_store(ctx, sandbox=sandbox)
    with sandbox_responder(ctx, sandbox and revocation is not None):
        try:
            result = verify_cms(
                signature,
                signed_content,
                trust_store=store,
                revocation=revocation_checker(revocation),
            )
        except CertificateValidationError as error:
            message = with_sandbox_hint(error, sandbox=sandbox)
            raise VerificationFailedError(
                f"NOT valid ({error.reason.value}): {message}",
                result={"valid": False, "reason": error.reason.value, "message": message},
                exit_code=error.exit_code,
            ) from error
        except VerificationError as error:  # the signature or the digest (CmsVerificationError)
            raise VerificationFailedError(
                f"NOT valid: {error}",
                result={"valid": False, "reason": "signature", "message": str(error)},
                exit_code=error.exit_code,
            ) from error
    if detached and not result.detached:
        note("note: the signature is attached (it carries the content); checked against -c")
    if output is not None:
        write_output(ctx, output, result.content)
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
