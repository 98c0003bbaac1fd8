"""``mynakit jpki auth`` and ``mynakit jpki verify-cert``: the relying party's side of JPKI.

Trust, for every verifying command (``verify-cert``, ``cms verify``, ``pdf verify``): the
bundled J-LIS roots always; the sandbox issuer's roots (``$MYNAKIT_HOME/issuer``, where
``mynakit.emulator.state`` puts it) and the transcript CAs of the virtual cards made from
transcripts (``mynakit.emulator.transcripts``) only with ``--sandbox``. Trusting the sandbox
because its directory happens to exist would let anything the sandbox signed pass as valid on
any machine that once ran the demo, so it takes an explicit flag; the output always says whether
the root is a production or a sandbox one. ``jpki auth`` is the exception: it runs against the
sandbox by definition.

Verifying JPKI signatures as a business needs the minister's approval (公的個人認証法 §17,
protocol reference §9.3 legal note); these commands are for development and self-checks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mynakit.cli.context import get_context
from mynakit.cli.output import emit, note
from mynakit.cli.secrets import force_option, pin_stdin_option, read_secret
from mynakit.errors import TransportError, UsageError

if TYPE_CHECKING:
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.jpki.revocation import RevocationChecker
    from mynakit.jpki.trust import TrustStore
    from mynakit.jpki.validation import CertificateValidationError

ISSUER_FOLDER = "issuer"
_ISSUER_KEY = "mynakit.sandbox_issuer"
_TRANSCRIPT = "mynakit transcript CA"  # in every transcript CA's name (emulator.transcripts)
_Command = TypeVar("_Command", bound=Callable[..., Any])

sandbox_option = click.option(
    "--sandbox",
    is_flag=True,
    help="Also trust the sandbox issuer's roots ($MYNAKIT_HOME/issuer). "
    "Without it only the J-LIS roots are trusted.",
)


def issuer_directory(ctx: click.Context) -> Path:
    return get_context(ctx).home / ISSUER_FOLDER


def open_sandbox_issuer(ctx: click.Context) -> SandboxIssuer:
    """The sandbox issuer under ``$MYNAKIT_HOME``, opened once per command (loading its root
    keys is the slow part)."""
    from mynakit.emulator.issuer import STATE_FILE, SandboxIssuer

    meta = ctx.find_root().meta
    cached = meta.get(_ISSUER_KEY)
    if isinstance(cached, SandboxIssuer):
        return cached
    directory = issuer_directory(ctx)
    if not (directory / STATE_FILE).exists():
        raise UsageError(
            f"no sandbox issuer in {directory}; create a virtual card first "
            "(mynakit emulator create NAME), which creates the issuer too"
        )
    issuer = SandboxIssuer.open(directory)
    meta[_ISSUER_KEY] = issuer
    return issuer


def trust_store(ctx: click.Context, *, sandbox: bool) -> TrustStore:
    """J-LIS roots, plus the sandbox roots when asked (module docstring)."""
    from mynakit.jpki.trust import TrustStore

    store = TrustStore.jlis()
    return with_sandbox_roots(ctx, store) if sandbox else store


def with_sandbox_roots(ctx: click.Context, store: TrustStore) -> TrustStore:
    """``store`` plus the sandbox issuer's roots and the transcript CAs of the virtual cards
    made from transcripts (their certificates are signed by those)."""
    from mynakit.emulator.transcripts import replayed_card_authorities

    store = store.with_sandbox(open_sandbox_issuer(ctx))
    authorities = replayed_card_authorities(get_context(ctx).home / "cards")
    return store.with_sandbox(authorities) if authorities else store


@contextlib.contextmanager
def sandbox_responder(ctx: click.Context, needed: bool) -> Iterator[None]:
    """Serve the sandbox issuer's OCSP and CRLs on its loopback port while a check runs.

    If the port is taken, a responder is taken to be running already (``mynakit issuer
    serve``); if it is not, the revocation check itself fails with a clear message.
    """
    if not needed:
        yield
        return
    from mynakit.emulator.ocsp_server import OcspServer

    server = OcspServer(open_sandbox_issuer(ctx))
    try:
        server.start()
    except TransportError:
        note(f"using the sandbox responder already listening on port {server.port}")
        yield
        return
    try:
        yield
    finally:
        server.stop()


def with_sandbox_hint(error: CertificateValidationError, *, sandbox: bool) -> str:
    """The error message, plus a hint when a sandbox certificate was checked without
    ``--sandbox`` (the usual cause of "unknown issuer" during development)."""
    from mynakit.jpki.validation import ValidationFailure

    message = str(error)
    if not sandbox and error.reason is ValidationFailure.UNKNOWN_ISSUER and "SANDBOX" in message:
        message += " (signed by the sandbox issuer? add --sandbox to trust it)"
    elif (
        not sandbox and error.reason is ValidationFailure.UNKNOWN_ISSUER and _TRANSCRIPT in message
    ):
        message += " (a card made from a transcript? add --sandbox to trust its transcript CA)"
    return message


def revocation_checker(mode: str) -> RevocationChecker | None:
    from mynakit.jpki.revocation import crl_checker, ocsp_checker

    if mode == "ocsp":
        return ocsp_checker()
    if mode == "crl":
        return crl_checker()
    return None


def revocation_options(command: _Command) -> _Command:
    """``--ocsp`` / ``--crl`` (default: no revocation check)."""
    return click.option(
        "--ocsp",
        "revocation",
        flag_value="ocsp",
        help="Check revocation with the OCSP responder the certificate names.",
    )(
        click.option(
            "--crl",
            "revocation",
            flag_value="crl",
            help="Check revocation with the CRL the certificate names.",
        )(command)
    )


def certificate_facts(certificate: Any) -> dict[str, Any]:
    """What identifies a certificate, without personal data (never the basic-4 information)."""
    facts: dict[str, Any] = {
        "kind": certificate.kind.value,
        "serial": certificate.serial_number,
        "serial_hex": f"{certificate.serial_number:X}",
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
    }
    if certificate.kind.value == "auth":
        facts["random_string"] = certificate.random_string
        facts["terminal_code"] = certificate.terminal_code
    return facts


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
        from mynakit.cli.jpki_cert import open_with_certificate

        _, der = open_with_certificate(ctx, from_card, pin_stdin=pin_stdin, force=force)
    else:
        assert certificate_file is not None
        der = _read_certificate_file(Path(certificate_file))
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
                revocation=revocation_checker(revocation) if revocation else None,
            )
        except CertificateValidationError as error:
            message = with_sandbox_hint(error, sandbox=sandbox)
            emit(
                ctx,
                {"valid": False, "reason": error.reason.value, "message": message, **facts},
                f"NOT valid ({error.reason.value}): {message}",
            )
            ctx.exit(error.exit_code)
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


def _read_certificate_file(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from mynakit.errors import DataError

    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
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
