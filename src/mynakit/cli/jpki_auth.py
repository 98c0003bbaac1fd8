"""``mynakit jpki auth`` and ``mynakit jpki verify-cert``: the relying party's side of JPKI.

Trust for ``verify-cert`` is the relying side's one rule (``mynakit.cli.util``): the J-LIS
roots, the sandbox's (issuer and transcript CAs) only with ``--sandbox``. ``jpki auth`` is the
exception: it runs against the sandbox by definition.

Verifying JPKI signatures as a business needs the minister's approval (公的個人認証法 §17,
docs/card.md §9.3); these commands are for development and self-checks.
"""

from __future__ import annotations

import datetime as dt

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import (
    VerificationFailedError,
    certificate_facts,
    emit,
    force_option,
    open_certificate,
    pin_stdin_option,
    read_input,
    read_secret,
    revocation_checker,
    revocation_options,
    sandbox_option,
    sandbox_responder,
    trust_store,
    with_sandbox_hint,
    with_sandbox_roots,
)
from mynakit.errors import UsageError
from mynakit.jpki.inputs import InputKind

# -- jpki auth ----------------------------------------------------------------------------------


@click.command()
@click.option(
    "--revocation",
    type=click.Choice(["ocsp", "crl", "none"]),
    default="ocsp",
    show_default=True,
    help="How the relying party checks that the certificate is not revoked.",
)
@pin_stdin_option
@force_option
@click.pass_context
def auth(ctx: click.Context, revocation: str, pin_stdin: bool, force: bool) -> None:
    """Challenge-response user authentication against the sandbox issuer.

    The relying party issues a nonce; the card signs it with the authentication key (auth
    PIN); the relying party checks the signature, the chain, validity and revocation.
    """
    from mynakit.card.jpki import JpkiAp
    from mynakit.jpki.authentication import Authenticator, card_respond
    from mynakit.jpki.trust import TrustStore

    authenticator = Authenticator(
        with_sandbox_roots(ctx, TrustStore.jlis()),
        revocation=revocation,  # type: ignore[arg-type]  # click.Choice guarantees the literal
    )
    cli_context = get_context(ctx)
    connection = cli_context.connection()
    challenge = authenticator.begin()
    session = JpkiAp.open(cli_context.protocol())
    pin = read_secret(
        "auth_pin", "auth PIN (利用者証明用パスワード, 4 digits)", from_stdin=pin_stdin
    )
    response = card_respond(session, challenge, pin, force=force)
    del pin
    apdus = len(connection.counter)
    with sandbox_responder(ctx, revocation != "none"):
        identity = authenticator.complete(
            response.challenge_id,
            response.signature,
            response.certificate_der,
            hash_algorithm=response.hash_algorithm,
        )
    data = {"authenticated": True, **identity.to_dict(), "apdus": apdus}
    lines = [
        "Authenticated (利用者証明).",
        f"  certificate serial: {identity.serial} ({identity.serial:X})",
        f"  random string:      {identity.random_string}",
        f"  terminal code:      {identity.terminal_code}",
        f"  valid until:        {identity.not_after.isoformat()}",
        f"  root:               {identity.issuer_root}"
        + (" (production)" if identity.production else " (sandbox)"),
        f"  revocation:         {identity.revocation}",
        f"  APDUs:              {apdus}",
    ]
    emit(ctx, data, "\n".join(lines))


# -- jpki verify-cert ---------------------------------------------------------------------------


@click.command("verify-cert")
@click.argument(
    "certificate_file", metavar="[FILE]", required=False, type=click.Path(dir_okay=False)
)
@click.option(
    "--from-card",
    type=click.Choice(["auth", "sign"]),
    help="Read the certificate from the card instead (sign needs the signature password).",
)
@revocation_options
@sandbox_option
@click.option(
    "--at",
    "at_time",
    help="Validate at this ISO 8601 time (default now), e.g. when a signature was made.",
)
@pin_stdin_option
@force_option
@click.pass_context
def verify_cert(
    ctx: click.Context,
    certificate_file: str | None,
    from_card: str | None,
    revocation: str | None,
    sandbox: bool,
    at_time: str | None,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Validate a certificate (DER or PEM FILE, or --from-card): the chain to a trusted root,
    validity, key usage and policy, and revocation with --ocsp or --crl."""
    from mynakit.jpki.certificates import parse_certificate
    from mynakit.jpki.validation import CertificateValidationError, validate_path

    if (certificate_file is None) == (from_card is None):
        raise UsageError("give a certificate FILE or --from-card auth|sign (one of them)")
    if from_card is not None:
        _, der = open_certificate(ctx, from_card, pin_stdin=pin_stdin, force=force)
    else:
        assert certificate_file is not None
        der = _read_certificate_file(certificate_file)
    certificate = parse_certificate(der)
    if certificate.kind.is_ca:
        raise UsageError("this is a root (CA) certificate; verify-cert checks end-entity ones")
    when = _parse_time(at_time) if at_time else None
    store = trust_store(ctx, sandbox=sandbox)
    facts = certificate_facts(certificate)
    with sandbox_responder(ctx, sandbox and revocation is not None and certificate.is_sandbox):
        try:
            path = validate_path(
                certificate,
                store,
                at=when,
                purpose=certificate.kind,
                revocation=revocation_checker(revocation),
            )
        except CertificateValidationError as error:
            message = with_sandbox_hint(error, sandbox=sandbox)
            raise VerificationFailedError(
                f"NOT valid ({error.reason.value}): {message}",
                result={"valid": False, "reason": error.reason.value, "message": message, **facts},
                exit_code=error.exit_code,
            ) from error
    anchor = path.anchor.certificate
    status = path.revocation
    data = {
        "valid": True,
        **facts,
        "root": anchor.subject_name.rfc4514_string(),
        "root_serial": f"{anchor.serial_number:X}",
        "production": path.is_production,
        "validated_at": path.validated_at.isoformat(),
        "revocation": f"{status.state.value} ({status.source})" if status else "not checked",
    }
    lines = [
        f"Valid {certificate.kind.value} certificate {certificate.serial_number:X}",
        f"  root:        {data['root']}"
        + (" (production)" if path.is_production else " (sandbox)"),
        f"  valid until: {certificate.not_after.isoformat()}",
        f"  revocation:  {data['revocation']}",
    ]
    emit(ctx, data, "\n".join(lines))


def _read_certificate_file(path: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from mynakit.errors import DataError

    data = read_input(path, InputKind.CERTIFICATE)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except ValueError as error:
            raise DataError(f"{path} holds no readable PEM certificate: {error}") from error
    return data


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time") from error
    if moment.tzinfo is None:
        raise UsageError("--at needs a time zone, e.g. 2025-04-01T09:00:00+09:00")
    return moment
