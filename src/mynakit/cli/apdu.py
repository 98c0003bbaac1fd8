"""``mynakit apdu``: raw APDUs for engineers, exactly as given.

Two rules hold here as everywhere (docs/card.md §7.5): the data of a command that carries a
secret (VERIFY, CHANGE REFERENCE DATA, CHANGE KEY) is never echoed, on stdout or in ``--trace``;
and a VERIFY with data is preceded by the empty VERIFY that reads the counter without spending
a try, so that the last try is never spent without ``--force`` and a blocked key is not sent to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit, force_option
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.cli.context import CliContext
    from mynakit.iso7816.apdu import CommandApdu

INS_VERIFY = 0x20


def _parse_hex(text: str) -> bytes:
    cleaned = text.replace(" ", "").replace(":", "")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise UsageError(f"{text!r} is not hexadecimal") from None
    if len(raw) < 4:
        raise UsageError(f"{text!r} is not an APDU: a command has at least 4 bytes (CLA INS P1 P2)")
    return raw


def _guard_verify(cli_context: CliContext, command: CommandApdu, *, force: bool) -> None:
    """Read the counter of a VERIFY's key with the empty VERIFY (no try spent); refuse a
    blocked key, and the last try unless ``force``."""
    from mynakit.card.errors import LastTryRefusedError, PinBlockedError
    from mynakit.iso7816.apdu import CommandApdu, ResponseApdu
    from mynakit.iso7816.status import StatusWord, tries_left

    probe = CommandApdu(command.cla, command.ins, command.p1, command.p2)
    sw = ResponseApdu.decode(cli_context.connection().transmit(probe.encode())).sw
    what = f"key {command.p2:02X} of the current application"
    blocked = (StatusWord.AUTHENTICATION_METHOD_BLOCKED, StatusWord.REFERENCE_DATA_BLOCKED)
    if sw in blocked or tries_left(sw) == 0:
        raise PinBlockedError(what)
    if tries_left(sw) == 1 and not force:
        raise LastTryRefusedError(what)


@click.command()
@click.argument("commands", nargs=-1, required=True)
@click.option(
    "--follow/--no-follow",
    default=False,
    help="Apply GET RESPONSE (61xx) and Le correction (6Cxx) like the library does.",
)
@force_option
@click.pass_context
def apdu(ctx: click.Context, commands: tuple[str, ...], follow: bool, force: bool) -> None:
    """Send raw APDUs (hex, e.g. 00A4040C0AD392F000260100000001) and print the answers.

    The data of VERIFY and CHANGE REFERENCE DATA is shown as <redacted>, and a VERIFY is refused
    on the last try unless --force. Other answers are printed as the card sent them, personal
    data included: do not use this on a shared terminal.
    """
    from mynakit.iso7816.apdu import CommandApdu, ResponseApdu
    from mynakit.iso7816.status import describe
    from mynakit.transport.trace import carries_secret, redacted_command

    # Every command is parsed before the first is sent: a typo in the third sends nothing.
    parsed = [(raw, CommandApdu.decode(raw)) for raw in map(_parse_hex, commands)]
    cli_context = get_context(ctx)
    results = []
    for raw, command in parsed:
        if command.ins == INS_VERIFY and not command.cla & 0x80 and command.data:
            _guard_verify(cli_context, command, force=force)
        if follow:
            response = cli_context.protocol().transmit(command)
        else:
            response = ResponseApdu.decode(cli_context.connection().transmit(raw))
        results.append(
            {
                "command": redacted_command(command)
                if carries_secret(command)
                else raw.hex().upper(),
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
