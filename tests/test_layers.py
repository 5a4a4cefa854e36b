"""The floors of docs/architecture.md, read from the code: what a room may not import.

Every ``import`` of a dfdetect module (at the top of a file or inside a function) counts,
so a deferred import cannot slip a room's dependency past the rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dfdetect"


def imported_modules(path: Path) -> set[str]:
    """The dfdetect modules a file imports (``from dfdetect.x import y`` counts as
    ``dfdetect.x`` and ``dfdetect.x.y``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("dfdetect")}


#: room -> rooms it must never import.
FORBIDDEN = {
    "data": ("dfdetect.synthetic", "dfdetect.results", "dfdetect.scales", "dfdetect.training",
             "dfdetect.experiment", "dfdetect.papers"),
    "models": ("dfdetect.synthetic", "dfdetect.results", "dfdetect.scales",
               "dfdetect.training", "dfdetect.experiment", "dfdetect.papers"),
    "synthetic": ("dfdetect.results", "dfdetect.scales", "dfdetect.training",
                  "dfdetect.experiment", "dfdetect.papers", "dfdetect.models"),
}


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_never_imports_the_floors_above_it(room):
    wrong = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith(FORBIDDEN[room]):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []
