"""Wall time of ``mynakit --help``: median of 15 runs of the installed script; target (issue 8):
a median of at most 50 ms on the build machine. ``python -c "import click"`` is timed beside it,
interleaved: what the line would cost if it went through click. The root's help alone is
printed by the fast path from the text generated from click (docs/architecture.md §10), so it
costs the interpreter and ``mynakit.cli.main``'s imports; ``jpki --help`` and every other help
still go through click.

mynakit's source is compiled to bytecode first, as an installed package is (with
``PYTHONDONTWRITEBYTECODE`` set every run would otherwise compile what it imports).

Run: .venv/bin/python tools/bench/bench_cli_startup.py
"""

from __future__ import annotations

import compileall
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mynakit

RUNS = 15
TARGET_MILLISECONDS = 50.0


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    compileall.compile_dir(Path(mynakit.__file__).parent, quiet=1)
    script = Path(sys.executable).with_name("mynakit")
    command = [str(script)] if script.exists() else [shutil.which("mynakit") or "mynakit"]
    help_command = [*command, "--help"]
    floor_command = [sys.executable, "-c", "import click"]
    _seconds(help_command)  # warm-up: page cache
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        samples[0].append(_seconds(help_command))
        samples[1].append(_seconds(floor_command))
    median = statistics.median(samples[0]) * 1000
    floor = statistics.median(samples[1]) * 1000
    verdict = "met" if median <= TARGET_MILLISECONDS else "NOT met"
    print(
        f"mynakit --help: median {median:.0f} ms, max {max(samples[0]) * 1000:.0f} ms over "
        f"{RUNS} runs (target {TARGET_MILLISECONDS:.0f} ms: {verdict}); "
        f'python -c "import click": median {floor:.0f} ms'
    )


if __name__ == "__main__":
    main()
