"""``mynakit --help`` must start fast (target: a median of 50 ms, measured by
tools/bench/bench_cli_startup.py, never by a test); this test pins the cause deterministically:
the root command and a group's help import none of the heavy libraries. What ``jpki cert`` and
``jpki pkey sign`` import on their way to the card is pinned in tests/pcsc (they need a reader)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.startup import NOT_ON_THE_FAST_PATH, PYSCARD_BEYOND_THE_EXTENSION

pytestmark = pytest.mark.unit

HEAVY = ("cryptography", "smartcard", "pyhanko", "asn1crypto", "PIL", "mynakit.emulator")


@pytest.mark.parametrize("arguments", [["--help"], ["jpki", "--help"], ["jpki", "cert", "--help"]])
def test_help_imports_no_heavy_module(arguments: list[str]) -> None:
    probe = (
        "import sys\n"
        "from mynakit.cli.main import main\n"
        "try:\n"
        f"    main({arguments!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}]\n"
        "print('HEAVY=' + ','.join(sorted(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "Usage: mynakit" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_help_lists_every_group() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mynakit.cli", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("readers", "card", "apdu", "jpki", "wait"):
        assert f"  {group} " in result.stdout


#: What the fast path of ``jpki cert`` and ``jpki pkey sign`` imports on its way to a PC/SC
#: reader (docs/architecture.md §10); tests/pcsc runs the commands themselves.
FAST_PATH_MODULES = (
    "mynakit.cli.main",
    "mynakit.cli.fast_path",
    "mynakit.cli.context",
    "mynakit.transport.pcsc",
    "mynakit.transport.trace",
    "mynakit.transport.limits",
    "mynakit.card.jpki",
    "mynakit.jpki.inputs",
)


def test_the_fast_path_imports_none_of_the_slow_modules() -> None:
    probe = (
        "import sys\n"
        f"for name in {FAST_PATH_MODULES!r}:\n"
        "    __import__(name)\n"
        "from mynakit.cli.fast_path import plan_for\n"
        "assert plan_for(['jpki', 'cert', '-f', 'der', '-o', 'x']) is not None\n"
        f"found = [m for m in sys.modules if m.split('.')[0] in {NOT_ON_THE_FAST_PATH!r}\n"
        f"         or m in {NOT_ON_THE_FAST_PATH + PYSCARD_BEYOND_THE_EXTENSION!r}]\n"
        "print('BINDING=' + str('smartcard.scard._scard' in sys.modules))\n"
        "print('FOUND=' + ','.join(sorted(found)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-2:] == ["BINDING=True", "FOUND="]
