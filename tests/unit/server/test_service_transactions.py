"""Services never commit (ADR 0008): the route's session, a worker's ``unit_of_work`` or the CLI command owns
the transaction, and a refusal that must outlive it uses ``in_own_transaction``. The modules below still
commit, each for the reason given; converting one means deleting its line, and the list cannot go stale:
a listed module that no longer commits fails here too."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

SERVICES: Final = Path(__file__).resolve().parents[3] / "src" / "smartpump" / "server" / "services"
STILL_COMMITTING: Final = {
    "deployment.py": "advance (the ingest worker's outbound step; create_deployment, which no longer "
    "commits, calls it too) and on_events (inside ingest.py's transactions) commit; they go with ingest",
    "ingest.py": "the Ingestor is itself the worker: batch commits, a per-batch retry after a conflict and "
    "acknowledgement only after the commit; it needs unit_of_work per step, not a mechanical change",
}
"""Modules under server/services that still call ``.commit()``, with the reason each is not converted yet."""


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


def test_no_service_commits_outside_the_allow_list() -> None:
    unexpected = {name: lines for name, lines in _committing().items() if name not in STILL_COMMITTING}
    assert unexpected == {}, (
        "services flush, never commit: the route, worker or CLI command owns the transaction "
        "(smartpump.server.db.unit_of_work; a refusal that must outlive it: in_own_transaction)"
    )


def test_every_allow_listed_module_still_commits() -> None:
    stale = sorted(set(STILL_COMMITTING) - set(_committing()))
    assert stale == [], "no longer commits: delete it from STILL_COMMITTING"


def test_the_scan_finds_a_commit_call_and_nothing_else(tmp_path: Path) -> None:
    module = tmp_path / "service.py"
    module.write_text(
        "def f(session, commit):\n    session.flush()\n    commit\n    session.commit()\n", encoding="utf-8"
    )
    assert _commits(module) == [4]
