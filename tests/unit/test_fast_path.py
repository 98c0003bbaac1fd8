"""The fast path (docs/architecture.md §10): its spec is what the click commands declare, it
takes exactly the command lines it understands and leaves every other one to click, and it
calls the commands' bodies with the values click would."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from mynakit.cli import fast_path, jpki_cert, util
from mynakit.cli.context import get_context
from mynakit.cli.fast_path import BODIES, plan_for, root_help_for
from mynakit.cli.fast_path_spec import COMMANDS, ROOT_HELP
from mynakit.cli.main import hoist_global_options, main
from mynakit.cli.root import FAST_PATH_COMMANDS, fast_path_spec, root_help
from support.cli import run_main

pytestmark = pytest.mark.unit

#: Command lines the fast path takes: every option of both commands, each spelling of a value
#: (separate word, ``--long=value``), global options before and after the command.
TAKEN = [
    ["jpki", "cert"],
    ["--json", "jpki", "cert", "-t", "sign", "--pin-stdin", "--force"],
    ["jpki", "cert", "--type=auth_ca", "--format", "der", "-o", "-"],
    ["jpki", "cert", "-t", "signature", "-f", "pem", "--output=cert.pem", "--show-personal"],
    ["jpki", "cert", "-t", "nonsense"],  # the body refuses it, as it does under click
    ["jpki", "cert", "--reader", "virtual:alice", "-t", "auth", "--json"],
    ["--trace", "jpki", "cert", "-f", "der", "-o", "auth.der"],
    ["-r", "Some Reader", "jpki", "pkey", "sign", "in.txt"],
    ["jpki", "pkey", "sign", "-t", "auth", "-", "-d", "sha512", "--raw", "-o", "sig", "--json"],
    ["--reader=Some Reader", "jpki", "pkey", "sign", "--digest=sha1", "in.txt", "--force"],
    ["jpki", "pkey", "sign", "--pin-stdin", "--type", "sign", "in.txt", "--output", "out.sig"],
    ["jpki", "pkey", "sign", "-o", "--raw", "in.txt"],  # click too takes "--raw" as -o's value
]

#: Command lines it leaves to click: help, version, verbosity, short options run together,
#: a missing or extra word, a value outside its choices, a repeated option, ``--``, other
#: commands.
DECLINED = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["jpki", "cert", "--help"],
    ["jpki", "cert", "-h"],
    ["-v", "jpki", "cert"],
    ["jpki", "cert", "-vv"],
    ["--verbose", "jpki", "pkey", "sign", "in.txt"],
    ["jpki", "cert", "-tauth"],
    ["jpki", "cert", "-f=der"],
    ["jpki", "cert", "-t"],
    ["jpki", "cert", "-f", "txt"],
    ["jpki", "cert", "-t", "auth", "-t", "sign"],
    ["jpki", "cert", "--force=yes"],
    ["jpki", "cert", "--unknown"],
    ["jpki", "cert", "extra"],
    ["jpki", "cert", "-t", "-f", "der"],
    ["jpki", "pkey", "sign"],
    ["jpki", "pkey", "sign", "a", "b"],
    ["jpki", "pkey", "sign", "-d", "md5", "in.txt"],
    ["jpki", "pkey", "sign", "--", "-in.txt"],
    ["jpki", "pkey", "verify", "in.txt", "sig"],
    ["jpki", "cms", "sign", "in.txt"],
    ["jpki"],
    ["card", "info"],
    [],
]


def test_the_spec_is_what_the_click_commands_declare() -> None:
    """Fails after an option of the root, ``jpki cert`` or ``jpki pkey sign`` changed: run
    tools/generate_fast_path_spec.py."""
    assert fast_path_spec() == COMMANDS


def test_the_root_help_is_what_click_prints() -> None:
    """Fails after the root's options, its docstring or a group's one-line help changed: run
    tools/generate_fast_path_spec.py."""
    assert root_help() == ROOT_HELP


@pytest.mark.parametrize("arguments", [["--help", "--json"], ["jpki", "--help"], ["-hv"], []])
def test_only_the_root_help_alone_is_printed_without_click(arguments: list[str]) -> None:
    assert root_help_for(arguments) is None


@pytest.mark.parametrize("columns", ["80", "200", "79", "40"])
@pytest.mark.parametrize("option", ["--help", "-h"])
def test_the_root_help_reads_the_same_either_way(columns: str, option: str) -> None:
    """Through the fast path (no click) from 80 columns on, through click below, where click
    wraps the text to the terminal: the same bytes on stdout either way, exit code 0."""
    probe = (
        "import sys\n"
        "from mynakit.cli.main import main\n"
        "try:\n"
        f"    main([{option!r}], fast_path=sys.argv[1] == 'fast')\n"
        "except SystemExit as exit_request:\n"
        "    assert not exit_request.code, exit_request.code\n"
        "print('CLICK=' + str('click' in sys.modules), file=sys.stderr)\n"
    )
    environment = {**os.environ, "COLUMNS": columns}
    runs = {
        path: subprocess.run(
            [sys.executable, "-c", probe, path],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
        )
        for path in ("fast", "click")
    }
    assert runs["fast"].stdout == runs["click"].stdout
    assert runs["fast"].stdout.startswith("Usage: mynakit [OPTIONS] COMMAND [ARGS]...")
    assert runs["fast"].stderr.strip() == f"CLICK={int(columns) < 80}"


def test_every_fast_path_command_has_its_body() -> None:
    names = {" ".join(path) for path in FAST_PATH_COMMANDS}
    assert set(BODIES) == names == set(COMMANDS) - {""}


@pytest.mark.parametrize("arguments", TAKEN, ids=" ".join)
def test_takes_what_it_understands(arguments: list[str]) -> None:
    assert plan_for(hoist_global_options(arguments)) is not None


@pytest.mark.parametrize("arguments", DECLINED, ids=lambda words: " ".join(words) or "nothing")
def test_leaves_everything_else_to_click(arguments: list[str]) -> None:
    assert plan_for(hoist_global_options(arguments)) is None


def _recorder(body: Callable[..., None], calls: list[dict[str, Any]]) -> Callable[..., None]:
    """Stands in for a command's body: records what it was called with, named, plus what the
    body would read from the root (``--json``, the reader, ``--trace``)."""

    def record(ctx: Any, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(body).bind(ctx, *args, **kwargs).arguments
        context = get_context(ctx)
        calls.append(
            {
                **{name: value for name, value in bound.items() if name != "ctx"},
                "root": (util.wants_json(ctx), context.reader, context.trace),
            }
        )
        context.close()

    return record


@pytest.mark.parametrize("arguments", TAKEN, ids=" ".join)
@pytest.mark.parametrize("reader_variable", [None, "Reader From The Environment"])
def test_the_bodies_get_what_click_would_give_them(
    arguments: list[str], reader_variable: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if reader_variable is None:
        monkeypatch.delenv("MYNAKIT_READER", raising=False)
    else:
        monkeypatch.setenv("MYNAKIT_READER", reader_variable)
    calls: list[dict[str, Any]] = []
    for name, body in (
        ("read_certificate_command", util.read_certificate_command),
        ("sign_command", util.sign_command),
    ):
        recorder = _recorder(body, calls)
        monkeypatch.setattr(jpki_cert, name, recorder)
        for command, fast_body in list(BODIES.items()):
            if fast_body is body:
                monkeypatch.setitem(fast_path.BODIES, command, recorder)
    main(list(arguments), fast_path=True)
    main(list(arguments), fast_path=False)
    assert len(calls) == 2
    assert calls[0] == calls[1]


@pytest.mark.parametrize(
    "failure", [KeyboardInterrupt(), BrokenPipeError(32, "Broken pipe"), RuntimeError("bug")]
)
def test_an_interrupted_or_failing_body_ends_alike(
    failure: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(jpki_cert, "read_certificate_command", fail)
    monkeypatch.setitem(fast_path.BODIES, "jpki cert", fail)
    arguments = ["--json", "jpki", "cert", "-f", "der", "-o", "out.der"]
    fast = run_main(arguments, fast_path=True)
    slow = run_main(arguments, fast_path=False)
    assert (fast.exit_code, fast.stdout, fast.stderr) == (slow.exit_code, slow.stdout, slow.stderr)
    assert fast.exit_code in (1, 70, 130)
