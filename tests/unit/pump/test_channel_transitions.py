"""The channel state machine: one table of legal moves, move_to() refuses the rest, nobody bypasses it."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from smartpump.errors import PumpError
from smartpump.pump import ChannelState
from smartpump.pump.channel import TRANSITIONS, Channel
from tests.unit.pump.library import basic, make_pump, start

SRC = Path(__file__).resolve().parents[3] / "src" / "smartpump"
LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
ILLEGAL = [(a, b) for a in ChannelState for b in ChannelState if b not in TRANSITIONS[a]]


def _channel(state: ChannelState) -> Channel:
    pump, _ = make_pump()
    return replace(pump.channel("A"), state=state)


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(ChannelState)


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_a_legal_move_is_allowed(source: ChannelState, target: ChannelState) -> None:
    channel = _channel(source)
    channel.move_to(target)
    assert channel.state is target


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_an_illegal_move_is_refused_and_changes_nothing(source: ChannelState, target: ChannelState) -> None:
    channel = _channel(source)
    with pytest.raises(PumpError) as refused:
        channel.move_to(target)
    assert refused.value.code == "pump.illegal_transition"
    assert f"from {source} to {target}" in refused.value.message
    assert channel.state is source


def test_the_pump_drives_a_channel_only_along_the_table() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.pause("A")
    pump.resume("A")
    pump.stop("A")
    channel = pump.channel("A")
    assert channel.state is ChannelState.IDLE
    with pytest.raises(PumpError) as refused:
        channel.move_to(ChannelState.KVO)
    assert refused.value.code == "pump.illegal_transition"


def _about_channels(target: ast.Attribute, value: ast.expr | None) -> bool:
    base = ast.unparse(target.value).lower()
    return "channel" in base or (value is not None and "ChannelState" in ast.unparse(value))


def _state_assignments(tree: ast.AST, *, every: bool = True) -> list[int]:
    """Lines assigning ``X.state``: all of them (``every``) or those visibly about a channel."""
    lines: list[int] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets, value = [node.target], node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "state"
        ):
            lines.append(node.lineno)
        for target in targets:
            for part in ast.walk(target):
                if (
                    isinstance(part, ast.Attribute)
                    and part.attr == "state"
                    and (every or _about_channels(part, value))
                ):
                    lines.append(part.lineno)
    return sorted(lines)


def test_no_module_but_channel_py_assigns_a_channel_state() -> None:
    """The pump package assigns no ``.state`` outside channel.py; elsewhere (where database rows have
    a ``state`` column) no assignment names a channel or a ChannelState: only Channel.move_to does."""
    offenders: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "pump" / "channel.py":
            continue
        source = path.read_text(encoding="utf-8")
        in_pump = path.relative_to(SRC).parts[0] == "pump"
        lines = _state_assignments(ast.parse(source), every=in_pump)
        offenders += [f"{path.relative_to(SRC)}:{line}" for line in lines]
    assert offenders == []


def test_the_ast_check_sees_an_assignment() -> None:
    tree = ast.parse(
        "channel.state = ChannelState.IDLE\nsetattr(channel, 'state', x)\nrow.state = 'sent'\n"
        "self.channels['A'].state = s\nrow.state = ChannelState.KVO\n"
    )
    assert _state_assignments(tree) == [1, 2, 3, 4, 5]
    assert _state_assignments(tree, every=False) == [1, 2, 4, 5]
