"""The services layer's import rules (docs/architecture.md): services never import the emulator
(the sandbox issuer is reached over HTTP), and service cores import no web framework and no SQL
library; only ``store``/``http`` modules (and the wiring) may."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mynakit.services

pytestmark = pytest.mark.unit

SERVICES = Path(mynakit.services.__file__).parent
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "sqlite3")
# Modules that wrap a core: storage, HTTP, the wiring of both, migrations.
WRAPPERS = ("store", "http", "assembly", "migrations", "postgres_cluster", "client")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_wrapper(path: Path) -> bool:
    parts = path.relative_to(SERVICES).with_suffix("").parts
    return any(part in WRAPPERS for part in parts)


def test_services_never_import_the_emulator() -> None:
    for path in SERVICES.rglob("*.py"):
        offending = {name for name in _imports(path) if name.startswith("mynakit.emulator")}
        assert not offending, f"{path} imports {offending}"


def test_service_cores_import_no_framework_or_sql() -> None:
    cores = [path for path in SERVICES.rglob("*.py") if not _is_wrapper(path)]
    assert any(path.name == "core.py" for path in cores)
    for path in cores:
        offending = {name for name in _imports(path) if name.split(".")[0] in FRAMEWORKS}
        assert not offending, f"{path} imports {offending}"
