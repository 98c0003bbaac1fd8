"""The card layer imports only downwards (docs/architecture.md: iso7816 <- transport <- card <-
jpki <- services/terminal <- cli): card/jpki.py takes the DER length header from iso7816.tlv,
not from the relying side (issue 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mynakit

pytestmark = pytest.mark.unit

PACKAGE = Path(mynakit.__file__).parent
# Packages each layer must never import, at module level or inside a function.
FORBIDDEN = {
    "iso7816": ("mynakit.transport", "mynakit.card", "mynakit.jpki", "mynakit.cli"),
    "card": ("mynakit.jpki", "mynakit.cli", "mynakit.emulator", "mynakit.services"),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_downwards(layer: str) -> None:
    offending = [
        f"{path.name} imports {module}"
        for path in sorted((PACKAGE / layer).glob("*.py"))
        for module in sorted(imported_modules(path))
        if module.startswith(FORBIDDEN[layer])
    ]
    assert not offending, offending
