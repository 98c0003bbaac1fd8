"""Run ``mynakit`` in-process through ``main()``, the CLI's one error boundary, as every CLI test
does: what a test sees (stdout, stderr, exit code) is what a user of the installed script sees,
error messages and exit codes included.

The command sees ``MYNAKIT_HOME`` set to the test's home directory, so card state, the sandbox
issuer and trust files never leave the test's temporary directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from mynakit.cli.main import main
from mynakit.errors import MynakitError


@dataclass(frozen=True)
class CliResult:
    """What one run of ``main()`` left behind."""

    exit_code: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", errors="replace")

    @property
    def output(self) -> str:
        """stdout and stderr together, for assertion messages."""
        return self.stdout + self.stderr

    @property
    def error_line(self) -> str:
        """The one ``Error: ...`` line of a failed run (fails if there is not exactly one)."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("Error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]


def run_main(
    arguments: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    fast_path: bool = True,
) -> CliResult:
    """``main(arguments)`` with stdin, stdout and stderr captured and ``env`` set; the exit
    code is the one ``main`` exits with (0 when it returns). ``fast_path=False`` makes ``main``
    run the command through click even where its fast path would take it."""
    runner = CliRunner()
    with runner.isolation(input=stdin, env=env) as (stdout, stderr, _):
        try:
            main(list(arguments), fast_path=fast_path)
            exit_code = 0
        except SystemExit as exit_request:
            code = exit_request.code
            exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        stdout_bytes = stdout.getvalue()
        stderr_bytes = stderr.getvalue() if stderr is not None else b""
    return CliResult(exit_code, stdout_bytes, stderr_bytes)


def invoke(
    home: Path,
    reader: str | None,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    as_json: bool = True,
) -> CliResult:
    """``mynakit [--reader READER] [--json] ARGS...`` with ``MYNAKIT_HOME=home`` plus ``env``.

    ``reader`` None leaves ``--reader`` out (commands that need no card, or pick the reader
    themselves).
    """
    options = (["--reader", reader] if reader is not None else []) + (["--json"] if as_json else [])
    return run_main([*options, *args], env={"MYNAKIT_HOME": str(home), **(env or {})}, stdin=stdin)


def ok_json(result: CliResult) -> dict[str, Any]:
    """The JSON object the command printed, after checking it exited with 0."""
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def error_json(result: CliResult, exit_code: int) -> dict[str, Any]:
    """The ``{"error": ..., "exit_code": ...}`` object a failed ``--json`` run printed on
    stdout, after checking the exit code, that stdout holds nothing else and that stderr holds
    one error line and no traceback."""
    assert result.exit_code == exit_code, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict) and data["exit_code"] == exit_code, data
    assert "Traceback" not in result.stderr, result.stderr
    return data


def fails_with(result: CliResult, *error_classes: type[MynakitError]) -> str:
    """The one ``Error:`` line of a run that failed as one of ``error_classes`` would (their
    exit code), with no traceback; fails the test otherwise."""
    codes = {error_class.exit_code for error_class in error_classes}
    assert result.exit_code in codes, (result.exit_code, codes, result.output)
    assert "Traceback" not in result.output, result.output
    return result.error_line
