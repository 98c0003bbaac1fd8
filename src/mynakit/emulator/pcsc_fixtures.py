"""pytest fixtures that put a virtual card into pcscd (the ``mynakit_pcsc`` plugin).

The pcscd rules (a private namespace where the machine allows it; else reuse one with vpcd, or
start our own and stop only what we started) live in ``mynakit.emulator.pcscd``. A missing pcscd
skips the tier with the reason, except in CI (``CI=true``), where it fails the run instead of
silently skipping it. ``reexec_pytest_in_private_namespace`` is for a test suite's own
``pytest_configure`` (mynakit's tests/conftest.py calls it): pyscard and OpenSC reach a pcscd
through /run/pcscd, so the whole pytest process, not only pcscd, must live in the namespace.

Fixtures: ``pcscd`` (session), ``pcsc_vpcd_bridge``, ``pcsc_virtual_reader``, ``pcsc_connection``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from mynakit.emulator.pcscd import (
    PcscdSession,
    PcscdSetupError,
    PcscdUnavailableError,
    card_in_virtual_reader,
    ensure_pcscd,
    installation_allowed,
    is_ci,
    reexec_in_private_namespace,
)
from mynakit.emulator.vpcd import VpcdBridge, VpcdCard
from mynakit.transport.pcsc import PcscConnection


def reexec_pytest_in_private_namespace(config: pytest.Config) -> None:
    """Run this pytest invocation again, unchanged, inside a private mount + network namespace
    (docs/testing.md §3.2); return where none is wanted or possible. Call it from
    ``pytest_configure``, before anything talks to pcscd."""
    # pytest keeps its output capture suspended during pytest_configure, so the new process
    # inherits the real terminal.
    reexec_in_private_namespace(
        [sys.executable, "-m", "pytest", *config.invocation_params.args],
        cwd=config.invocation_params.dir,
    )


# --- pytest fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscdSession]:
    """A pcscd with vpcd loaded for the whole session; skips (fails in CI) if there is none."""
    try:
        session = ensure_pcscd(
            tmp_path_factory.mktemp("pcscd"), allow_install=installation_allowed()
        )
    except PcscdUnavailableError as error:
        if is_ci():
            pytest.fail(f"CI must run the pcsc tier: {error}", pytrace=False)
        pytest.skip(str(error))
    except PcscdSetupError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def pcsc_vpcd_bridge(pcscd: PcscdSession, virtual_card: VpcdCard) -> Iterator[VpcdBridge]:
    """A vpcd bridge serving ``virtual_card`` in ``Virtual PCD 00 00``, card present in pcscd.

    Tests pull and re-insert the card with ``remove_card()`` / ``insert_card()``.
    """
    try:
        with card_in_virtual_reader(virtual_card) as bridge:
            yield bridge
    except PcscdSetupError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def pcsc_virtual_reader(pcsc_vpcd_bridge: VpcdBridge) -> str:
    """The name of the reader holding the virtual card (``Virtual PCD 00 00``)."""
    return pcsc_vpcd_bridge.reader_name


@pytest.fixture
def pcsc_connection(pcsc_virtual_reader: str) -> Iterator[PcscConnection]:
    """A ``PcscConnection`` to the virtual card through pcscd and vpcd."""
    connection = PcscConnection.open(pcsc_virtual_reader)
    try:
        yield connection
    finally:
        connection.close()
