"""``mynakit card``: what the card in the reader is."""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit


@click.group()
def card() -> None:
    """The card in the reader."""


@card.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Identify the card: My Number card, smartphone JPKI token, Juki card, or unknown."""
    from mynakit.card.detect import identify

    cli_context = get_context(ctx)
    connection = cli_context.connection()
    identity = identify(cli_context.protocol(), connection.atr)
    data = {"reader": connection.reader_name, **identity.to_dict()}
    lines = [
        f"Reader: {connection.reader_name}",
        f"Card:   {identity.kind.description}",
        f"Token:  {identity.token_label or '-'}",
        f"ATR:    {data['atr']}"
        + ("" if identity.atr_known else " (not a known My Number card ATR)"),
    ]
    emit(ctx, data, "\n".join(lines))
