"""The packaged high-alert table (``ismp_high_alert.json``, format ``smartpump.high_alert/1``), read
once into a ``HighAlertTable``; a malformed table is a LibraryFormatError naming the problem."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Final

from smartpump.errors import LibraryFormatError
from smartpump.library.high_alert import (
    HighAlertListing,
    HighAlertMedication,
    HighAlertTable,
    ListingKind,
    TableSource,
)
from smartpump.library.model import EntryKind, Route

TABLE_FORMAT: Final = "smartpump.high_alert/1"
TABLE_FILE: Final = "ismp_high_alert.json"


def parse_table(document: Any) -> HighAlertTable:
    """A table from its JSON document.

    Raises:
        LibraryFormatError: the document is not a ``smartpump.high_alert/1`` table.
    """
    try:
        if document["format"] != TABLE_FORMAT:
            raise ValueError(f"format must be {TABLE_FORMAT!r}, got {document['format']!r}")
        source = TableSource(**document["source"])
        listings = tuple(_listing(item) for item in document["listings"])
        medications = tuple(
            HighAlertMedication(
                name=item["name"],
                listings=tuple(item["listings"]),
                aliases=tuple(item.get("aliases", ())),
                brands=tuple(item.get("brands", ())),
                excludes=tuple(item.get("excludes", ())),
            )
            for item in document["medications"]
        )
        return HighAlertTable(source, listings, medications)
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise LibraryFormatError(
            f"high-alert table is malformed: {error!r}", code="library.high_alert_table"
        ) from None


def _listing(item: dict[str, Any]) -> HighAlertListing:
    percent = item.get("min_percent")
    return HighAlertListing(
        id=item["id"],
        kind=ListingKind(item["kind"]),
        name=item["name"],
        source=item["source"],
        names=tuple(item.get("names", ())),
        class_names=tuple(item.get("class_names", ())),
        routes=tuple(Route(r) for r in item.get("routes", ())),
        entry_kinds=tuple(EntryKind(k) for k in item.get("entry_kinds", ())),
        min_percent=None if percent is None else Decimal(percent),
        percent_inclusive=bool(item.get("percent_inclusive", True)),
    )


@cache
def high_alert_table() -> HighAlertTable:
    """The packaged table (read once)."""
    text = resources.files("smartpump.library.formats").joinpath(TABLE_FILE).read_text("utf-8")
    return parse_table(json.loads(text))
