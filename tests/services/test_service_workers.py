"""``mynakit mykey serve --workers 2``: a worker that dies is replaced and the server keeps
answering; the server stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mynakit.emulator.issuer import SandboxIssuer

pytestmark = pytest.mark.services

# Readiness and replacement are polled, never timed: these bound how long the test waits.
WAIT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _workers(parent: int) -> set[int]:
    """The live child processes of ``parent`` (the worker processes), from /proc."""
    children: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(pid) for pid in text)
    return {pid for pid in children if _is_worker(pid)}


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    # multiprocessing's spawn start method runs the worker as `python -c "from
    # multiprocessing.spawn import spawn_main; ..."`; its resource tracker is a child too.
    return b"spawn_main" in command


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting: {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_dead_worker_is_replaced_and_the_server_keeps_answering(tmp_path: Path) -> None:
    SandboxIssuer.open_or_create(tmp_path / "issuer")  # the platform's issuer link needs one
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mynakit.cli",
            "mykey",
            "--database",
            f"sqlite:///{tmp_path / 'services.sqlite3'}",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env={**os.environ, "MYNAKIT_HOME": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until(lambda: _answers(url) and len(_workers(server.pid)) == 2, "two workers")
        first, second = sorted(_workers(server.pid))
        os.kill(first, signal.SIGKILL)
        _wait_until(
            lambda: first not in _workers(server.pid) and len(_workers(server.pid)) == 2,
            "a new worker in place of the killed one",
        )
        assert second in _workers(server.pid)
        _wait_until(lambda: _answers(url), "the server answering again")
        assert server.poll() is None
    finally:
        server.terminate()
        code = server.wait(timeout=WAIT_SECONDS)
        log.close()
    assert code == 0, (tmp_path / "server.log").read_text()[-2000:]
    assert (
        "worker 0 stopped" in (tmp_path / "server.log").read_text()
        or "worker 1 stopped" in (tmp_path / "server.log").read_text()
    )
