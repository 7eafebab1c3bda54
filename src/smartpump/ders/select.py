"""Choosing the library entry a clinician or an order means: by drug, therapy, concentration and unit.

Names match case-insensitively, Tall Man or not, with leading sort dots ignored. A request that
fits no entry, or more than one, is refused with the candidates listed: never a guess.
"""

from __future__ import annotations

from smartpump.errors import LookupFailedError
from smartpump.library.model import DrugLibrary, Entry, match_key
from smartpump.units import Concentration, DoseUnit, dose_units_convertible, format_decimal


def describe(library: DrugLibrary, entry: Entry) -> str:
    """A one-line description of an entry for candidate lists: drug | therapy | conc | unit (id)."""
    drug = library.drug(entry.drug_id)
    concentrations = ", ".join(str(c) for c in entry.concentrations)
    if entry.custom_concentration is not None:
        concentrations = ", ".join(
            filter(None, [concentrations, f"custom {entry.custom_concentration.unit}/mL"])
        )
    parts = [drug.shown_name, entry.therapy or "-", concentrations or "-", str(entry.dosing_unit)]
    return " | ".join(parts) + f" ({entry.id})"


def find_entry(
    library: DrugLibrary,
    care_area_id: str,
    drug: str,
    *,
    therapy: str | None = None,
    concentration: Concentration | None = None,
    dose_unit: DoseUnit | None = None,
) -> Entry:
    """The single entry of a care area matching the request.

    Raises:
        LookupFailedError: no care area, no matching entry (code ``library.no_entry``), or several
            (code ``library.ambiguous_entry``, with ``candidates`` describing each one).
    """
    area = library.care_area(care_area_id)
    wanted = match_key(drug)
    in_area = list(library.entries_in(area.id))
    candidates = [e for e in in_area if wanted in {match_key(n) for n in library.drug(e.drug_id).names()}]
    if not candidates:
        raise LookupFailedError(
            f"no entry for {drug!r} in care area {area.id!r}",
            candidates=tuple(sorted({library.drug(e.drug_id).shown_name for e in in_area})),
            code="library.no_entry",
        )
    if therapy is not None:
        wanted_therapy = match_key(therapy)
        candidates = [e for e in candidates if match_key(e.therapy or "") == wanted_therapy]
    if concentration is not None:
        same_bag = [e for e in candidates if e.has_concentration(concentration)]
        listed = same_bag or [
            e for e in candidates if any(c.same_strength(concentration) for c in e.concentrations)
        ]
        custom = [
            e
            for e in candidates
            if e.custom_concentration is not None
            and e.custom_concentration.unit.dimension is concentration.unit.dimension
        ]
        candidates = listed or custom
    if dose_unit is not None:
        exact = [e for e in candidates if e.dosing_unit == dose_unit]
        candidates = exact or [e for e in candidates if dose_units_convertible(dose_unit, e.dosing_unit)]
    if len(candidates) == 1:
        return candidates[0]
    what = _request_text(drug, therapy, concentration, dose_unit)
    if not candidates:
        raise LookupFailedError(
            f"no entry in care area {area.id!r} matches {what}", code="library.no_entry", candidates=()
        )
    raise LookupFailedError(
        f"{len(candidates)} entries in care area {area.id!r} match {what}; say which",
        candidates=tuple(describe(library, e) for e in candidates),
        code="library.ambiguous_entry",
    )


def _request_text(
    drug: str, therapy: str | None, concentration: Concentration | None, unit: DoseUnit | None
) -> str:
    parts = [f"drug {drug!r}"]
    if therapy is not None:
        parts.append(f"therapy {therapy!r}")
    if concentration is not None:
        parts.append(f"concentration {format_decimal(concentration.per_ml)} {concentration.unit}/mL")
    if unit is not None:
        parts.append(f"unit {unit}")
    return ", ".join(parts)
