"""Who may import whom: the seams of the file tree hold (no circle around the supervisor)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lumiera

PACKAGE = Path(lumiera.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function or TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules_under("actors"), ids=lambda p: p.name)
def test_the_subsystem_runtime_does_not_import_the_supervisor(path: Path) -> None:
    assert not {m for m in imports_of(path) if m.startswith("lumiera.appstate")}


@pytest.mark.parametrize(
    "path",
    [p for p in modules_under("appstate") if p.name != "supervisor.py"],
    ids=lambda p: p.name,
)
def test_only_the_driver_knows_the_supervisor(path: Path) -> None:
    assert "lumiera.appstate.supervisor" not in imports_of(path)
