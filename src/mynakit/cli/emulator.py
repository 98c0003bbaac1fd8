"""``mynakit emulator``: persistent virtual cards (create, list, show, insert, remove, delete).

Cards live in ``<home>/cards`` (``$MYNAKIT_HOME`` or the user's data directory) and the sandbox
issuer that certifies them in ``<home>/issuer``. ``emulator serve`` (the vpcd bridge) lives in
its own module and is loaded only when used. Heavy imports stay inside the commands so that
``mynakit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import lazy_group

# Subcommands that live in other modules: name -> (module, attribute, one-line help).
EMULATOR_LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": (
        "mynakit.cli.emulator_serve",
        "serve",
        "Put a virtual card into pcscd's vpcd reader for every PC/SC program.",
    ),
}


@lazy_group(EMULATOR_LAZY_COMMANDS)
def emulator() -> None:
    """Virtual My Number cards (仮想マイナンバーカード) with a sandbox issuer."""


def _cards_directory(ctx: click.Context) -> Path:
    return get_context(ctx).cards_directory


def _parse_blocked(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from mynakit.errors import UsageError

    pairs = []
    for value in values:
        application, separator, key_name = value.partition(":")
        if not separator or not application or not key_name:
            raise UsageError(f"--blocked takes AP:KEY such as jpki:auth_pin, not {value!r}")
        pairs.append((application, key_name))
    return tuple(pairs)


def _pin_counters(state: Any) -> dict[str, str]:
    profile = state.card_profile()
    counters = {}
    for (application, key_id), record in sorted(state.pins.items()):
        key = profile.application(application).keys[key_id]
        counters[f"{application}/{key.name}"] = f"{record.tries_left}/{record.max_tries}"
    return counters


@emulator.command()
@click.argument("name")
@click.option("--profile", default="mynumber-card", show_default=True, help="Card profile name.")
@click.option("--seed", default=None, help="Persona seed (same seed, same holder data).")
@click.option(
    "--blocked",
    multiple=True,
    metavar="AP:KEY",
    help="Start with this PIN blocked, e.g. jpki:auth_pin (repeatable).",
)
@click.option(
    "--from-transcript",
    "transcript_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Answer like the card of this transcript (mynakit record): ATR, status words, sizes.",
)
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    profile: str,
    seed: str | None,
    blocked: tuple[str, ...],
    transcript_file: Path | None,
) -> None:
    """Create a virtual card NAME with a new persona, keys and certificates."""
    from mynakit.cli.util import emit, note
    from mynakit.emulator.state import check_card_name, create_card, load_card_state

    base = _cards_directory(ctx)
    check_card_name(name)
    note(f"Creating virtual card {name!r} (RSA keys and certificates)...")
    if transcript_file is not None:
        from mynakit.emulator.transcripts import create_card_from_transcript, load_transcript

        directory = create_card_from_transcript(
            base, name, load_transcript(transcript_file), seed=seed
        )
        for application, key_name in _parse_blocked(blocked):
            load_card_state(base, name).block(application, key_name)
    else:
        directory = create_card(
            base, name, profile=profile, seed=seed, blocked=_parse_blocked(blocked)
        )
    state = load_card_state(base, name)
    emit(
        ctx,
        {
            "name": name,
            "profile": state.profile_name,
            "directory": str(directory),
            "holder": state.persona.summary(),
            "certificate_serials": dict(state.serials),
        },
    )


@emulator.command(name="list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """List the virtual cards."""
    from mynakit.cli.util import emit
    from mynakit.emulator.state import inserted_card, list_cards

    base = _cards_directory(ctx)
    inserted = inserted_card(base)
    listings = list_cards(base)
    cards = [
        {
            "name": listing.name,
            "profile": listing.profile,
            "created": listing.created,
            "inserted": listing.name == inserted,
            # A damaged card is listed with what is wrong, so it never hides the others.
            "problem": listing.problem,
        }
        for listing in listings
    ]
    text = None
    if not cards:
        text = "No virtual cards yet: mynakit emulator create NAME"
    elif any(listing.problem for listing in listings):
        text = "\n".join(
            f"{listing.name}  BROKEN: {listing.problem}"
            if listing.problem
            else f"{listing.name}  {listing.profile}  {listing.created}"
            + ("  (inserted)" if listing.name == inserted else "")
            for listing in listings
        )
    emit(ctx, {"directory": str(base), "cards": cards}, text)


@emulator.command()
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Also print the My Number, PINs and check codes.")
@click.pass_context
def show(ctx: click.Context, name: str, reveal: bool) -> None:
    """Show a card's holder (no My Number or PINs unless --reveal) and PIN counters."""
    from mynakit.cli.util import emit, note
    from mynakit.emulator.state import inserted_card, load_card_state

    base = _cards_directory(ctx)
    state = load_card_state(base, name)
    if reveal:
        note("Showing the card's My Number and PINs (sandbox data).")
    emit(
        ctx,
        {
            "name": name,
            "profile": state.profile_name,
            "inserted": inserted_card(base) == name,
            "holder": state.persona.summary(reveal=reveal),
            "certificate_serials": dict(state.serials),
            "pin_tries_left": _pin_counters(state),
        },
    )


@emulator.command()
@click.argument("name")
@click.pass_context
def insert(ctx: click.Context, name: str) -> None:
    """Put card NAME into the virtual reader (replacing any card in it)."""
    from mynakit.cli.util import emit
    from mynakit.emulator.state import eject_card, insert_card

    base = _cards_directory(ctx)
    previous = eject_card(base)
    insert_card(base, name)
    emit(ctx, {"inserted": name, "ejected": previous if previous != name else None})


@emulator.command()
@click.pass_context
def remove(ctx: click.Context) -> None:
    """Take the card out of the virtual reader."""
    from mynakit.cli.util import emit
    from mynakit.emulator.state import eject_card

    name = eject_card(_cards_directory(ctx))
    emit(ctx, {"removed": name}, None if name else "The virtual reader was empty.")


@emulator.command()
@click.argument("name")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, name: str, force: bool) -> None:
    """Delete card NAME with its keys (its certificates stay issued)."""
    from mynakit.cli.util import emit
    from mynakit.emulator.state import remove_card

    if not force:
        click.confirm(f"Delete virtual card {name!r} and its keys?", abort=True, err=True)
    remove_card(_cards_directory(ctx), name)
    emit(ctx, {"deleted": name})
