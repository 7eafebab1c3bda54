"""Care-area coverage of a library, for the pharmacist: per care area, how many entries, which high-alert
drugs lack a dose hard max, and which drug classes common elsewhere it lacks.

A drug's class is its ``drug_class``, or the drug itself when it has none (so an unclassified library still
shows which drugs most care areas carry and this one does not). A class is *common* when more than half of
the library's care areas carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpump.library.model import Drug, DrugLibrary


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaCoverage:
    """One care area's coverage."""

    care_area_id: str
    name: str
    entries: int
    drugs: int
    high_alert_without_hard_max: tuple[str, ...]
    """'<shown drug name> (<entry id>)' of high-alert entries whose dose has no hard max."""
    missing_common_classes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """The library's coverage, care area by care area, and the classes counted as common."""

    areas: tuple[AreaCoverage, ...]
    common_classes: tuple[str, ...]


def class_of(drug: Drug) -> str:
    """The class a drug counts under: its drug class, else its shown name."""
    return drug.drug_class or drug.shown_name


def coverage(library: DrugLibrary) -> Coverage:
    """Coverage of every care area of ``library`` (in the library's care-area order)."""
    classes_in: dict[str, set[str]] = {area.id: set() for area in library.care_areas}
    for entry in library.entries:
        classes_in.setdefault(entry.care_area_id, set()).add(class_of(library.drug(entry.drug_id)))
    areas = len(library.care_areas)
    carried_by: dict[str, int] = {}
    for found in classes_in.values():
        for name in found:
            carried_by[name] = carried_by.get(name, 0) + 1
    common = sorted(name for name, count in carried_by.items() if 2 * count > areas and areas > 1)
    result = []
    for area in library.care_areas:
        entries = [e for e in library.entries if e.care_area_id == area.id]
        unprotected = tuple(
            f"{library.drug(e.drug_id).shown_name} ({e.id})"
            for e in entries
            if library.drug(e.drug_id).is_high_alert and e.dose.limits.hard_max is None
        )
        result.append(
            AreaCoverage(
                care_area_id=area.id,
                name=area.name,
                entries=len(entries),
                drugs=len({e.drug_id for e in entries}),
                high_alert_without_hard_max=unprotected,
                missing_common_classes=tuple(c for c in common if c not in classes_in[area.id]),
            )
        )
    return Coverage(areas=tuple(result), common_classes=tuple(common))
