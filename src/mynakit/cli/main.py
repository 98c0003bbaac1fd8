"""The ``mynakit`` entry point and the CLI's one error boundary.

``main`` hands the command line to the fast path (``mynakit.cli.fast_path``) when it fully
understands it, else to the click root command (``mynakit.cli.root``); click is imported only
then (docs/architecture.md §10). Every expected failure is a ``MynakitError``; ``main`` prints
it as one line on stderr and exits with its ``exit_code``, whichever path ran the command.
"""

from __future__ import annotations

import errno
import os
import sys

from mynakit.cli.util import VerificationFailedError, echo, to_json
from mynakit.errors import MynakitError

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Any, NoReturn

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


def main(argv: list[str] | None = None, *, fast_path: bool = True) -> Any:
    """Entry point and the CLI's one error boundary.

    ``fast_path=False`` runs every command through click (the tests compare the two paths).

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
        return _run(arguments, fast_path=fast_path)
    except MynakitError as error:
        _fail(str(error), error.exit_code, as_json=as_json, result=_result_of(error))
    except (KeyboardInterrupt, EOFError):
        # What click does with them in the commands it runs, so the fast path's Ctrl-C reads
        # the same: end the current line, then one error line.
        echo("", err=True)
        _fail("aborted", INTERRUPTED_EXIT_CODE, as_json=as_json)
    except OSError as error:
        if error.errno == errno.EPIPE:
            # Standard output's reader went away (`| head`): exit 1 without a word, as click
            # does, and keep the interpreter's last flush from complaining.
            import contextlib  # here, not at the top: only a broken pipe needs it

            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        # A file, a device or a socket the command used: what failed and why, in one line.
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}", 2 if error.filename else 1, as_json=as_json)
    except Exception as error:  # the boundary: anything else is a bug, said in one line
        _fail_if_click_exception(error, as_json=as_json)
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


def _run(arguments: list[str], *, fast_path: bool) -> Any:
    if fast_path:
        from mynakit.cli.fast_path import plan_for, root_help_for

        help_text = root_help_for(arguments)
        if help_text is not None:
            echo(help_text)
            return None
        plan = plan_for(arguments)
        if plan is not None:
            return plan.run()
    from mynakit.cli.root import cli

    return cli.main(args=arguments, prog_name="mynakit", standalone_mode=False)


def _fail_if_click_exception(error: Exception, *, as_json: bool) -> None:
    """Exit as click's own exceptions ask: ``Exit`` (``--help``, ``--version``), ``Abort``
    (Ctrl-C at a prompt) and its usage errors. Only the click path raises them, so click is
    imported here only if it already was."""
    if "click" not in sys.modules:
        return
    import click

    if isinstance(error, click.exceptions.Exit):
        sys.exit(error.exit_code)
    if isinstance(error, click.exceptions.Abort):
        _fail("aborted", INTERRUPTED_EXIT_CODE, as_json=as_json)
    if isinstance(error, click.ClickException):
        message = error.format_message()
        context = getattr(error, "ctx", None)
        if isinstance(error, click.UsageError) and context is not None:
            message += f" (see '{context.command_path} --help')"
        _fail(message, 2 if isinstance(error, click.UsageError) else error.exit_code, as_json)


def _result_of(error: MynakitError) -> dict[str, Any] | None:
    return error.result if isinstance(error, VerificationFailedError) else None


def _fail(
    message: str, exit_code: int, as_json: bool, *, result: dict[str, Any] | None = None
) -> NoReturn:
    line = " ".join(message.split())  # one line, whatever the message holds
    echo(f"Error: {line}", err=True)
    if as_json:
        payload: dict[str, Any] = {"error": line, "exit_code": exit_code}
        if result is not None:
            payload["result"] = result
        echo(to_json(payload, indent=None))
    sys.exit(exit_code)
