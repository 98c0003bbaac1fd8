"""Which test tiers a pytest run may select, decided before collection (tests/conftest.py uses it
to move a run that may reach the pcsc tier into a private pcscd namespace, docs/testing.md §3.2).
"""

from __future__ import annotations

from pathlib import Path


def may_select_tier(
    tier: str,
    folder: Path,
    *,
    arguments: list[str],
    base: Path,
    marker_expression: str,
    real_card_run: bool,
) -> bool:
    """Whether a run may select tests of ``tier`` (kept in ``folder``): not a real-card run
    (which needs the machine's pcscd), a marker expression that names the tier or none, and a
    path at, above or below the folder."""
    if real_card_run:
        return False
    if marker_expression and tier not in marker_expression:
        return False
    folder = folder.resolve()
    for argument in arguments:
        path = (base / argument.split("::")[0]).resolve()
        if path == folder or folder in path.parents or path in folder.parents:
            return True
    return False
