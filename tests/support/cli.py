"""Run the ``mynakit`` click command in-process, as every CLI test does.

The command sees ``MYNAKIT_HOME`` set to the test's home directory, so card state, the sandbox
issuer and trust files never leave the test's temporary directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from mynakit.cli.main import cli


def invoke(
    home: Path,
    reader: str | None,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    as_json: bool = True,
    raise_errors: bool = False,
) -> Result:
    """``mynakit [--reader READER] [--json] ARGS...`` with ``MYNAKIT_HOME=home`` plus ``env``.

    ``reader`` None leaves ``--reader`` out (commands that need no card, or pick the reader
    themselves). ``raise_errors`` re-raises an exception the command let out (anything but
    click's own ``SystemExit``), for tests that match it with ``pytest.raises`` or want its
    traceback rather than an exit code.
    """
    options = (["--reader", reader] if reader is not None else []) + (["--json"] if as_json else [])
    result = CliRunner().invoke(
        cli, [*options, *args], env={"MYNAKIT_HOME": str(home), **(env or {})}, input=stdin
    )
    if (
        raise_errors
        and result.exception is not None
        and not isinstance(result.exception, SystemExit)
    ):
        raise result.exception
    return result


def ok_json(result: Result) -> dict[str, Any]:
    """The JSON object the command printed, after checking it exited with 0."""
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data
