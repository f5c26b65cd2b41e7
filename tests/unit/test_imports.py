"""Who may import whom: the seams of the file tree hold (no circle around the supervisor)."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_building_the_command_line_parser_imports_nothing_heavy() -> None:
    # Every `lumiera` command builds the parser first: what it imports, each command
    # pays for (the timeline's records came in with the local farm once: 17 ms).
    code = (
        "import sys, lumiera.cli as c; c.build_parser(); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'av', 'zmq', 'msgpack') or m.startswith(('lumiera.bus.', 'lumiera.steam', "
        "'lumiera.appstate', 'lumiera.shm.ring', 'lumiera.vault.streamspec')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []
