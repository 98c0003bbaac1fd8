"""``mynakit emulator serve``: the virtual card in pcscd's ``Virtual PCD 00 00`` reader, so every
PC/SC program (OpenSC, browsers' middleware, pcsc_scan) sees a card.

pcscd is reused when one with vpcd is running, else started here in the foreground and stopped
when serving ends (docs/testing.md §3.1); nothing else is ever stopped.
"""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import note
from mynakit.errors import UsageError


@click.command()
@click.argument("name", required=False)
@click.option("--port", type=int, default=35963, show_default=True, help="vpcd's TCP port.")
@click.option(
    "--no-pcscd",
    is_flag=True,
    help="Do not start pcscd when none is running; wait for one instead.",
)
@click.pass_context
def serve(ctx: click.Context, name: str | None, port: int, no_pcscd: bool) -> None:
    """Serve card NAME (default: the inserted card) through vpcd until Ctrl-C."""
    from mynakit.emulator.state import inserted_card
    from mynakit.emulator.vpcd import serve as serve_card

    cards = get_context(ctx).cards_directory
    name = name or inserted_card(cards)
    if name is None:
        raise UsageError("no card named and none inserted: 'mynakit emulator insert NAME' first")
    pcscd = None
    if not no_pcscd:
        from mynakit.emulator.pcscd import ensure_pcscd

        pcscd = ensure_pcscd(get_context(ctx).home / "pcscd")
        if pcscd.started_by_us:
            note("started pcscd (it stops when serving ends)")
    try:
        serve_card(name, cards, port, announce=note)
    finally:
        if pcscd is not None:
            pcscd.stop()
