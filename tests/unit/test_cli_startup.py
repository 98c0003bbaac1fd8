"""``mynakit --help`` must start fast (issue: under 0.3 s). Timing is for the benchmark
(tools/bench/bench_cli_startup.py); this test pins the cause deterministically: the root command
imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = ("cryptography", "smartcard", "pyhanko", "asn1crypto", "PIL", "mynakit.emulator")


def test_help_imports_no_heavy_module() -> None:
    probe = (
        "import sys\n"
        "from mynakit.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}]\n"
        "print('HEAVY=' + ','.join(sorted(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "Commands:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_help_lists_every_group() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mynakit.cli", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("readers", "card", "apdu", "jpki", "wait"):
        assert f"  {group} " in result.stdout
