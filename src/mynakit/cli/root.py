"""The ``mynakit`` root command: its global options and its command groups, each imported only
when invoked, so ``mynakit --help`` stays fast (tools/bench/bench_cli_startup.py). The entry
point and the one error boundary are ``mynakit.cli.main``, which imports this module only when
the fast path does not run the command (docs/architecture.md §10).
"""

from __future__ import annotations

import os
from typing import Any

import click

from mynakit.cli.util import configure_logging, lazy_group

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


@lazy_group(COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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

    configure_logging(verbose)
    ctx.obj = CliContext(reader=reader, trace=trace)
    ctx.call_on_close(ctx.obj.close)


# -- the fast path's spec, derived from the click commands ---------------------------------------

#: The commands the fast path runs without click (docs/architecture.md §10).
FAST_PATH_COMMANDS = (("jpki", "cert"), ("jpki", "pkey", "sign"))
#: The width click gives help on a terminal of 80 columns or more, and when output is not a
#: terminal (click.formatting.HelpFormatter: the terminal's columns, at most 80, less 2).
FULL_HELP_WIDTH = 78


def root_help() -> dict[str, Any]:
    """What ``mynakit.cli.fast_path_spec`` holds of the root's help: the options that ask for
    it and the text click prints for them at ``FULL_HELP_WIDTH``."""
    context = cli.make_context(
        "mynakit", [], resilient_parsing=True, terminal_width=FULL_HELP_WIDTH
    )
    return {
        "options": sorted(cli.get_help_option_names(context)),
        "width": FULL_HELP_WIDTH,
        "text": cli.get_help(context),
    }


def fast_path_spec() -> dict[str, dict[str, Any]]:
    """What ``mynakit.cli.fast_path_spec`` must hold: the root's options and those of every
    fast-path command, read from their click definitions (``tools/generate_fast_path_spec.py``
    writes it; a test regenerates it and fails on any difference)."""
    root = cli.make_context("mynakit", [], resilient_parsing=True)
    spec = {"": _parameters_of(cli, root)}
    for path in FAST_PATH_COMMANDS:
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            found = command.get_command(root, name)
            assert found is not None, path
            if isinstance(found, click.Group):
                assert not found.params, f"group {name} has options of its own"
            command = found
        spec[" ".join(path)] = _parameters_of(command, root)
    return spec


def _parameters_of(command: click.Command, root: click.Context) -> dict[str, Any]:
    """A command's options (option string -> parameter name), which of them are flags, their
    choices, the values click gives the parameters a command line leaves out (defaults; an
    environment variable is named apart), its arguments in order, and the parameters the fast
    path cannot take as click would (a callback, a count, several values, a prompt...): an
    invocation that gives one of those goes to click."""
    options: dict[str, str] = {}
    flags: list[str] = []
    choices: dict[str, list[str]] = {}
    environment: dict[str, str] = {}
    arguments: list[str] = []
    not_taken: list[str] = []
    for parameter in command.params:
        assert parameter.name is not None
        name = parameter.name
        plain = (
            parameter.callback is None
            and parameter.nargs == 1
            and not parameter.multiple
            and parameter.expose_value
            and isinstance(parameter.type, click.types.StringParamType | click.Choice)
        )
        if isinstance(parameter, click.Argument):
            assert plain and parameter.required, f"argument {name} is not a plain one"
            arguments.append(name)
            continue
        assert isinstance(parameter, click.Option)
        options.update(dict.fromkeys(parameter.opts, name))
        if parameter.is_flag and isinstance(parameter.type, click.types.BoolParamType):
            flags.append(name)
            plain = parameter.callback is None and not parameter.secondary_opts
        if not plain or parameter.prompt is not None:
            not_taken.append(name)
            continue
        if isinstance(parameter.type, click.Choice):
            choices[name] = [str(choice) for choice in parameter.type.choices]
        if isinstance(parameter.envvar, str):
            environment[name] = parameter.envvar
    # What click passes for what a command line leaves out, environment variables aside.
    placeholders = ["ARGUMENT"] * len(arguments)
    unset = {
        variable: os.environ.pop(variable)
        for variable in environment.values()
        if variable in os.environ
    }
    try:
        context = command.make_context(
            command.name, placeholders, parent=root, resilient_parsing=True
        )
    finally:
        os.environ.update(unset)
    defaults = {
        name: value
        for name, value in context.params.items()
        if name not in arguments and name not in not_taken
    }
    return {
        "options": options,
        "flags": flags,
        "choices": choices,
        "defaults": defaults,
        "environment": environment,
        "arguments": arguments,
        "not_taken": not_taken,
    }
