"""pcscd with the vpcd driver, for the virtual card: a private one, or reuse, start, stop.

Only one pcscd can own ``/run/pcscd`` on a machine, and Debian's pcscd 1.9.9 cannot be given a
private socket (docs/testing.md, "One pcscd per machine"). On a developer's laptop that pcscd
serves the real reader and must not be stopped or replaced. So, where the machine allows it
(root, or unprivileged user namespaces), the pcsc test tier and the pcscd benchmarks run inside a
private mount and network namespace: a tmpfs over ``/run/pcscd`` and the namespace's own loopback,
where a pcscd of their own loads vpcd on its own ports (``private_namespace_command``,
``reexec_in_private_namespace``). Inside it, or where no namespace can be made, ``ensure_pcscd``
reuses a running pcscd that has vpcd loaded (``Virtual PCD 00 00`` listed), or starts
``pcscd -f`` itself as a child process (not through systemd, whose unit adds ``--auto-exit`` and
would close vpcd's listener after 60 s idle, docs/testing.md §5.2); ``PcscdSession.stop`` stops
only a pcscd it started. An empty ``/run/pcscd`` in a namespace made by someone else (a wrapper
such as ``unshare -m -n``) therefore means "start one".

Missing Debian packages are installed only as root and only when CI (``CI=true``) or
``MYNAKIT_INSTALL_PCSC=1`` allows it. Used by the pcsc test tier (``pcsc_fixtures``), by
``mynakit demo --pcsc``, by ``tools/pcscd_manager.py`` and by the benchmarks under tools/bench.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NoReturn

from mynakit.emulator.vpcd import DEFAULT_PORT, VpcdBridge, VpcdCard, vpcd_reader_name
from mynakit.errors import TransportError
from mynakit.transport.base import NoServiceError
from mynakit.transport.pcsc import establish_context, reader_names, release_context
from mynakit.transport.readers import list_readers, wait_for_card

logger = logging.getLogger("mynakit.emulator.pcscd")

VPCD_READER = vpcd_reader_name(DEFAULT_PORT)
READER_CONF_DIR = Path("/etc/reader.conf.d")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
DEBIAN_PACKAGES = ("pcscd", "vsmartcard-vpcd", "opensc")
INSTALL_ENV = "MYNAKIT_INSTALL_PCSC"
STARTUP_TIMEOUT = 15.0
#: How long pcscd may take to notice a card going in or out (it polls vpcd every 0.4 s).
CARD_EVENT_TIMEOUT = 5.0


#: Set by ``private_namespace_command`` for the processes inside; "off" disables the namespace.
NAMESPACE_ENV = "MYNAKIT_PCSCD_NAMESPACE"
NAMESPACE_MARK = "private"
PCSCD_RUN_DIR = Path("/run/pcscd")
# Runs inside the new namespace: an empty /run/pcscd of its own and the loopback up, then the
# command. "$0" is the ip binary, "$@" the command.
_NAMESPACE_SCRIPT = (
    "mkdir -p /run/pcscd && mount -t tmpfs -o mode=0755 tmpfs /run/pcscd"
    ' && "$0" link set lo up && exec "$@"'
)


class PcscdUnavailableError(TransportError):
    """pcscd or vpcd is not installed and may not be installed here: the tier cannot run."""


class PcscdSetupError(TransportError):
    """pcscd is there but not usable for the tests (no vpcd loaded, failed to start)."""


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def installation_allowed() -> bool:
    """Installing Debian packages needs root, and consent: CI, or MYNAKIT_INSTALL_PCSC=1."""
    consent = is_ci() or os.environ.get(INSTALL_ENV, "").strip() == "1"
    return consent and os.geteuid() == 0


def vpcd_configured(conf_dir: Path = READER_CONF_DIR) -> bool:
    """Whether a reader.conf.d entry loads vpcd's driver (what pcscd reads at start-up)."""
    if not conf_dir.is_dir():
        return False
    return any(
        "libifdvpcd" in path.read_text(errors="replace")
        for path in sorted(conf_dir.iterdir())
        if path.is_file()
    )


def running_pcscd_readers() -> list[str] | None:
    """The readers of the running pcscd, or ``None`` if no pcscd answers."""
    try:
        context = establish_context()
    except NoServiceError:
        return None
    try:
        return reader_names(context)
    finally:
        release_context(context)


def missing_packages() -> list[str]:
    missing = []
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        missing.append("pcscd")
    if not VPCD_DRIVER.exists():
        missing.append("vsmartcard-vpcd")
    if shutil.which("opensc-tool") is None:
        missing.append("opensc")
    return missing


def install_packages(packages: list[str]) -> None:
    """apt-get install, non-interactively; refreshes the package lists first."""
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        logger.info("running %s", " ".join(command))
        # Fixed argument lists, no shell: S603 does not apply.
        result = subprocess.run(  # noqa: S603
            command, env=environment, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise PcscdSetupError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-500:]}"
            )


def in_private_namespace() -> bool:
    """Whether this process runs with a /run/pcscd of its own (our namespace, or a wrapper's).

    Set-ups made here mark their processes. A wrapper's namespace (``unshare -m -n`` plus a tmpfs
    over /run/pcscd) is recognised by /run/pcscd being a mount point: on a plain machine it is a
    directory inside /run."""
    if os.environ.get(NAMESPACE_ENV) == NAMESPACE_MARK:
        return True
    return os.path.ismount(PCSCD_RUN_DIR)


def _unshare_arguments() -> list[str] | None:
    """``unshare`` with the options this machine allows: as root, or in a user namespace."""
    unshare = shutil.which("unshare")
    ip = shutil.which("ip") or next(
        (path for path in ("/usr/sbin/ip", "/sbin/ip") if Path(path).exists()), None
    )
    if unshare is None or ip is None or not sys.platform.startswith("linux"):
        return None
    user_namespace = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [
        unshare,
        *user_namespace,
        "--mount",
        "--net",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        _NAMESPACE_SCRIPT,
        ip,
    ]


@cache
def private_namespace_possible() -> bool:
    """Whether a private mount + network namespace with its own /run/pcscd can be made here:
    tried once, with ``true`` as the command."""
    arguments = _unshare_arguments()
    if arguments is None:
        return False
    try:
        # Fixed arguments, no shell of ours: S603 does not apply.
        result = subprocess.run(  # noqa: S603
            [*arguments, "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def private_namespace_command(command: Sequence[str]) -> list[str] | None:
    """``command`` wrapped to run in a new private namespace, or ``None`` where this machine
    cannot make one (then the caller runs it as it is and ``ensure_pcscd`` reuses or starts the
    machine's pcscd)."""
    if not private_namespace_possible():
        return None
    arguments = _unshare_arguments()
    return None if arguments is None else [*arguments, *command]


def namespace_wanted() -> bool:
    """A namespace is made unless one is in place already, the user turned it off
    (``MYNAKIT_PCSCD_NAMESPACE=off``), or the pcsc packages are missing: installing them needs the
    network, which the namespace does not have."""
    if in_private_namespace() or os.environ.get(NAMESPACE_ENV, "").lower() == "off":
        return False
    return not missing_packages()


def reexec_in_private_namespace(command: Sequence[str], cwd: Path | None = None) -> None:
    """Replace this process by ``command`` run inside a new private namespace, when one is wanted
    and possible; return (doing nothing) otherwise."""
    if not namespace_wanted():
        return
    wrapped = private_namespace_command(command)
    if wrapped is None:
        return
    _exec(wrapped, cwd)


def _exec(command: list[str], cwd: Path | None) -> NoReturn:
    if cwd is not None:
        os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, {**os.environ, NAMESPACE_ENV: NAMESPACE_MARK})  # noqa: S606


def pcscd_arrangement() -> str:
    """One line saying how this process gets its pcscd (for test and benchmark headers)."""
    if in_private_namespace():
        return (
            f"private mount + network namespace (own {PCSCD_RUN_DIR}, own loopback): "
            "a pcscd with vpcd is reused if one runs in it, else one is started and stopped here"
        )
    reason = (
        "turned off by MYNAKIT_PCSCD_NAMESPACE=off"
        if os.environ.get(NAMESPACE_ENV, "").lower() == "off"
        else "this machine allows none (not root, no user namespaces)"
        if not private_namespace_possible()
        else "pcsc packages missing (installed first, outside any namespace)"
        if missing_packages()
        else "not entered by this command"
    )
    return (
        f"the machine's pcscd, no private namespace ({reason}): a pcscd with vpcd is reused, "
        "else one is started in the foreground and only that one is stopped"
    )


@dataclass
class PcscdSession:
    """The pcscd the tests use: reused, or started (and later stopped) by us."""

    started_by_us: bool
    readers: list[str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop pcscd if, and only if, we started it."""
        if not self.started_by_us or self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None


def ensure_pcscd(
    log_dir: Path,
    *,
    allow_install: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> PcscdSession:
    """A pcscd with vpcd loaded: the running one, or one started here.

    Raises ``PcscdUnavailableError`` when the packages are missing and may not be installed, and
    ``PcscdSetupError`` when pcscd runs without vpcd or does not come up.
    """
    readers = running_pcscd_readers()
    if readers is not None:
        if VPCD_READER in readers:
            return PcscdSession(started_by_us=False, readers=readers)
        raise PcscdSetupError(_without_vpcd_message(readers))

    missing = missing_packages()
    if missing:
        if not allow_install:
            raise PcscdUnavailableError(
                f"the pcsc test tier needs the Debian packages {', '.join(missing)}: install them "
                f"(sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}), or run the tests as root "
                f"with {INSTALL_ENV}=1 (or CI=true) to let the set-up install them"
            )
        install_packages(list(DEBIAN_PACKAGES))
        # The pcscd package may have started (socket-activated) a daemon of its own.
        readers = running_pcscd_readers()
        if readers is not None:
            if VPCD_READER in readers:
                return PcscdSession(started_by_us=False, readers=readers)
            raise PcscdSetupError(_without_vpcd_message(readers))
    if not vpcd_configured():
        raise PcscdSetupError(
            f"no file in {READER_CONF_DIR} loads vpcd (libifdvpcd.so): reinstall "
            "vsmartcard-vpcd (sudo apt-get install --reinstall vsmartcard-vpcd)"
        )
    return _start_pcscd(log_dir, startup_timeout)


def _without_vpcd_message(readers: list[str]) -> str:
    listing = ", ".join(repr(name) for name in readers) or "no readers"
    if vpcd_configured():
        return (
            f"pcscd is running ({listing}) but has not loaded vpcd, although {READER_CONF_DIR} "
            "configures it: pcscd reads that directory only at start-up, so restart pcscd "
            "(sudo systemctl restart pcscd, or stop it and let the tests start their own)"
        )
    return (
        f"pcscd is running ({listing}) without the vpcd virtual reader: install vsmartcard-vpcd "
        f"(sudo apt-get install vsmartcard-vpcd, which adds {READER_CONF_DIR}/vpcd) and restart "
        "pcscd"
    )


def _start_pcscd(log_dir: Path, startup_timeout: float) -> PcscdSession:
    executable = shutil.which("pcscd") or "/usr/sbin/pcscd"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "pcscd.log"
    with log_path.open("wb") as log_file:
        # Foreground, without --auto-exit (docs/testing.md §5.2); its own session so a Ctrl-C
        # aimed at pytest does not kill it before the fixture's teardown stops it.
        process = subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
            [executable, "--foreground"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    session = PcscdSession(started_by_us=True, readers=[], process=process, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            session.process = None
            raise PcscdSetupError(
                f"pcscd exited with status {process.returncode} at start-up:\n{session.log_tail()}"
            )
        readers = running_pcscd_readers()
        if readers is not None and VPCD_READER in readers:
            session.readers = readers
            logger.info("started pcscd (pid %d), readers: %s", process.pid, readers)
            return session
        time.sleep(0.05)
    session.stop()
    raise PcscdSetupError(
        f"pcscd did not list {VPCD_READER!r} within {startup_timeout:g} s:\n{session.log_tail()}"
    )


def wait_for_empty_reader(reader: str, timeout: float = CARD_EVENT_TIMEOUT) -> bool:
    """Wait until pcscd reports ``reader`` without a card; ``False`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(info.name == reader and info.card_present for info in list_readers()):
            return True
        time.sleep(0.02)
    return False


@contextmanager
def card_in_virtual_reader(card: VpcdCard, port: int = DEFAULT_PORT) -> Iterator[VpcdBridge]:
    """Serve ``card`` through vpcd until the block ends; returns once pcscd sees it present,
    and at the end waits until pcscd sees the reader empty, so the next card is a fresh
    insertion."""
    reader = vpcd_reader_name(port)
    if any(info.name == reader and info.card_present for info in list_readers()):
        raise PcscdSetupError(
            f"{reader!r} already holds a card served by another program (a running "
            "'mynakit emulator serve'?): stop it first"
        )
    bridge = VpcdBridge(card, port=port)
    bridge.start()
    try:
        wait_for_card(reader, timeout=CARD_EVENT_TIMEOUT)
        yield bridge
    finally:
        bridge.stop()
        if not wait_for_empty_reader(reader):
            logger.warning("pcscd still reports a card in %s after the bridge stopped", reader)
