"""The provenance core imports nothing of ours but the market, and nothing that does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import p2penergy.provenance

PACKAGE = Path(p2penergy.provenance.__file__).parent
FORBIDDEN = {"os", "io", "time", "random", "socket", "sqlite3", "pathlib", "requests", "web3"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_provenance_imports_only_the_market_of_ours_and_no_io():
    for path in sorted(PACKAGE.glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            if top == "p2penergy":
                assert name.startswith(("p2penergy.market", "p2penergy.provenance")), f"{path.name} imports {name}"
