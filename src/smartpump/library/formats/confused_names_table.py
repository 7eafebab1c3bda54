"""The packaged confused-names table (``ismp_confused_names.json``, format ``smartpump.confused_names/1``),
read once into a ``ConfusedNamesTable``; a malformed table is a LibraryFormatError naming the problem."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

from smartpump.errors import LibraryFormatError
from smartpump.library.confused_names import ConfusedNamesTable, ConfusedPair
from smartpump.library.high_alert import TableSource

TABLE_FORMAT: Final = "smartpump.confused_names/1"
TABLE_FILE: Final = "ismp_confused_names.json"
SOURCES: Final = frozenset({"ISMP", "institutional"})


def parse_table(document: Any) -> ConfusedNamesTable:
    """A table from its JSON document.

    Raises:
        LibraryFormatError: the document is not a ``smartpump.confused_names/1`` table.
    """
    try:
        if document["format"] != TABLE_FORMAT:
            raise ValueError(f"format must be {TABLE_FORMAT!r}, got {document['format']!r}")
        pairs = []
        for item in document["pairs"]:
            first, second = item["names"]
            if item["source"] not in SOURCES:
                raise ValueError(f"pair {first}/{second}: source must be one of {sorted(SOURCES)}")
            if not str(first).strip() or not str(second).strip():
                raise ValueError("a pair names two non-blank drugs")
            pairs.append(ConfusedPair(first=str(first), second=str(second), source=item["source"]))
        return ConfusedNamesTable(TableSource(**document["source"]), tuple(pairs))
    except (KeyError, TypeError, ValueError) as error:
        raise LibraryFormatError(
            f"confused-names table is malformed: {error!r}", code="library.confused_names_table"
        ) from None


@cache
def confused_names_table() -> ConfusedNamesTable:
    """The packaged table (read once)."""
    text = resources.files("smartpump.library.formats").joinpath(TABLE_FILE).read_text("utf-8")
    return parse_table(json.loads(text))
