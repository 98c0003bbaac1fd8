"""``LazyGroup``: a click group whose subcommands are imported on first use, so that ``--help``
lists every command without importing any of them. Command modules get it through
``mynakit.cli.util.lazy_group``; it lives apart from util because it needs click's classes at
import, and util is imported by the fast path, which must not import click
(docs/architecture.md §10).
"""

from __future__ import annotations

import importlib
from typing import Any

import click


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
