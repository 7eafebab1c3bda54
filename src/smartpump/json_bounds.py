"""The shape of untrusted JSON text measured before any parser sees it: nesting depth and value count.

Python's ``json`` and msgspec both recurse per nesting level, so a few kilobytes of ``[[[[...`` raise
``RecursionError`` (not a decode error) in whatever thread reads them. Every decoder of outside input
(MQTT envelopes, API and FHIR bodies) measures the text first and refuses it with its own coded error.
The measure is linear in the text, runs at C speed and never recurses:

    >>> measure(b'{"a": [1, 2, {"b": "]]"}]}')
    JsonShape(depth=3, values=6)
    >>> measure(b"[" * 5)
    JsonShape(depth=5, values=6)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
"""A string to its closing quote, or to the end of an unterminated text (so no start is scanned twice)."""
_STRUCTURE: Final = b"[]{},"
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in _STRUCTURE)
_STEP: Final = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


@dataclass(frozen=True, slots=True)
class JsonShape:
    """How deep the text nests (``[]`` and ``{}`` levels) and an upper bound on the values it holds."""

    depth: int
    values: int


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """The most nesting levels an input may hold and, when given, the most values."""

    max_depth: int
    max_values: int | None = None

    def first_excess(self, raw: bytes) -> tuple[str, str] | None:
        """``(what, message)`` for the first limit ``raw`` exceeds (``"depth"`` or ``"values"``), or None.

        A text whose structural characters alone fit the limits is passed without measuring it."""
        opened = raw.count(b"[") + raw.count(b"{")
        if opened <= self.max_depth and (
            self.max_values is None or raw.count(b",") + opened < self.max_values
        ):
            return None
        shape = measure(raw)
        if shape.depth > self.max_depth:
            return "depth", f"nests {shape.depth} levels deep, limit {self.max_depth}"
        if self.max_values is not None and shape.values > self.max_values:
            return "values", f"holds up to {shape.values} values, limit {self.max_values}"
        return None


def measure(raw: bytes) -> JsonShape:
    """Depth and value bound of JSON text; strings (with their escapes) are skipped, so brackets and commas
    inside them do not count. An unclosed bracket counts as a level: ``[[[`` is 3 deep. The value bound
    is one more than the commas and openings outside strings (exact for text without empty containers)."""
    structure = _STRING.sub(b"", raw).translate(None, _NOT_STRUCTURE)
    depth = max(accumulate(map(_STEP.__getitem__, structure)), default=0)
    opened = structure.count(b"[") + structure.count(b"{")
    return JsonShape(depth=max(depth, 0), values=structure.count(b",") + opened + 1)
