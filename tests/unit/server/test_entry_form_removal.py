"""Which limits an entry-editor submission removes (the edits the server saves only once confirmed)."""

from __future__ import annotations

from smartpump.library.formats import json_format
from smartpump.server.web.entry_form import removed_limits, values_of
from tests.factories import make_library


def _saved() -> dict[str, str]:
    document = json_format.to_document(make_library())
    return values_of(document["entries"][0])  # dopamine 1-2-20-30 mcg/kg/min, rate hard max 500 mL/h


def test_a_bound_sent_empty_is_a_removed_limit_named_with_its_value_and_unit() -> None:
    saved = _saved()
    sent = {**saved, "dose.soft_min": "", "rate_ml_per_h.hard_max": " "}
    assert removed_limits(saved, sent) == ("Dose soft min 2 mcg/kg/min", "Rate hard max 500 mL/h")


def test_a_bound_not_sent_keeps_its_value_and_a_changed_bound_is_not_removed() -> None:
    saved = _saved()
    sent = {k: v for k, v in saved.items() if k != "dose.soft_min"} | {"dose.soft_max": "25"}
    assert removed_limits(saved, sent) == ()
