"""Dependencies point downwards only (docs/architecture.md §2): every import in src/mynakit, at
module level or inside a function, is read with ``ast`` and checked against the layer order, the
emulator's allowed dependencies, the service cores' ban on web frameworks and SQL drivers, and
for cycles. The layer order is taken from docs/architecture.md itself, so the two cannot drift.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE = REPOSITORY / "src"
ARCHITECTURE = REPOSITORY / "docs" / "architecture.md"

#: Modules below every layer: the error tree, paths, personal-data types, card profile loading,
#: the value classes of the start-up path.
FOUNDATION = frozenset(
    {
        "mynakit",
        "mynakit.atomic_files",
        "mynakit.errors",
        "mynakit.paths",
        "mynakit.personal",
        "mynakit.profiles",
        "mynakit.value_object",
    }
)
#: What the emulator may import besides itself and the foundation (never the client sessions
#: in ``card``, never services, terminal or cli).
EMULATOR_MAY_IMPORT = frozenset({"iso7816", "transport", "jpki"})
#: Who may import the emulator: the CLI only (services reach the sandbox issuer over HTTP).
EMULATOR_IMPORTED_BY = frozenset({"emulator", "cli"})
#: Within the services/terminal layer the terminal may use a service's client interface;
#: a service never imports the terminal.
SIBLING_ORDER = {"services": 0, "terminal": 1}
WEB_FRAMEWORKS = frozenset({"fastapi", "starlette", "uvicorn", "flask", "django", "aiohttp"})
SQL_DRIVERS = frozenset(
    {"sqlalchemy", "alembic", "sqlite3", "psycopg", "psycopg2", "asyncpg", "pg8000"}
)

# Known violations being fixed on other branches, as exact (importing module, imported module)
# pairs. The lead empties this list at merge time; nothing may be added to it.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool


def layer_order_from_docs() -> list[list[str]]:
    """The layers, lowest first, from the ``a <- b <- c/d`` line of docs/architecture.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"^\s*(iso7816(?:\s*<-\s*[\w/]+)+)\s*$", text, re.MULTILINE)
    assert match, f"{ARCHITECTURE} must state the layer order as 'iso7816 <- transport <- ...'"
    return [part.strip().split("/") for part in match.group(1).split("<-")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SOURCE / "mynakit").rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in the file, resolved to the most specific module it names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    functions: list[tuple[int, int]] = [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]

    def inside_function(line: int) -> bool:
        return any(start < line <= end for start, end in functions)

    for node in ast.walk(tree):
        targets: list[str]
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            yield Import(name, target, node.lineno, inside_function(node.lineno))


def all_imports() -> list[Import]:
    known = source_modules()
    return [found for name, path in known.items() for found in imports_of(name, path, known)]


def component(module: str) -> str:
    """The layer a mynakit module belongs to: its first package under mynakit."""
    if module in FOUNDATION:
        return "foundation"
    return module.split(".")[1]


def rank_table() -> dict[str, float]:
    ranks: dict[str, float] = {"foundation": -1}
    for rank, layer in enumerate(layer_order_from_docs()):
        for name in layer:
            ranks[name] = rank + SIBLING_ORDER.get(name, 0) / 10
    return ranks


def violation(found: Import, ranks: dict[str, float]) -> str | None:
    """Why this import breaks a rule of docs/architecture.md §2, or ``None``."""
    top = found.imported.split(".")[0]
    if found.importer.startswith("mynakit.services") and top in WEB_FRAMEWORKS | SQL_DRIVERS:
        parts = found.importer.split(".")
        if top in WEB_FRAMEWORKS and "http" not in parts:
            return "a service core imports a web framework (only services/**/http may)"
        if top in SQL_DRIVERS and not {"store", "migrations"} & set(parts):
            return "a service core imports an SQL driver (only services/**/store may)"
    if top != "mynakit":
        return None
    source, target = component(found.importer), component(found.imported)
    if source == target:
        return None
    if target == "emulator":
        if source not in EMULATOR_IMPORTED_BY:
            return f"{source} imports the emulator (only the cli may)"
        return None
    if source == "emulator":
        if target in EMULATOR_MAY_IMPORT or target == "foundation":
            return None
        return f"the emulator imports {target} (allowed: iso7816, transport, jpki, profiles)"
    if source == "foundation":
        return f"a foundation module imports {target}"
    if target not in ranks or source not in ranks:
        return f"{source} or {target} is in no layer of docs/architecture.md"
    if ranks[target] > ranks[source]:
        return f"upward: {source} imports {target}"
    return None


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.imported.startswith("mynakit") and found.imported != found.importer:
            graph.setdefault(found.importer, set()).add(found.imported)
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                lowest[node] = min(lowest[node], lowest[successor])
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
        if lowest[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_layer_order_is_the_one_the_architecture_states() -> None:
    assert layer_order_from_docs() == [
        ["iso7816"],
        ["transport"],
        ["card"],
        ["jpki"],
        ["services", "terminal"],
        ["cli"],
    ]


def test_every_package_under_mynakit_is_in_a_layer_or_the_emulator() -> None:
    ranks = rank_table()
    packages = {component(name) for name in source_modules()}
    assert packages - set(ranks) <= {"emulator", "card_profiles"}


def test_no_import_points_upwards_or_breaks_a_layer_rule() -> None:
    ranks = rank_table()
    problems = [
        f"{found.importer} -> {found.imported} (line {found.line}"
        f"{', in a function' if found.in_function else ''}): {reason}"
        for found in all_imports()
        if (reason := violation(found, ranks))
        and (found.importer, found.imported) not in KNOWN_VIOLATIONS
    ]
    assert problems == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    allowed = [
        found for found in all_imports() if (found.importer, found.imported) not in KNOWN_VIOLATIONS
    ]
    assert cycles(allowed) == []


def test_every_known_violation_still_exists() -> None:
    """The allow-list only shrinks: an entry whose import is gone must be deleted."""
    present = {(found.importer, found.imported) for found in all_imports()}
    assert present >= KNOWN_VIOLATIONS


@pytest.mark.parametrize(
    ("importer", "imported", "broken"),
    [
        ("mynakit.card.jpki", "mynakit.iso7816.tlv", False),
        ("mynakit.card.jpki", "mynakit.jpki.certificates", True),
        ("mynakit.transport.pcsc", "mynakit.card.base", True),
        ("mynakit.terminal.machine", "mynakit.services.eligibility.core", False),
        ("mynakit.services.eligibility.core", "mynakit.terminal.machine", True),
        ("mynakit.services.mykey.core", "mynakit.emulator.issuer", True),
        ("mynakit.emulator.card_os", "mynakit.card.jpki", True),
        ("mynakit.emulator.issuer", "mynakit.jpki.certificates", False),
        ("mynakit.cli.emulator", "mynakit.emulator.state", False),
        ("mynakit.services.mykey.core", "sqlalchemy", True),
        ("mynakit.services.mykey.core", "fastapi", True),
        ("mynakit.services.store.models", "sqlalchemy.orm", False),
        ("mynakit.services.mykey.http", "fastapi", False),
        ("mynakit.errors", "mynakit.card.errors", True),
    ],
)
def test_the_rules_themselves(importer: str, imported: str, broken: bool) -> None:
    found = Import(importer, imported, line=1, in_function=False)
    assert (violation(found, rank_table()) is not None) is broken


def test_a_cycle_is_found_through_a_function_level_import() -> None:
    imports = [
        Import("mynakit.emulator.state", "mynakit.emulator.card_os", 1, False),
        Import("mynakit.emulator.card_os", "mynakit.emulator.state", 9, True),
        Import("mynakit.emulator.card_os", "mynakit.iso7816.apdu", 2, False),
    ]
    assert cycles(imports) == [["mynakit.emulator.card_os", "mynakit.emulator.state"]]


def test_imports_inside_functions_and_relative_imports_are_read(tmp_path: Path) -> None:
    package = tmp_path / "src" / "mynakit" / "card"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("")
    module = package / "jpki.py"
    module.write_text("from . import base\n\ndef f():\n    from mynakit.jpki import x\n")
    known = {"mynakit.card": package / "__init__.py", "mynakit.card.base": package / "base.py"}
    found = list(imports_of("mynakit.card.jpki", module, known))
    assert [(i.imported, i.in_function) for i in found] == [
        ("mynakit.card.base", False),
        ("mynakit.jpki", True),
    ]
