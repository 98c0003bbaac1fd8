"""Test tiers (docs/testing.md §1): every test carries exactly one tier marker; the ``card`` tier
runs only against a real card named by ``--reader``.

When the pcsc tier may run, the whole pytest process moves into a private mount + network
namespace with a pcscd of its own, where the machine allows it (docs/testing.md §3.2); the report
header says which arrangement this run has."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from support.tiers import may_select_tier

TIERS = ("unit", "emulator", "pcsc", "card", "services", "e2e")

# The parsed card profiles are cached per user (docs/architecture.md §10); a test run keeps its
# own cache, shared by every process it starts, and removes it at the end. Set before anything
# loads a profile; the pytest re-executed in a private namespace inherits it.
CACHE_OWNED_MARK = "MYNAKIT_TEST_RUN_OWNS_CACHE_DIR"
if "MYNAKIT_CACHE_DIR" not in os.environ:
    os.environ["MYNAKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="mynakit-test-cache-")
    os.environ[CACHE_OWNED_MARK] = "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reader",
        default=None,
        help="Run the 'card' tier against the real card in this reader (may change PIN counters).",
    )


def pytest_configure(config: pytest.Config) -> None:
    if _may_run_pcsc_tier(config):
        from mynakit.emulator.pcsc_fixtures import reexec_pytest_in_private_namespace

        reexec_pytest_in_private_namespace(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get(CACHE_OWNED_MARK) == "1":
        shutil.rmtree(os.environ["MYNAKIT_CACHE_DIR"], ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    from mynakit.emulator.pcscd import pcscd_arrangement

    return f"pcscd: {pcscd_arrangement()}"


def _may_run_pcsc_tier(config: pytest.Config) -> bool:
    # The e2e tier puts its cards into pcscd too (the kiosk page's counter).
    return any(
        may_select_tier(
            tier,
            Path(__file__).parent / tier,
            arguments=config.args,
            base=config.invocation_params.dir,
            marker_expression=str(config.getoption("markexpr", "") or ""),
            real_card_run=config.getoption("--reader") is not None,
        )
        for tier in ("pcsc", "e2e")
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reader = config.getoption("--reader")
    skip_card = pytest.mark.skip(reason="real-card test: give --reader NAME to run it")
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if len(tiers) != 1:
            raise pytest.UsageError(
                f"{item.nodeid} must carry exactly one tier marker, has {tiers}"
            )
        if tiers == ["card"] and reader is None:
            item.add_marker(skip_card)
