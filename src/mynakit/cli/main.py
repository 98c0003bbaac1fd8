"""The ``mynakit`` root command and the one error boundary.

Command groups live in their own modules and are imported only when invoked, so
``mynakit --help`` stays fast (issue: under 0.3 s). Every expected failure is a
``MynakitError``; ``main`` prints it as one line on stderr and exits with its ``exit_code``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from mynakit.errors import MynakitError

# name -> (module, attribute, one-line help shown by --help without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "readers": ("mynakit.cli.readers", "readers", "List readers, whether a card is present, ATRs."),
    "wait": ("mynakit.cli.readers", "wait", "Block until a card is inserted."),
    "card": ("mynakit.cli.card", "card", "Identify the card in the reader."),
    "apdu": ("mynakit.cli.apdu", "apdu", "Send raw APDUs (for engineers)."),
    "check": ("mynakit.cli.readers", "check", "PC/SC diagnostics: service, readers, card."),
    "jpki": ("mynakit.cli.jpki", "jpki", "JPKI AP: certificates, signatures, authentication."),
    "pin": ("mynakit.cli.pin", "pin", "PIN status (no try spent) and PIN change."),
    "text": ("mynakit.cli.text", "text", "Text AP: My Number and basic-4 information."),
    "visual": ("mynakit.cli.visual", "visual", "Visual AP: card face entries and photo."),
    "common": ("mynakit.cli.common", "common", "Common AP: card serial, municipality, expiry."),
    "emulator": ("mynakit.cli.emulator", "emulator", "Virtual cards: create, list, serve."),
    "issuer": ("mynakit.cli.issuer", "issuer", "Sandbox issuer: renew, revoke, CRL, OCSP."),
    "demo": ("mynakit.cli.demo", "demo", "Run a virtual card through the whole counter flow."),
    "terminal": ("mynakit.cli.terminal", "terminal", "Counter terminal on a real reader (kiosk)."),
    "eligibility": (
        "mynakit.cli.eligibility",
        "eligibility",
        "Online insurance eligibility check sandbox (オンライン資格確認).",
    ),
    "mykey": (
        "mynakit.cli.mykey",
        "mykey",
        "MyKey platform: MyKey IDs, service links, resolution.",
    ),
    "record": ("mynakit.cli.record", "record", "Read the card into a redacted transcript."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use.

    ``commands`` maps a name to (module, attribute, one-line help), so ``--help`` lists every
    command without importing any of them.
    """

    def __init__(
        self, *args: Any, lazy_commands: dict[str, tuple[str, str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = {
            name for name, (module, _, _) in self.lazy_commands.items() if _module_exists(module)
        }
        return sorted(lazy | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:  # defined in the group's own module
            return self.commands[cmd_name]
        entry = self.lazy_commands.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                return None
            raise
        command = getattr(module, attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.commands[name].get_short_help_str(limit=70))
            if name in self.commands
            else (name, self.lazy_commands[name][2])
            for name in self.list_commands(ctx)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module_name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module_name) is not None


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-r",
    "--reader",
    envvar="MYNAKIT_READER",
    help="Reader name (or a unique part of it); 'virtual:NAME' for an in-process virtual card; "
    "'nfc:usb' (or nfc:usb:VID:PID) for an NFC reader without a PC/SC driver (RC-S380 on Linux).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option(
    "--trace", is_flag=True, help="Print every APDU to stderr (PINs, personal data redacted)."
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(package_name="mynakit")
@click.pass_context
def cli(ctx: click.Context, reader: str | None, as_json: bool, trace: bool, verbose: int) -> None:
    """mynakit: the My Number card (個人番号カード) from Python and the shell."""
    from mynakit.cli.context import CliContext

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = CliContext(reader=reader, trace=trace)
    ctx.call_on_close(ctx.obj.close)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI and map errors to one-line messages and exit codes."""
    try:
        return cli.main(args=argv, prog_name="mynakit", standalone_mode=False)
    except MynakitError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
