"""A throwaway PostgreSQL cluster for tests, benchmarks and demos: Debian's ``postgresql``
binaries, ``initdb`` in a temporary folder, the server on a unix socket in that folder (no TCP
port, nothing shared with other processes), stopped and removed afterwards.

PostgreSQL refuses to run as root, so when run by root the cluster belongs to an unprivileged
account (``nobody`` by default) and the folder is handed to it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from mynakit.errors import UsageError

SUPERUSER = "postgres"
DEFAULT_ACCOUNT = "nobody"


def postgres_bin_directory() -> Path:
    """``$MYNAKIT_PG_BIN``, else the newest ``/usr/lib/postgresql/<version>/bin``."""
    configured = os.environ.get("MYNAKIT_PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    if not candidates:
        raise UsageError(
            "PostgreSQL server binaries not found: install Debian's postgresql "
            "(tools/setup.sh does) or set MYNAKIT_PG_BIN"
        )
    return Path(candidates[-1]).parent


class ThrowawayCluster:
    """``with ThrowawayCluster() as cluster: url = cluster.create_database()``."""

    def __init__(self, *, account: str = DEFAULT_ACCOUNT, durable: bool = False) -> None:
        """``durable=False`` turns fsync off: fine for tests (a killed client never loses a
        committed row; only an OS crash would), wrong for a benchmark of production speed."""
        self._bin = postgres_bin_directory()
        self._durable = durable
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam(account)
            self._user = (entry.pw_uid, entry.pw_gid)
        self.directory = Path(tempfile.mkdtemp(prefix="mynakit-pg-"))
        self._data = self.directory / "data"
        self._started = False

    @property
    def socket_directory(self) -> Path:
        return self.directory

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_directory}"

    def start(self) -> ThrowawayCluster:
        if self._user is not None:
            os.chown(self.directory, *self._user)
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-k {self.socket_directory} -c listen_addresses= -c max_connections=200"
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "start",
        )
        self._started = True
        return self

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        database = name or f"t_{uuid.uuid4().hex[:12]}"
        self._run("createdb", "-h", str(self.socket_directory), "-U", SUPERUSER, database)
        return self.url(database)

    def drop_database(self, name: str) -> None:
        self._run("dropdb", "-h", str(self.socket_directory), "-U", SUPERUSER, "--force", name)

    def stop(self) -> None:
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            self._started = False
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self._bin / program), *arguments]
        user, group = self._user if self._user is not None else (None, None)
        result = subprocess.run(  # noqa: S603 - fixed program from the PostgreSQL bin folder
            command,
            capture_output=True,
            text=True,
            user=user,
            group=group,
            cwd=self.directory,
            check=False,
        )
        if result.returncode != 0:
            raise UsageError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()[-500:]}"
            )
