"""The server, analytics, interop, the page templates and the page script speak the pump's own vocabulary
(issue 14): event types, alarm ids and channel states come from ``smartpump.pump`` (``EventType``,
``AlarmId``, ``ChannelState``), never from a copy that can drift or name what the pump never emits."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from smartpump.pump.alarms import AlarmId
from smartpump.pump.channel import ChannelState
from smartpump.pump.events import EventType
from smartpump.server.live import KINDS

PACKAGE: Final = Path(__file__).resolve().parents[3] / "src" / "smartpump"
SCANNED: Final = ("server", "analytics", "interop")
WEB: Final = PACKAGE / "server" / "web"
EVENT_TYPES: Final = frozenset(e.value for e in EventType)
ALARM_IDS: Final = frozenset(a.value for a in AlarmId)
PUMP_NAMES: Final = EVENT_TYPES | ALARM_IDS
FAMILIES: Final = frozenset(name.split(".")[0] for name in PUMP_NAMES)
SPELLED_ALIKE: Final = {("server/services/ehr_outcomes.py", "command.refused")}
"""Literals spelled like a pump name that mean something else: the refusal code an offer ends with when the
pump gave none."""
FORM_FIELDS: Final = frozenset({"pca.max_dose_window_h"})
"""Dotted form field names in the templates that share a family with pump names."""
TYPE_NAMES: Final = frozenset({"type_", "event_type", "kind"})
DOTTED: Final = re.compile(r"""["']([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)["']""")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for part in SCANNED:
        for path in sorted((PACKAGE / part).rglob("*.py")):
            yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _audit_actions(tree: ast.Module) -> set[int]:
    """The ``action=`` literals of audit records: the audit log's own vocabulary."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == "action" and isinstance(node.value, ast.Constant)
    }


def _is_event_type(node: ast.expr) -> bool:
    """An expression holding an event type: ``x.type``, ``type_``, ``event_type``, ``kind``, a type column."""
    if isinstance(node, ast.Attribute):
        return node.attr == "type"
    if isinstance(node, ast.Name):
        return node.id in TYPE_NAMES
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "col":
        return any(isinstance(a, ast.Constant) and a.value in ("type", "prev_type") for a in node.args)
    return False


def _strings(node: ast.expr) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _strings(element)


def _used_as_event_types(tree: ast.Module) -> Iterator[ast.Constant]:
    """String literals compared with, matched against or tested for membership by an event's type, and those
    held by a module's sets and tables of types (a name with ``TYPE`` in it)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and "TYPE" in t.id for t in targets):
                yield from (
                    c
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_event_type(side) for side in sides):
                for side in sides:
                    yield from _strings(side)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("in_", "is_in") and _is_event_type(node.func.value):
                for argument in node.args:
                    yield from _strings(argument)
        elif isinstance(node, ast.Match) and _is_event_type(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue):
                        yield from _strings(pattern.value)


def test_no_module_keeps_a_copy_of_a_pump_event_type_or_alarm_id() -> None:
    copies = []
    for name, tree in _modules():
        skipped = _docstrings(tree) | _audit_actions(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and node.value in PUMP_NAMES
                and id(node) not in skipped
                and (name, node.value) not in SPELLED_ALIKE
            ):
                copies.append(f"{name}:{node.lineno} {node.value!r}")
    assert copies == [], f"use smartpump.pump.events.EventType / smartpump.pump.alarms.AlarmId: {copies}"


def test_every_event_type_the_code_compares_is_one_the_pump_emits() -> None:
    unknown = [
        f"{name}:{node.lineno} {node.value!r}"
        for name, tree in _modules()
        for node in _used_as_event_types(tree)
        if isinstance(node.value, str)
        and DOTTED.fullmatch(f'"{node.value}"')
        and node.value not in EVENT_TYPES
    ]
    assert unknown == [], unknown


def test_channel_states_compared_by_the_code_are_the_pumps() -> None:
    states = frozenset(s.value for s in ChannelState)
    copies = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Attribute) and side.attr == "state" for side in sides):
                copies += [
                    f"{name}:{c.lineno} {c.value!r}"
                    for side in sides
                    for c in _strings(side)
                    if c.value in states
                ]
    assert copies == [], f"use smartpump.pump.channel.ChannelState: {copies}"


def test_templates_and_the_page_script_name_only_pump_events_alarms_and_live_kinds() -> None:
    known = PUMP_NAMES | {str(kind) for kind in KINDS} | FORM_FIELDS
    files = sorted((WEB / "templates").glob("*.html")) + sorted((WEB / "static").glob("*.js"))
    assert files, f"no templates or scripts under {WEB}"
    unknown = [
        f"{path.name}: {token!r}"
        for path in files
        for token in DOTTED.findall(path.read_text(encoding="utf-8"))
        if token.split(".")[0] in FAMILIES and token not in known
    ]
    assert unknown == [], unknown


def test_the_page_script_holds_no_station_rule() -> None:
    script = (WEB / "static" / "app.js").read_text(encoding="utf-8")
    rules = [word for word in ("high", "medium", "low", "online", "silent") if f'"{word}"' in script]
    assert rules == [], "priority order, tile state and presence come from the server (services.tile_look)"


def test_the_scan_sees_a_copied_or_invented_event_type() -> None:
    tree = ast.parse(
        'if record.type == "pca.started":\n    x = 1\n'
        'TYPES = {"alarm.raised": 1, "infusion.began": 2}\n'
        'match event.type:\n    case "pca.resumed":\n        pass\n'
    )
    compared = sorted(str(node.value) for node in _used_as_event_types(tree))
    assert compared == ["alarm.raised", "infusion.began", "pca.resumed", "pca.started"]
    assert [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in PUMP_NAMES] == [
        "alarm.raised"
    ]
