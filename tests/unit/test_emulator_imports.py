"""The emulator's modules import each other without a cycle (each job in its own module, the
card OS below the card store that builds it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mynakit.emulator

pytestmark = pytest.mark.unit

PACKAGE = "mynakit.emulator"
FOLDER = Path(mynakit.emulator.__file__).parent


def module_level_imports(path: Path) -> set[str]:
    """Emulator modules imported at module level (``TYPE_CHECKING`` blocks and imports inside
    functions are not executed at import time, so they cannot make an import cycle)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE))
    return found


def test_no_import_cycle_among_emulator_modules() -> None:
    graph = {
        f"{PACKAGE}.{path.stem}": module_level_imports(path)
        for path in FOLDER.glob("*.py")
        if path.stem != "__init__"
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for imported in graph.get(module, set()):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_the_card_os_does_not_import_the_card_store() -> None:
    imports = module_level_imports(FOLDER / "card_os.py")
    assert not imports & {f"{PACKAGE}.state", f"{PACKAGE}.virtual_cards", f"{PACKAGE}.card_layout"}
