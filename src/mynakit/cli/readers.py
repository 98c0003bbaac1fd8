"""``mynakit readers``, ``mynakit wait`` and ``mynakit check``: what the chosen reader sees.

All three go through the CLI context's reader choice, so ``--reader virtual:NAME`` answers for
the in-process virtual card without pcscd, as every other command does.
"""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit, note


@click.command()
@click.pass_context
def readers(ctx: click.Context) -> None:
    """List readers, whether a card is present, and its ATR."""
    rows = [
        {"name": info.name, "card_present": info.card_present, "atr": info.atr_hex}
        for info in get_context(ctx).readers()
    ]
    if not rows:
        text = (
            "No readers. Plug in a reader, or run 'mynakit emulator serve NAME' for a virtual one."
        )
    else:
        text = "\n".join(
            f"{row['name']}: " + (f"card, ATR {row['atr']}" if row["card_present"] else "no card")
            for row in rows
        )
    emit(ctx, {"readers": rows}, text)


@click.command()
@click.option("-t", "--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.pass_context
def wait(ctx: click.Context, timeout: float | None) -> None:
    """Block until a card is inserted (in the --reader reader, or any)."""
    note("Waiting for a card...")
    info = get_context(ctx).wait_for_card(timeout)
    emit(
        ctx,
        {"reader": info.name, "atr": info.atr_hex},
        f"Card inserted in {info.name} (ATR {info.atr_hex})",
    )


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Diagnostics: is the service up, which readers, is a card there, what is it."""
    from mynakit.card.detect import identify
    from mynakit.errors import MynakitError

    cli_context = get_context(ctx)
    found = cli_context.readers()
    choice = cli_context.reader
    outside_pcsc = "virtual card" if choice.virtual_card else "nfcpy" if choice.nfc_reader else None
    report: dict[str, object] = {
        "service": f"not used ({outside_pcsc})" if outside_pcsc else "running",
        "readers": [info.name for info in found],
        "cards": sum(1 for info in found if info.card_present),
    }
    if report["cards"]:
        try:
            connection = cli_context.connection()
            identity = identify(cli_context.protocol(), connection.atr)
            report["card"] = identity.to_dict()
            # What the reader carries and whether it has a keypad (PC/SC part 10).
            report["reader_limits"] = connection.limits.to_dict()
            report["pin_pad"] = connection.pin_pad is not None
        except MynakitError as error:
            report["card_error"] = str(error)
    emit(ctx, report)
