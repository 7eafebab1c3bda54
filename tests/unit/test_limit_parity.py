"""Every limited parameter of a library entry is declared once, in the DERS rule table
(``Rule.entry_field``), and every other place that must know it does: the JSON Schema, the web
entry editor and the what-if replay (which replays it or says why not). Adding a limit kind to
the model without the others fails here, naming what is missing."""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from pathlib import Path

from smartpump.analytics.replay import NOT_REPLAYED, REPLAYED_KINDS, REPLAYED_RULES
from smartpump.ders.program import ProgramKind
from smartpump.ders.rules import RULES
from smartpump.library.model import Bounds, CustomConcentration, DoseLimits, Entry, PCALimits
from smartpump.server.web.entry_form import PARAMS

SCHEMA = Path(__file__).resolve().parents[2] / "src/smartpump/library/formats/library.schema.json"
LIMIT_TYPES = (Bounds, DoseLimits, CustomConcentration)
#: Limits held by the pump when the action happens, not by a program DERS checks.
HELD_BY_THE_PUMP = {"pca.clinician_bolus": "a clinician bolus is checked when given (pump/pca_control.py)"}


def _limit_fields(cls: type, prefix: str = "") -> set[str]:
    hints = typing.get_type_hints(cls)
    found: set[str] = set()
    for f in fields(cls):
        if f.name.startswith("_"):
            continue
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        if any(a in LIMIT_TYPES for a in args):
            found.add(prefix + f.name)
        elif PCALimits in args:
            found |= _limit_fields(PCALimits, "pca.")
    return found


ENTRY_LIMITS = _limit_fields(Entry)


def test_the_model_has_the_limit_fields_this_test_expects_to_find() -> None:
    assert {"dose", "dose_rate", "bolus", "pca.basal", "custom_concentration"} <= ENTRY_LIMITS


def test_every_entry_limit_is_held_by_a_ders_rule_or_by_the_pump() -> None:
    held = {rule.entry_field for rule in RULES if rule.entry_field is not None}
    assert ENTRY_LIMITS - held - HELD_BY_THE_PUMP.keys() == set()
    assert held <= ENTRY_LIMITS, "a rule names an entry field the model does not have"


def test_every_entry_limit_is_in_the_json_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    entry_props = set(schema["$defs"]["entry"]["properties"])
    pca_props = set(schema["$defs"]["pca_limits"]["properties"])
    declared = entry_props | {f"pca.{name}" for name in pca_props}
    assert ENTRY_LIMITS - declared == set()


def test_every_entry_limit_is_in_the_entry_editor() -> None:
    assert ENTRY_LIMITS - {p.key for p in PARAMS} == set()


def test_every_rule_of_a_replayed_kind_is_replayed_or_says_why_not() -> None:
    replayed_kinds = {ProgramKind(k) for k in REPLAYED_KINDS}
    replayed = {parameter for parameter, _ in REPLAYED_RULES}
    needed = {r.parameter for r in RULES if r.applies_to & replayed_kinds and not r.is_device}
    assert needed - replayed - NOT_REPLAYED.keys() == set()
    assert not replayed & NOT_REPLAYED.keys(), "a rule is both replayed and declared not replayed"
    assert all(reason for reason in NOT_REPLAYED.values())
    assert NOT_REPLAYED.keys() <= {r.parameter for r in RULES}, (
        "NOT_REPLAYED names a rule that does not exist"
    )
