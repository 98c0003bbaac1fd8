"""Wall time of ``mynakit --help`` (issue: under 0.3 s): median of 15 runs of the installed script.

Run: .venv/bin/python tools/bench/bench_cli_startup.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    script = Path(sys.executable).with_name("mynakit")
    command = [str(script)] if script.exists() else [shutil.which("mynakit") or "mynakit"]
    samples = []
    for _ in range(15):
        start = time.perf_counter()
        subprocess.run([*command, "--help"], check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    print(
        f"mynakit --help: median {statistics.median(samples) * 1000:.0f} ms, "
        f"max {max(samples) * 1000:.0f} ms over {len(samples)} runs"
    )


if __name__ == "__main__":
    main()
