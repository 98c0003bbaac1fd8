"""Which runs move into a private pcscd namespace (docs/testing.md §3.2): those that may select
the pcsc tier, never a real-card run."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.tiers import may_select_tier

pytestmark = pytest.mark.unit

ROOT = Path("/repository")
PCSC = ROOT / "tests" / "pcsc"


@pytest.mark.parametrize(
    ("arguments", "marker_expression", "real_card_run", "selected"),
    [
        (["tests"], "", False, True),
        (["."], "", False, True),
        (["tests/pcsc"], "", False, True),
        (["tests/pcsc/test_pcscd.py::test_x"], "", False, True),
        (["tests/unit"], "", False, False),
        (["tests"], "unit", False, False),
        (["tests"], "pcsc or unit", False, True),
        (["tests/pcsc"], "", True, False),
    ],
)
def test_tier_selection(
    arguments: list[str], marker_expression: str, real_card_run: bool, selected: bool
) -> None:
    assert (
        may_select_tier(
            "pcsc",
            PCSC,
            arguments=arguments,
            base=ROOT,
            marker_expression=marker_expression,
            real_card_run=real_card_run,
        )
        is selected
    )
