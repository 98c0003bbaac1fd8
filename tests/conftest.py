"""Test tiers (ARCHITECTURE.md, tests and CI): every test carries exactly one tier marker; the
``card`` tier runs only against a real card named by ``--reader``."""

from __future__ import annotations

import pytest

TIERS = ("unit", "emulator", "pcsc", "card", "services", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reader",
        default=None,
        help="Run the 'card' tier against the real card in this reader (may change PIN counters).",
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
