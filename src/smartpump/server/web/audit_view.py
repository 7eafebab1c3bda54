"""Audit details for reading: the stored JSON object as ``key: value`` lines (nested keys dotted)."""

from __future__ import annotations

import json
from typing import Any

NOTHING = "—"


def _text(value: Any) -> str:
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or NOTHING
    return str(value)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict) and value:
        lines: list[tuple[str, str]] = []
        for key in value:
            lines.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), value[key]))
        return lines
    return [(prefix, _text(value))]


def detail_lines(details: str) -> list[tuple[str, str]]:
    """(key, value) pairs of a record's details in stored (sorted) order; text that is not a JSON object
    is shown whole under ``details``."""
    try:
        parsed = json.loads(details)
    except ValueError:
        return [("details", details)]
    if not isinstance(parsed, dict):
        return [("details", _text(parsed))]
    return _flatten("", parsed) if parsed else []
