"""``mynakit pin``: retry counters of every key on the card (no try spent) and PIN change.

PIN safety: counters are read with the empty VERIFY that spends nothing
(docs/card.md §7.5); every VERIFY goes through the guarded session verify (counter first,
the last try refused without ``--force``, never retried); PINs come from cli/util.py only.
"""

from __future__ import annotations

import click

from mynakit.card.base import ApplicationSession
from mynakit.card.common import CommonAp
from mynakit.card.errors import FileNotFoundOnCardError
from mynakit.card.jpki import JpkiAp
from mynakit.card.pin_status import PinStatus
from mynakit.card.text import TextAp
from mynakit.card.visual import VisualAp
from mynakit.cli.context import get_context
from mynakit.cli.util import emit, force_option, pin_stdin_option, read_new_secret, read_secret
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import CardProfile

# The sessions `pin status` asks; each declares its own keys (ApplicationSession.pin_keys).
SESSIONS: dict[str, type[ApplicationSession]] = {
    "jpki": JpkiAp,
    "text": TextAp,
    "visual": VisualAp,
    "common": CommonAp,
}

# `pin change` targets. jpki/myna calls the text PIN "card"; here "card" is the common AP's
# card PIN (個人番号カード用暗証番号) and "text" the text PIN, as docs/architecture.md §9
# names them.
CHANGE_TARGETS = {
    "auth": ("jpki", "auth_pin"),
    "sign": ("jpki", "sign_password"),
    "text": ("text", "text_pin"),
    "card": ("common", "card_pin"),
}


def all_pin_statuses(protocol: ApduProtocol) -> tuple[dict[str, object], list[PinStatus]]:
    """The token and every key's counter on every AP the card has; spends no try."""
    jpki_session = JpkiAp.open(protocol)
    token = jpki_session.token()
    profile: CardProfile = jpki_session.profile
    statuses = jpki_session.pin_status()
    for application, session_class in SESSIONS.items():
        if application == "jpki" or application not in profile.applications:
            continue  # a smartphone token has only the JPKI AP
        try:
            session = session_class(protocol, profile)
        except FileNotFoundOnCardError:
            continue
        statuses.extend(session.pin_status())
    return token.to_dict(), statuses


@click.group()
def pin() -> None:
    """PIN status (no try spent) and PIN change."""


@pin.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Tries left on every key of every AP, read without spending a try."""
    token, statuses = all_pin_statuses(get_context(ctx).protocol())
    lines = [f"card: {token['description']}"]
    for item in statuses:
        if item.tries_left is None:
            left = "not reported"
        elif item.blocked:
            left = "BLOCKED (municipal office)"
        else:
            left = f"{item.tries_left}/{item.max_tries}"
        lines.append(f"{item.application:7} {item.key_id:04X} {item.label}: {left}")
    emit(ctx, {"card": token, "keys": [item.to_dict() for item in statuses]}, "\n".join(lines))


@pin.command()
@click.argument("target", type=click.Choice(sorted(CHANGE_TARGETS)))
@pin_stdin_option
@force_option
@click.pass_context
def change(ctx: click.Context, target: str, pin_stdin: bool, force: bool) -> None:
    """Change a PIN: auth (JPKI 0018), sign (JPKI 001B), text (text AP 0011) or card
    (common AP 001C).

    The current and the new value come from the environment (the key's variable and
    MYNAKIT_NEW_PIN), from stdin with --pin-stdin (two lines: current, then new), or from hidden
    prompts; the new one is asked twice on a terminal.
    """
    application, key_name = CHANGE_TARGETS[target]
    protocol = get_context(ctx).protocol()
    session = JpkiAp.open(protocol) if application == "jpki" else SESSIONS[application](protocol)
    key = session.application.key(key_name)
    label = key.label or key.name
    old = read_secret(key_name, f"current {label}", from_stdin=pin_stdin)
    new = read_new_secret(label, from_stdin=pin_stdin)
    session.change_pin(old, new, key=key_name, force=force)
    emit(
        ctx,
        {
            "changed": True,
            "application": application,
            "key": key_name,
            "key_id": f"{key.key_id:04X}",
        },
        f"the {label} was changed",
    )
