"""The ``mynakit`` root command and the one error boundary.

Command groups live in their own modules and are imported only when invoked, so
``mynakit --help`` stays fast (tools/bench/bench_cli_startup.py). Every expected failure is a
``MynakitError``; ``main`` prints it as one line on stderr and exits with its ``exit_code``.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from mynakit.cli.util import LazyGroup, VerificationFailedError, to_json
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
    import logging

    from mynakit.cli.context import CliContext

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = CliContext(reader=reader, trace=trace)
    ctx.call_on_close(ctx.obj.close)


# Global options, accepted anywhere on the command line (``mynakit jpki cert --json``): main
# moves them in front of the subcommand before click parses, so every command has them without
# repeating them. Flags, and the one option that takes a value.
GLOBAL_FLAGS = frozenset({"--json", "--trace", "--verbose"})
GLOBAL_VALUE_OPTIONS = frozenset({"-r", "--reader"})

#: Exit code of an error mynakit did not expect (a bug): EX_SOFTWARE of sysexits(3), distinct
#: from every ``MynakitError`` code so that scripts and tests can tell the two apart.
INTERNAL_ERROR_EXIT_CODE = 70
INTERRUPTED_EXIT_CODE = 130


def hoist_global_options(argv: list[str]) -> list[str]:
    """``argv`` with the global options moved to the front, in their order; ``--`` ends the
    search (what follows it is never an option)."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        argument = argv[index]
        if argument == "--":
            rest.extend(argv[index:])
            break
        if argument in GLOBAL_FLAGS or _is_verbose_flag(argument):
            hoisted.append(argument)
        elif argument in GLOBAL_VALUE_OPTIONS and index + 1 < len(argv):
            hoisted.extend(argv[index : index + 2])
            index += 1
        elif argument.startswith("--reader="):
            hoisted.append(argument)
        else:
            rest.append(argument)
        index += 1
    return hoisted + rest


def _is_verbose_flag(argument: str) -> bool:
    """``-v``, ``-vv``, ``-vvv``..."""
    return len(argument) > 1 and argument[0] == "-" and set(argument[1:]) == {"v"}


def _verbosity(argv: list[str]) -> int:
    count = 0
    for argument in argv:
        if argument == "--":
            break
        if argument == "--verbose":
            count += 1
        elif _is_verbose_flag(argument):
            count += len(argument) - 1
    return count


def main(argv: list[str] | None = None) -> Any:
    """Entry point and the CLI's one error boundary.

    Exit codes: 0 success; the ``exit_code`` of a ``MynakitError`` (2 bad usage or a file that
    cannot be read or written, 3 malformed data, 4 reader or pcscd, 5 card refused, 6 PIN, 7 did
    not verify); 2 for click's own usage errors; 70 for an error mynakit did not expect;
    130 interrupted. Every failure is one ``Error: ...`` line on stderr, and with ``--json`` also
    ``{"error": ..., "exit_code": ...}`` on stdout (stdout is JSON or nothing). A traceback is
    printed only for an unexpected error, and only with ``-vv``.
    """
    arguments = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    as_json = "--json" in arguments[: arguments.index("--") if "--" in arguments else None]
    try:
        return cli.main(args=arguments, prog_name="mynakit", standalone_mode=False)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except MynakitError as error:
        _fail(str(error), error.exit_code, as_json=as_json, result=_result_of(error))
    except click.exceptions.Abort:
        _fail("aborted", INTERRUPTED_EXIT_CODE, as_json=as_json)
    except KeyboardInterrupt:
        _fail("interrupted", INTERRUPTED_EXIT_CODE, as_json=as_json)
    except click.ClickException as error:
        message = error.format_message()
        context = getattr(error, "ctx", None)
        if isinstance(error, click.UsageError) and context is not None:
            message += f" (see '{context.command_path} --help')"
        _fail(message, 2 if isinstance(error, click.UsageError) else error.exit_code, as_json)
    except OSError as error:
        # A file, a device or a socket the command used: what failed and why, in one line.
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}", 2 if error.filename else 1, as_json=as_json)
    except Exception as error:  # the boundary: anything else is a bug, said in one line
        if _verbosity(arguments) >= 2:
            import traceback

            traceback.print_exc(file=sys.stderr)
            hint = ""
        else:
            hint = "; run with -vv for the traceback"
        _fail(
            f"unexpected error ({type(error).__name__}: {error}){hint}",
            INTERNAL_ERROR_EXIT_CODE,
            as_json=as_json,
        )


def _result_of(error: MynakitError) -> dict[str, Any] | None:
    return error.result if isinstance(error, VerificationFailedError) else None


def _fail(
    message: str, exit_code: int, as_json: bool, *, result: dict[str, Any] | None = None
) -> NoReturn:
    line = " ".join(message.split())  # one line, whatever the message holds
    click.echo(f"Error: {line}", err=True)
    if as_json:
        payload: dict[str, Any] = {"error": line, "exit_code": exit_code}
        if result is not None:
            payload["result"] = result
        click.echo(to_json(payload, indent=None))
    sys.exit(exit_code)
