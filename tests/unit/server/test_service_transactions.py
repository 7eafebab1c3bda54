"""Services never commit (ADR 0008): the route's session, a worker's ``unit_of_work`` or the CLI command owns
the transaction, and a refusal that must outlive it uses ``in_own_transaction``. The ingest worker's
store (``server/ingest.py``: batch commits, a per-batch retry after a conflict, the ack only after the
commit) is the worker's own code and lives beside it, not among the services."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

SERVICES: Final = Path(__file__).resolve().parents[3] / "src" / "smartpump" / "server" / "services"


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]


def _committing() -> dict[str, list[int]]:
    found = {path.name: _commits(path) for path in sorted(SERVICES.glob("*.py"))}
    return {name: lines for name, lines in found.items() if lines}


def test_no_service_commits() -> None:
    assert _committing() == {}, (
        "services flush, never commit: the route, worker or CLI command owns the transaction "
        "(smartpump.server.db.unit_of_work; a refusal that must outlive it: in_own_transaction)"
    )


def test_the_scan_finds_a_commit_call_and_nothing_else(tmp_path: Path) -> None:
    module = tmp_path / "service.py"
    module.write_text(
        "def f(session, commit):\n    session.flush()\n    commit\n    session.commit()\n", encoding="utf-8"
    )
    assert _commits(module) == [4]
