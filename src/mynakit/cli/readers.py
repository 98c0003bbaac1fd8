"""``mynakit readers``, ``mynakit wait`` and ``mynakit check``: what PC/SC sees."""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.output import emit, note


@click.command()
@click.pass_context
def readers(ctx: click.Context) -> None:
    """List readers, whether a card is present, and its ATR."""
    from mynakit.transport.readers import list_readers

    found = list_readers()
    rows = [
        {"name": info.name, "card_present": info.card_present, "atr": info.atr_hex}
        for info in found
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
    from mynakit.transport.base import NoCardError
    from mynakit.transport.readers import wait_for_card

    note("Waiting for a card...")
    reader = get_context(ctx).reader
    if reader is not None and reader.startswith("nfc:"):
        # nfcpy readers are outside PC/SC: wait on the reader itself (docs/readers.md §2).
        from mynakit.transport.base import TransportTimeoutError
        from mynakit.transport.nfc import NfcConnection

        try:
            connection = NfcConnection.open(reader, timeout=timeout if timeout is not None else 1e9)
        except NoCardError as error:
            raise TransportTimeoutError(f"no card was placed on {reader!r} in time") from error
        with connection:
            atr = connection.atr.hex().upper()
            emit(ctx, {"reader": reader, "atr": atr}, f"Card on {reader} (ATR {atr})")
        return
    info = wait_for_card(reader, timeout=timeout)
    emit(
        ctx,
        {"reader": info.name, "atr": info.atr_hex},
        f"Card inserted in {info.name} (ATR {info.atr_hex})",
    )


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """PC/SC diagnostics: is the service up, which readers, is a card there, what is it."""
    from mynakit.card.detect import identify
    from mynakit.errors import MynakitError
    from mynakit.transport.readers import list_readers

    report: dict[str, object] = {}
    found = list_readers()
    report["service"] = "running"
    report["readers"] = [info.name for info in found]
    with_card = [info for info in found if info.card_present]
    report["cards"] = len(with_card)
    cli_context = get_context(ctx)
    if with_card or (cli_context.reader or "").startswith(("virtual:", "nfc:")):
        try:
            identity = identify(cli_context.protocol(), cli_context.connection().atr)
            report["card"] = identity.as_dict()
            # What the reader carries and whether it has a keypad (PC/SC part 10).
            report["reader_limits"] = cli_context.connection().limits.as_dict()
            report["pin_pad"] = cli_context.connection().pin_pad is not None
        except MynakitError as error:
            report["card_error"] = str(error)
    emit(ctx, report)
