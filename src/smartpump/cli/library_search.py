"""`smartpump library search QUERY FILE`: entries by any drug name, alias, brand or Tall Man form."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich import box
from rich.table import Table

from smartpump.cli.library import library_app
from smartpump.cli.library_formats import load_library, shown_limits
from smartpump.cli.output import console, emit_json, err_console, fail
from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.limits import LimitSet
from smartpump.library.model import DrugLibrary
from smartpump.library.search import Match, search
from smartpump.units import format_decimal

EXIT_NOT_FOUND: Final = 1


def _match_document(library: DrugLibrary, match: Match) -> dict[str, Any]:
    entry = match.entry
    return {
        "entry_id": entry.id,
        "care_area_id": entry.care_area_id,
        "care_area": library.care_area(entry.care_area_id).name,
        "drug_id": match.drug.id,
        "drug": match.drug.shown_name,
        "matched": match.matched,
        "high_alert": match.drug.is_high_alert,
        "therapy": entry.therapy,
        "mode": entry.mode.value,
        "dosing_unit": shown_limits(entry)[0],
        "concentrations": [str(c) for c in entry.concentrations],
        "dose_limits": json_format.encode_value(shown_limits(entry)[1]),
    }


def _limits_text(limits: LimitSet) -> str:
    return " / ".join(
        "-" if v is None else format_decimal(v)
        for v in (limits.hard_min, limits.soft_min, limits.soft_max, limits.hard_max)
    )


@library_app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="Any part of a drug name, alias, brand or Tall Man form.")],
    file: Annotated[
        Path, typer.Argument(help="Library file: .json (canonical) or .xlsx (smartpump layout).")
    ],
    care_area: Annotated[
        str | None, typer.Option("--care-area", help="Only entries of this care area (id or name).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")] = False,
) -> None:
    """Find entries by any drug name (case-insensitive, part of a name); "did you mean" when none.
    Exit 1 when nothing is found."""
    if not query.strip():
        fail("the query is empty", code="cli.empty_query")
    library = load_library(file)
    area_id: str | None = None
    if care_area is not None:
        try:
            area_id = library.care_area(care_area).id
        except SmartpumpError as error:
            fail(f"{error.message} (known: {', '.join(a.id for a in library.care_areas)})", code=error.code)
    found = search(library, query, high_alert_table())
    matches = [m for m in found.matches if area_id is None or m.entry.care_area_id == area_id]
    documents = [_match_document(library, m) for m in matches]
    if as_json:
        emit_json(
            {"query": query, "file": str(file), "matches": documents, "did_you_mean": found.did_you_mean}
        )
    elif documents:
        table = Table(title=f"{len(documents)} entries for {query!r}", box=box.SIMPLE_HEAD)
        for column in ("entry", "care area", "drug", "matched", "therapy", "dosing unit", "limits"):
            table.add_column(column, no_wrap=column in ("entry", "drug", "dosing unit"))
        for m, d in zip(matches, documents, strict=True):
            table.add_row(
                d["entry_id"],
                d["care_area"],
                d["drug"] + (" (HA)" if d["high_alert"] else ""),
                d["matched"],
                d["therapy"] or "",
                d["dosing_unit"],
                _limits_text(shown_limits(m.entry)[1]),
            )
        console.print(table)
        console.print("limits: hard min / soft min / soft max / hard max; HA = high-alert", highlight=False)
    else:
        where = "" if area_id is None else f" in care area {area_id}"
        err_console.print(f"no entry matches {query!r}{where}", markup=False, highlight=False)
        if found.did_you_mean:
            err_console.print(
                f"did you mean: {', '.join(found.did_you_mean)}?", markup=False, highlight=False
            )
    if not documents:
        raise typer.Exit(EXIT_NOT_FOUND)
