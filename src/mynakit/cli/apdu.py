"""``mynakit apdu``: raw APDUs for engineers, exactly as given."""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.output import emit
from mynakit.errors import UsageError


def _parse_hex(text: str) -> bytes:
    cleaned = text.replace(" ", "").replace(":", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise UsageError(f"{text!r} is not hexadecimal") from None


@click.command()
@click.argument("commands", nargs=-1, required=True)
@click.option(
    "--follow/--no-follow",
    default=False,
    help="Apply GET RESPONSE (61xx) and Le correction (6Cxx) like the library does.",
)
@click.pass_context
def apdu(ctx: click.Context, commands: tuple[str, ...], follow: bool) -> None:
    """Send raw APDUs (hex, e.g. 00A4040C0AD392F000260100000001) and print the answers.

    VERIFY data is still redacted in --trace output; the answers here are printed as the card
    sent them, so do not paste PINs you care about into a shared terminal.
    """
    from mynakit.iso7816.apdu import CommandApdu, ResponseApdu
    from mynakit.iso7816.status import describe

    cli_context = get_context(ctx)
    results = []
    for text in commands:
        raw = _parse_hex(text)
        if follow:
            response = cli_context.protocol().transmit(CommandApdu.decode(raw))
        else:
            response = ResponseApdu.decode(cli_context.connection().transmit(raw))
        results.append(
            {
                "command": raw.hex().upper(),
                "data": response.data.hex().upper(),
                "sw": f"{response.sw:04X}",
                "meaning": describe(response.sw),
            }
        )
    text_lines = [
        f"> {row['command']}\n< {row['data']} {row['sw']} ({row['meaning']})".replace("<  ", "< ")
        for row in results
    ]
    emit(ctx, {"responses": results}, "\n".join(text_lines))
