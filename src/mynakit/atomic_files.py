"""The one way mynakit writes a file it keeps: whole or not at all, with an explicit mode.

Every file of a virtual card and of the sandbox issuer, and the card-profile cache
(``mynakit.profiles``), goes through :func:`write_atomic`: the data
goes to a temporary file beside the target, is flushed to disk (``fsync``), given its mode, and
renamed over the target (``os.replace``, atomic on POSIX). A reader, or a crash, sees the old
content or the new one, never half of it.

Modes say who may read what. Files holding personal data (card files, the persona, PIN reference
data, private keys, signature certificates with basic-4 information, docs/card.md §9.2) are
``PRIVATE_FILE`` (0600) in ``PRIVATE_FOLDER`` (0700) folders; public artefacts (the sandbox roots,
CRLs, the card CA's public key) are ``PUBLIC_FILE`` (0644).

:func:`parse_json_object` is the matching reader for the JSON files: any fault is one
``DataError`` that names the file. :class:`FileLock` serialises read-modify-write cycles across
processes and threads (``fcntl.flock`` on a lock file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mynakit.errors import DataError

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_FOLDER = 0o700
PUBLIC_FOLDER = 0o755

_READ_ONLY_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` by ``data`` atomically; the file ends with permission bits ``mode``."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise _unwritable(path.parent, error) from None
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _unwritable(path, error) from None
        raise


def ensure_folder(path: Path, *, mode: int) -> Path:
    """Create ``path`` with ``mode`` if needed (missing parents too, so a private folder never
    sits in a world-readable one made on the way); an existing folder is only tightened to
    ``mode``, never opened up. Return it."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        for folder in reversed(missing):
            folder.mkdir(mode=mode, exist_ok=True)
            os.chmod(folder, mode)  # mkdir's mode is filtered by the umask
        current = path.stat().st_mode & 0o777
        if current & ~mode:
            os.chmod(path, current & mode)
    except OSError as error:
        raise _unwritable(path, error) from None
    return path


def check_writable(folder: Path, what: str) -> None:
    """Raise ``DataError`` naming ``folder`` unless this process may create files in it
    (``access(2)`` also reports a read-only file system, even to root)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{what} {folder} is read-only: nothing could be saved")


def parse_json_object(data: bytes, where: Path) -> dict[str, Any]:
    """``data`` as a JSON object (UTF-8, RFC 8259 §8.1); ``where`` names the file in errors."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{where} is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{where} is not valid JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise DataError(f"{where} does not hold a JSON object")
    return document


class FileLock:
    """An exclusive lock on ``path`` (created 0600 if missing) for other processes and other
    threads; re-entrant within the thread that holds it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self._what = what
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._descriptor: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._descriptor = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._descriptor is not None:
                    descriptor, self._descriptor = self._descriptor, None
                    os.close(descriptor)  # closing the descriptor releases the flock

    def _acquire(self) -> int:
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        except OSError as error:
            raise DataError(f"cannot open {self._what} {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor


def _unwritable(path: Path, error: OSError) -> DataError:
    if error.errno in _READ_ONLY_ERRORS:
        return DataError(f"cannot write {path}: {error.strerror} (read-only folder?)")
    return DataError(f"cannot write {path}: {error.strerror or error}")
