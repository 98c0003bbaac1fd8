"""``mynakit mykey``: the MyKey platform (docs/services.md §B) from the shell.

Against a running platform (``--url`` or ``MYNAKIT_MYKEY_URL``) or, without one, the embedded
platform: the default database (``--database`` / ``MYNAKIT_DATABASE_URL``, else SQLite under
the mynakit home) and the sandbox issuer under the home, whose responder is started for the
command when none is listening. Holder commands use the card in ``--reader`` and its auth PIN;
service commands (``link``, ``resolve``) the service credential in ``MYNAKIT_MYKEY_CREDENTIAL``;
``service add`` on a running platform the admin token in ``MYNAKIT_MYKEY_ADMIN_TOKEN``. Secrets
never come from the command line.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import (
    emit,
    force_option,
    issuer_directory,
    note,
    open_sandbox_issuer,
    pin_stdin_option,
    read_secret,
    sandbox_responder,
)
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.jpki.authentication import ChallengeResponse
    from mynakit.services.mykey.assembly import MyKeyDeployment
    from mynakit.services.mykey.client import MyKeyClient

URL_VARIABLE = "MYNAKIT_MYKEY_URL"
CREDENTIAL_VARIABLE = "MYNAKIT_MYKEY_CREDENTIAL"
ADMIN_TOKEN_VARIABLE = "MYNAKIT_MYKEY_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a token
DEFAULT_PORT = 8700
_STATE_KEY = "mynakit.mykey"


@click.group()
@click.option("--url", envvar=URL_VARIABLE, help="A running MyKey platform (default: embedded).")
@click.option(
    "--database",
    envvar="MYNAKIT_DATABASE_URL",
    help="Database of the embedded platform (default: SQLite under the mynakit home).",
)
@click.option(
    "--scheme",
    type=click.Choice(["issued8", "cn14"]),
    default="issued8",
    show_default=True,
    help="MyKey ID scheme of the embedded platform.",
)
@click.pass_context
def mykey(ctx: click.Context, url: str | None, database: str | None, scheme: str) -> None:
    """MyKey platform: MyKey IDs, service links, resolution at a counter."""
    ctx.ensure_object(dict)
    ctx.meta[_STATE_KEY] = {"url": url, "database": database, "scheme": scheme}


# -- wiring -------------------------------------------------------------------------------------


def _settings(ctx: click.Context) -> dict[str, Any]:
    settings: dict[str, Any] = ctx.meta[_STATE_KEY]
    return settings


def _open_deployment(
    ctx: click.Context, database: str | None, scheme: str, issuer_url: str | None = None
) -> MyKeyDeployment:
    from mynakit.jpki.trust import TrustStore
    from mynakit.services.mykey.assembly import open_platform

    issuer = open_sandbox_issuer(ctx)
    return open_platform(
        database,
        issuer_url=issuer_url or issuer.base_url,
        trust_store=TrustStore.jlis().with_sandbox(issuer),
        # Card-CA keys of the sandbox's virtual cards (real J-LIS card-CA keys are not public).
        card_ca=get_context(ctx).trusted_card_ca_keys(sandbox=True),
        scheme=scheme,
    )


@contextlib.contextmanager
def _client(
    ctx: click.Context, *, service: bool = False, admin: bool = False
) -> Iterator[MyKeyClient]:
    from mynakit.services.mykey.client import MyKeyClient

    settings = _settings(ctx)
    credential = os.environ.get(CREDENTIAL_VARIABLE) if service else None
    if service and not credential:
        raise UsageError(f"set {CREDENTIAL_VARIABLE} to the service's credential")
    if settings["url"]:
        token = os.environ.get(ADMIN_TOKEN_VARIABLE) if admin else None
        if admin and not token:
            raise UsageError(f"set {ADMIN_TOKEN_VARIABLE} to the platform's admin token")
        client = MyKeyClient(settings["url"], credential=credential, admin_token=token)
        try:
            yield client
        finally:
            client.close()
        return
    # Embedded: the same HTTP API, served in this process for this one command.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from mynakit.services.mykey.http import create_mykey_app

    with sandbox_responder(ctx, True):
        deployment = _open_deployment(ctx, settings["database"], settings["scheme"])
        embedded_token = "embedded" if admin else None
        app = create_mykey_app(deployment, admin_token=embedded_token)
        try:
            with TestClient(app) as http:
                yield MyKeyClient(http=http, credential=credential, admin_token=embedded_token)
        finally:
            deployment.close()


def _authenticate(
    ctx: click.Context, client: MyKeyClient, pin_stdin: bool, force: bool
) -> ChallengeResponse:
    """A fresh challenge from the platform, answered by the card with the auth PIN."""
    from mynakit.card.jpki import JpkiAp
    from mynakit.jpki.authentication import card_respond

    challenge = client.challenge()
    session = JpkiAp.open(get_context(ctx).protocol())
    pin = read_secret(
        "auth_pin", "auth PIN (利用者証明用パスワード, 4 digits)", from_stdin=pin_stdin
    )
    try:
        return card_respond(session, challenge, pin, force=force)
    finally:
        del pin


def _holder_text(view: dict[str, Any]) -> str:
    lines = [
        f"MyKey ID: {view['mykey_id']} ({view['scheme']}, {view['status']})",
        f"tap mode: {'enabled' if view['tap_enabled'] else 'not enabled'}",
    ]
    for link in view["links"]:
        lines.append(f"linked: {link['service']} ({link['client_id']}): {link['service_user_id']}")
    return "\n".join(lines)


# -- commands -----------------------------------------------------------------------------------


@mykey.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--issuer-url", help="Issuer link base URL (default: the sandbox issuer's).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (they share only the database; tap mode needs 1).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, issuer_url: str | None, workers: int) -> None:
    """Serve the platform over HTTP (OpenAPI at /openapi.json) until interrupted."""
    from mynakit.services.http import serve as serve_app
    from mynakit.services.mykey.http import create_mykey_app

    settings = _settings(ctx)
    with sandbox_responder(ctx, issuer_url is None):
        if workers > 1:
            from mynakit.services.http import serve_factory
            from mynakit.services.store import default_database_url

            os.environ["MYNAKIT_DATABASE_URL"] = settings["database"] or default_database_url()
            os.environ["MYNAKIT_MYKEY_ISSUER_URL"] = issuer_url or open_sandbox_issuer(ctx).base_url
            os.environ["MYNAKIT_MYKEY_TRUST_DIR"] = str(issuer_directory(ctx))
            os.environ["MYNAKIT_MYKEY_SCHEME"] = settings["scheme"]
            note(f"MyKey platform on http://{host}:{port} with {workers} workers")
            serve_factory(
                "mynakit.services.mykey.http:app_from_environment",
                workers=workers,
                host=host,
                port=port,
            )
            return
        deployment = _open_deployment(ctx, settings["database"], settings["scheme"], issuer_url)
        token = os.environ.get(ADMIN_TOKEN_VARIABLE) or None
        if token is None:
            note(f"admin API disabled: set {ADMIN_TOKEN_VARIABLE} to add services over HTTP")
        note(f"MyKey platform on http://{host}:{port} ({deployment.database.describe()})")
        try:
            serve_app(create_mykey_app(deployment, admin_token=token), host=host, port=port)
        finally:
            deployment.close()


@mykey.command()
@click.option(
    "--no-serial-link-consent",
    is_flag=True,
    help="Do not let the platform follow this card's renewals through the issuer.",
)
@click.option(
    "--enable-tap",
    is_flag=True,
    help="Also enrol the card for tap mode (needs the birth-date code of the visual AP).",
)
@pin_stdin_option
@force_option
@click.pass_context
def register(
    ctx: click.Context, no_serial_link_consent: bool, enable_tap: bool, pin_stdin: bool, force: bool
) -> None:
    """Register the card and get its MyKey ID (again: the same one)."""
    with _client(ctx) as client:
        presence = None
        if enable_tap:
            presence = _presence(ctx, client)
        answer = _authenticate(ctx, client, pin_stdin, force)
        view = client.register(
            answer, consent_serial_link=not no_serial_link_consent, presence=presence
        )
    emit(ctx, view, _holder_text(view))


def _presence(ctx: click.Context, client: MyKeyClient) -> tuple[str, Any]:
    from mynakit.card.presence import prove_presence
    from mynakit.card.visual import VisualAp

    challenge = client.tap_challenge()
    code = read_secret("birth_date_code", "birth-date code (era YYMMDD)")
    try:
        proof = prove_presence(VisualAp(get_context(ctx).protocol()), challenge.nonce, code)
    finally:
        del code
    return challenge.challenge_id, proof


@mykey.command()
@pin_stdin_option
@force_option
@click.pass_context
def show(ctx: click.Context, pin_stdin: bool, force: bool) -> None:
    """Show your MyKey ID and linked services."""
    with _client(ctx) as client:
        view = client.show(_authenticate(ctx, client, pin_stdin, force))
    emit(ctx, view, _holder_text(view))


@mykey.command()
@click.argument("new_id", required=False)
@click.option("--random", "random_id", is_flag=True, help="Draw a new random ID (自動生成).")
@pin_stdin_option
@force_option
@click.pass_context
def change(
    ctx: click.Context, new_id: str | None, random_id: bool, pin_stdin: bool, force: bool
) -> None:
    """Change your MyKey ID to NEW_ID (8 letters or digits), or to a random one."""
    if (new_id is None) == (not random_id):
        raise UsageError("give NEW_ID or --random")
    with _client(ctx) as client:
        result = client.change(_authenticate(ctx, client, pin_stdin, force), new_id)
    if result["changed"]:
        text = f"MyKey ID changed to {result['mykey_id']}"
    else:
        text = (
            f"{new_id} is taken ({result['clashes']} clashes); MyKey ID stays {result['mykey_id']}"
        )
        if result["suggested_id"]:
            text += f"\nfree suggestion: {result['suggested_id']}"
    emit(ctx, result, text)


@mykey.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pin_stdin_option
@force_option
@click.pass_context
def revoke(ctx: click.Context, yes: bool, pin_stdin: bool, force: bool) -> None:
    """Revoke your MyKey ID (every link is removed)."""
    if not yes and not click.confirm("Revoke the MyKey ID and remove every link?", err=True):
        raise click.exceptions.Abort()
    with _client(ctx) as client:
        view = client.revoke(_authenticate(ctx, client, pin_stdin, force))
    emit(ctx, view, _holder_text(view))


@mykey.command()
@click.argument("service_user_id")
@pin_stdin_option
@force_option
@click.pass_context
def link(ctx: click.Context, service_user_id: str, pin_stdin: bool, force: bool) -> None:
    """(Service counter) Link the service's own SERVICE_USER_ID to the card's holder."""
    with _client(ctx, service=True) as client:
        result = client.link(_authenticate(ctx, client, pin_stdin, force), service_user_id)
    emit(ctx, result)


@mykey.command()
@click.argument("client_id")
@pin_stdin_option
@force_option
@click.pass_context
def unlink(ctx: click.Context, client_id: str, pin_stdin: bool, force: bool) -> None:
    """Remove your link to the service CLIENT_ID."""
    with _client(ctx) as client:
        view = client.unlink(_authenticate(ctx, client, pin_stdin, force), client_id)
    emit(ctx, view, _holder_text(view))


@mykey.command()
@click.option("--tap", is_flag=True, help="Tap mode: no PIN; the card proves it is present.")
@pin_stdin_option
@force_option
@click.pass_context
def resolve(ctx: click.Context, tap: bool, pin_stdin: bool, force: bool) -> None:
    """(Service counter) Resolve the card to the service's user ID and PPID."""
    with _client(ctx, service=True) as client:
        if tap:
            from mynakit.services.mykey.client import card_tap

            challenge = client.tap_challenge()
            code = read_secret("birth_date_code", "birth-date code (era YYMMDD)")
            certificate, proof = card_tap(get_context(ctx).protocol(), challenge, code)
            del code
            result = client.resolve_tap(certificate, challenge.challenge_id, proof)
        else:
            result = client.resolve(_authenticate(ctx, client, pin_stdin, force))
    emit(ctx, result)


@mykey.command()
@pin_stdin_option
@force_option
@click.pass_context
def history(ctx: click.Context, pin_stdin: bool, force: bool) -> None:
    """List every access to your records (newest first)."""
    with _client(ctx) as client:
        records = client.history(_authenticate(ctx, client, pin_stdin, force))
    text = "\n".join(
        f"{r['recorded_at']}  {r['actor']}  {r['purpose']}  {','.join(r['items'])}"
        + (f"  ({r['method']})" if r["method"] else "")
        for r in records
    )
    emit(ctx, {"records": records}, text or "no records")


@mykey.group()
def service() -> None:
    """Connected services (operator)."""


@service.command("add")
@click.argument("name")
@click.option("--require-pin", is_flag=True, help="Refuse tap-mode resolutions.")
@click.option("--lifetime-days", type=click.IntRange(1, 3650), help="Credential lifetime.")
@click.pass_context
def service_add(
    ctx: click.Context, name: str, require_pin: bool, lifetime_days: int | None
) -> None:
    """Register service NAME and print its credential (shown once)."""
    with _client(ctx, admin=True) as client:
        added = client.add_service(name, require_pin=require_pin, lifetime_days=lifetime_days)
    emit(
        ctx,
        added,
        f"service {added['name']}: client id {added['client_id']}\n"
        f"credential (shown once; give it as {CREDENTIAL_VARIABLE}): {added['credential']}",
    )
