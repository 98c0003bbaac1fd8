"""``mynakit jpki pdf sign|verify``: PAdES signatures with the card through pyHanko, as
jpki/myna's ``jpki pdf`` offers (docs/card.md §10.1). Trust for ``verify``: see
:mod:`mynakit.cli.util`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import (
    VerificationFailedError,
    certificate_facts,
    check_output,
    emit,
    force_option,
    open_card_signer,
    pin_stdin_option,
    read_input,
    sandbox_option,
    trust_store,
    write_output,
)
from mynakit.errors import UsageError
from mynakit.jpki.inputs import InputKind

if TYPE_CHECKING:
    from mynakit.card.jpki import KeyKind


@click.group()
def pdf() -> None:
    """PDF signatures (PAdES B-B): sign with the card, verify."""


@pdf.command("sign")
@click.argument("input_file", metavar="INPUT")
@click.option("-o", "--output", required=True, help="Write the signed PDF to FILE.")
@click.option(
    "-t",
    "--type",
    "key",
    type=click.Choice(["sign", "auth"]),
    default="sign",
    show_default=True,
    help="Which key: sign (signature password). auth is refused: the user-authentication "
    "certificate is not for document signatures.",
)
@click.option(
    "-d",
    "--digest",
    type=click.Choice(["sha256", "sha384", "sha512"]),
    default="sha256",
    show_default=True,
)
@click.option(
    "--field", "field_name", help="Signature field name (default: first free SignatureN)."
)
@click.option("--reason", help="Reason shown by PDF readers.")
@click.option("--location", help="Location shown by PDF readers.")
@pin_stdin_option
@force_option
@click.pass_context
def pdf_sign(
    ctx: click.Context,
    input_file: str,
    output: str,
    key: str,
    digest: str,
    field_name: str | None,
    reason: str | None,
    location: str | None,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Sign the PDF INPUT with the card and write the signed PDF to OUTPUT."""
    import io

    from mynakit.jpki.certificates import parse_certificate
    from mynakit.jpki.pdf import JpkiPdfSigner, require_document_signing_key, sign_pdf

    key_kind: KeyKind = "auth" if key == "auth" else "sign"
    require_document_signing_key(key_kind)  # before any PIN: says why auth cannot sign PDFs
    # Read before the card: a missing or oversized file costs no PIN entry.
    source = read_input(input_file, InputKind.PDF)
    cli_context = get_context(ctx)
    check_output(ctx, output)
    session, certificate, ca_certificates = open_card_signer(
        ctx, key_kind, pin_stdin=pin_stdin, force=force
    )
    signer = JpkiPdfSigner(
        session.private_key(key_kind), certificate, ca_certificates=ca_certificates
    )
    signed = io.BytesIO()
    result = sign_pdf(
        source,
        signed,
        signer,
        field_name=field_name,
        reason=reason,
        location=location,
        digest_algorithm=digest,
    )
    # The signature embeds the signature certificate with the basic-4 information
    # (docs/card.md §9.2): personal data, so the signed PDF is created 0600.
    write_output(ctx, output, signed.getvalue(), private=key == "sign")
    data = {
        "written": output,
        **result.to_dict(),
        "key": key_kind,
        "signer": certificate_facts(parse_certificate(certificate)),
        "apdus": len(cli_context.connection().counter),
    }
    emit(ctx, data, f"signed PDF written to {output} (field {result.field_name})")


@pdf.command("verify")
@click.argument("input_file", metavar="INPUT")
@sandbox_option
@click.option(
    "--production",
    is_flag=True,
    help="Accept only production (J-LIS) roots, even with --sandbox.",
)
@click.pass_context
def pdf_verify(ctx: click.Context, input_file: str, sandbox: bool, production: bool) -> None:
    """Verify every signature of a PDF: integrity, the CMS signature, the chain to a trusted
    root (no network fetching) and the JPKI certificate profile."""
    from mynakit.jpki.pdf import verify_pdf

    if sandbox and production:
        raise UsageError("--sandbox and --production contradict each other")
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # pyHanko logs a warning with a traceback for every path it cannot build; the result
        # below already says so. Shown with -v.
        logging.getLogger("pyhanko").setLevel(logging.ERROR)
    verification = verify_pdf(
        read_input(input_file, InputKind.PDF),
        trust_store(ctx, sandbox=sandbox),
        require_production=production,
    )
    data = verification.to_dict()
    for entry, signature in zip(data["signatures"], verification.signatures, strict=True):
        entry["signer"] = certificate_facts(signature.signer) if signature.signer else None
    lines = [f"{len(verification.signatures)} signature(s)"]
    failed = []
    for signature in verification.signatures:
        verdict = "OK" if signature.ok else "NOT OK"
        line = (
            f"{signature.field_name}: {verdict} (intact: {_yes(signature.intact)}, "
            f"valid: {_yes(signature.valid)}, trusted: {_yes(signature.trusted)}, "
            f"coverage: {signature.coverage})"
        )
        lines.append(f"  {line}")
        if signature.malformed:
            lines.append(f"    {signature.malformed}")
        if signature.jpki_problem:
            lines.append(f"    {signature.jpki_problem}")
        if not signature.ok:
            reason = signature.malformed or signature.jpki_problem
            failed.append(line + (f": {reason}" if reason else ""))
    if not verification.signatures:
        raise VerificationFailedError("the PDF has no signature", result=data)
    if failed:
        raise VerificationFailedError("; ".join(failed), result=data)
    if not verification.ok:  # every signature good, but a later change is not covered
        raise VerificationFailedError(
            "the last signature does not cover the whole file (changed after signing)",
            result=data,
        )
    lines.append("Verification successful")
    emit(ctx, data, "\n".join(lines))


def _yes(value: bool) -> str:
    return "yes" if value else "no"
