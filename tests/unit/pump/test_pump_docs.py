"""docs/events.md is generated from the tables and documents every event type and alarm (ALM-01)."""

from __future__ import annotations

from pathlib import Path

from smartpump.pump.alarms import ALARMS
from smartpump.pump.docs import render_events_md
from smartpump.pump.events import EVENT_FIELDS, EventType

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_events_doc_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_events_md(), "regenerate docs/events.md"


def test_every_event_type_has_fields_and_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for type_ in EventType:
        assert type_ in EVENT_FIELDS
        assert f"`{type_.value}`" in text


def test_every_alarm_is_in_the_doc_with_its_priority() -> None:
    text = DOC.read_text(encoding="utf-8")
    for spec in ALARMS.values():
        assert f"| `{spec.id.value}` | {spec.priority.value} |" in text
