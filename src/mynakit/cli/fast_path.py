"""The fast path: ``jpki cert`` and ``jpki pkey sign`` run without importing click.

Importing click costs about as much as OpenSC's whole ``pkcs15-tool --read-certificate``
(tools/bench/README.md), so ``main`` first asks :func:`plan_for` whether it understands the
command line completely: the root options ``--reader`` and ``--json`` (``--trace`` too), then
one of those two commands with options spelt exactly as click declares them
(``mynakit.cli.fast_path_spec``, generated from the click commands). Anything else (help,
version, ``-v``, an unknown or repeated option, a value outside its choices, a missing
argument, ``--``, short options run together) is not understood, and the line goes to click,
which stays the one definition of the CLI's behaviour and of its usage errors.

What runs is the commands' own code: the click commands and this path call the same functions
of ``mynakit.cli.util`` with the same values, and errors pass through the same boundary in
``main``. Nothing here touches the card before the whole line is understood, so no line is
ever run twice (docs/architecture.md §10).
"""

from __future__ import annotations

import os

from mynakit.cli.fast_path_spec import COMMANDS, ROOT_HELP
from mynakit.cli.util import read_certificate_command, sign_command

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: The body each fast-path command runs, keyed like ``COMMANDS`` (a test keeps the two equal).
BODIES: dict[str, Callable[..., None]] = {
    "jpki cert": read_certificate_command,
    "jpki pkey sign": sign_command,
}
END_OF_OPTIONS = "--"


class FastInvocation:
    """The command's context as the helpers read it (``mynakit.cli.util.Invocation``): the
    root's parameters and the ``CliContext``, as click's root context holds them."""

    def __init__(self, params: dict[str, Any], obj: Any) -> None:
        self.params = params
        self.obj = obj

    def find_root(self) -> FastInvocation:
        return self


class Plan:
    """A command line the fast path understood: which command, and the values click would
    have passed its root and the command."""

    def __init__(self, command: str, root: dict[str, Any], values: dict[str, Any]) -> None:
        self.command = command
        self.root = root
        self.values = values

    def run(self) -> None:
        from mynakit.cli.context import CliContext
        from mynakit.cli.util import configure_logging

        context = CliContext(reader=self.root["reader"], trace=self.root["trace"])
        if context.reader.virtual_card is not None or context.reader.nfc_reader is not None:
            # The virtual card's and nfcpy's modules log through logging: set it up as the root
            # command does. On a PC/SC reader nothing logs at WARNING or above (-v goes to
            # click), so there the import is saved.
            configure_logging(0)
        try:
            BODIES[self.command](FastInvocation(self.root, context), **self.values)
        finally:
            context.close()


def root_help_for(arguments: list[str]) -> str | None:
    """``mynakit --help`` (or ``-h``) alone: click's text for it, as generated, when click would
    print it at that width; None for every other line, and on a terminal narrower than 80
    columns, where click wraps the text differently."""
    if len(arguments) != 1 or arguments[0] not in ROOT_HELP["options"]:
        return None
    import shutil  # click sizes its help by shutil's terminal size (click.formatting)

    if min(shutil.get_terminal_size().columns, 80) - 2 != ROOT_HELP["width"]:
        return None
    text: str = ROOT_HELP["text"]
    return text


def plan_for(arguments: list[str]) -> Plan | None:
    """The plan for ``arguments`` (global options already moved to the front by ``main``), or
    None when the fast path does not understand every word of it."""
    root = _parse(COMMANDS[""], arguments, stop_at_positional=True)
    if root is None:
        return None
    root_values, rest = root
    for command, spec in COMMANDS.items():
        words = command.split()
        if not words or rest[: len(words)] != words:
            continue
        parsed = _parse(spec, rest[len(words) :], stop_at_positional=False)
        if parsed is None:
            return None
        return Plan(command, root_values, parsed[0])
    return None


def _parse(
    spec: dict[str, Any], words: list[str], *, stop_at_positional: bool
) -> tuple[dict[str, Any], list[str]] | None:
    """The values of ``spec``'s parameters in ``words`` and the words left over (with
    ``stop_at_positional``, from the first positional word on); None on anything click would
    read differently or reject."""
    options: dict[str, str] = spec["options"]
    flags: list[str] = spec["flags"]
    choices: dict[str, list[str]] = spec["choices"]
    arguments: list[str] = spec["arguments"]
    given: dict[str, Any] = {}
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == END_OF_OPTIONS:
            return None
        if not word.startswith("-") or word == "-":
            if stop_at_positional:
                index -= 1
                break
            positional.append(word)
            continue
        option, has_value, attached = word.partition("=")
        if has_value and not option.startswith("--"):
            return None  # -x=... : click reads it as a short option with "=..." attached
        name = options.get(option)
        if name is None or name in spec["not_taken"] or name in given:
            return None
        if name in flags:
            if has_value:
                return None
            given[name] = True
            continue
        if has_value:
            value = attached
        elif index < len(words):
            value = words[index]
            index += 1
        else:
            return None
        if name in choices and value not in choices[name]:
            return None
        given[name] = value
    if stop_at_positional:
        rest = words[index:]
    else:
        if len(positional) != len(arguments):
            return None
        given.update(zip(arguments, positional, strict=True))
        rest = []
    for name, variable in spec["environment"].items():
        if name not in given and os.environ.get(variable):
            given[name] = os.environ[variable]
    return {**spec["defaults"], **given}, rest
