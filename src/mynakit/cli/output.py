"""Output for every command: a dict rendered as JSON (``--json``) or as text.

Results go to stdout; prompts, progress and warnings go to stderr (``note``), so ``--json``
output can always be piped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex().upper()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)


def render_text(data: Any, indent: int = 0) -> str:
    """A plain ``key: value`` rendering of nested dicts and lists."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            label = str(key).replace("_", " ")
            if isinstance(value, Mapping | list | tuple) and value:
                lines.append(f"{pad}{label}:")
                lines.append(render_text(value, indent + 1))
            else:
                lines.append(f"{pad}{label}: {_scalar(value)}")
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for item in data:
            if isinstance(item, Mapping):
                rendered = render_text(item, indent + 1).lstrip()
                lines.append(f"{pad}- {rendered}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(data)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, bytes):
        return value.hex(" ").upper()
    if isinstance(value, list | tuple) and not value:
        return "none"
    return str(_json_default(value)) if not isinstance(value, str | int | float) else str(value)


def emit(ctx: click.Context, data: Mapping[str, Any], text: str | None = None) -> None:
    """Print a command's result: JSON with ``--json``, else ``text`` or a rendering of ``data``."""
    root = ctx.find_root()
    as_json = bool(root.params.get("as_json"))
    if as_json:
        click.echo(to_json(data))
    else:
        click.echo(text if text is not None else render_text(data))


def note(message: str) -> None:
    """Progress or a warning for a person: stderr, never mixed into results."""
    click.echo(message, err=True)
