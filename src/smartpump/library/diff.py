"""Version-to-version differences a pharmacist reviewer reads, with every limit change and its factor.

Entries are matched by what they mean (care area, drug, therapy, dosing unit, concentrations), not by
id, so a vendor's re-numbering shows no change; drugs by generic name and care areas by name, each
falling back to id. Limit changes beyond x2 or x0.5, and limits that appear or disappear, are flagged.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeVar

from smartpump.library.limits import LimitKind, LimitSet
from smartpump.library.model import CareArea, Drug, DrugLibrary, EhrMapping, Entry, match_key
from smartpump.units import Concentration, Dimension, DoseUnit, format_decimal, ratio

Value = Decimal | int | bool | str
"""A compared parameter value; an absent (unconfigured) parameter has no value at all."""

FLAG_ABOVE: Final = Decimal(2)
FLAG_BELOW: Final = Decimal("0.5")
_LIMIT_NAMES: Final = frozenset(kind.value for kind in LimitKind)


class ChangeKind(StrEnum):
    """Whether a parameter (or a whole object) was added, removed or changed."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class Section(StrEnum):
    """Which part of the library a change is in (also the reading order of a diff)."""

    LIBRARY = "library"
    DRUG = "drug"
    CARE_AREA = "care_area"
    ENTRY = "entry"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One difference: where, which parameter, old and new value (None when absent), the factor
    new/old for numbers, and whether a reviewer must look at it (``flagged``).

    A whole drug, care area or entry added or removed has ``parameter`` equal to its section name.
    """

    kind: ChangeKind
    section: Section
    where: str
    parameter: str
    old: Value | None = None
    new: Value | None = None
    factor: Decimal | None = None
    flagged: bool = False

    @property
    def is_whole_object(self) -> bool:
        """True when a whole drug, care area or entry was added or removed."""
        return self.parameter == self.section.value

    @property
    def is_limit(self) -> bool:
        """True for a change of a configured limit (hard/soft min/max, or a care area max)."""
        return _is_limit(self.parameter)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffSummary:
    """Counts a reviewer reads first."""

    library_changes: int
    drugs_added: int
    drugs_removed: int
    drugs_changed: int
    care_areas_added: int
    care_areas_removed: int
    care_areas_changed: int
    entries_added: int
    entries_removed: int
    entries_changed: int
    limit_changes: int
    flagged: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryDiff:
    """The differences between two versions of a library, in a deterministic reading order."""

    old_version: int
    new_version: int
    changes: tuple[Change, ...]

    @property
    def flagged(self) -> tuple[Change, ...]:
        """The changes a reviewer must look at."""
        return tuple(c for c in self.changes if c.flagged)

    def summary(self) -> DiffSummary:
        """Counts of added/removed/changed objects, limit changes and flagged changes."""
        whole: dict[tuple[Section, ChangeKind], int] = defaultdict(int)
        changed: dict[Section, set[str]] = defaultdict(set)
        for change in self.changes:
            if change.is_whole_object:
                whole[change.section, change.kind] += 1
            else:
                changed[change.section].add(change.where)
        return DiffSummary(
            library_changes=sum(1 for c in self.changes if c.section is Section.LIBRARY),
            drugs_added=whole[Section.DRUG, ChangeKind.ADDED],
            drugs_removed=whole[Section.DRUG, ChangeKind.REMOVED],
            drugs_changed=len(changed[Section.DRUG]),
            care_areas_added=whole[Section.CARE_AREA, ChangeKind.ADDED],
            care_areas_removed=whole[Section.CARE_AREA, ChangeKind.REMOVED],
            care_areas_changed=len(changed[Section.CARE_AREA]),
            entries_added=whole[Section.ENTRY, ChangeKind.ADDED],
            entries_removed=whole[Section.ENTRY, ChangeKind.REMOVED],
            entries_changed=len(changed[Section.ENTRY]),
            limit_changes=sum(1 for c in self.changes if c.is_limit),
            flagged=len(self.flagged),
        )


def _is_limit(parameter: str) -> bool:
    last = parameter.rsplit(".", 1)[-1]
    return last in _LIMIT_NAMES or last.startswith("max_")


def _flatten(value: object, prefix: str, out: dict[str, Value]) -> None:
    """Every configured leaf of a domain value as ``path -> value``; LimitSet bounds sit directly
    under their parameter (``dose.hard_max``), absent values are left out."""
    if value is None:
        return
    if isinstance(value, DoseUnit | Concentration):
        out[prefix] = str(value)
    elif isinstance(value, LimitSet):
        for kind, bound in value.items():
            out[f"{prefix}.{kind}"] = bound
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if not field.name.startswith("_"):
                child = prefix if field.name == "limits" else f"{prefix}.{field.name}".lstrip(".")
                _flatten(getattr(value, field.name), child, out)
    elif isinstance(value, tuple):
        if value:
            out[prefix] = "; ".join(str(item) for item in value)
    elif isinstance(value, StrEnum):
        out[prefix] = value.value
    else:
        assert isinstance(value, Decimal | int | str), f"{prefix}: unexpected {type(value).__name__}"
        out[prefix] = value


def _flat(value: object, *, skip: tuple[str, ...] = ()) -> dict[str, Value]:
    out: dict[str, Value] = {}
    _flatten(value, "", out)
    return {k: v for k, v in out.items() if k.split(".", 1)[0] not in skip}


def _mapping_text(mapping: EhrMapping) -> str:
    parts = [mapping.alias]
    for name in ("additive_code", "diluent_code", "method", "comment"):
        extra = getattr(mapping, name)
        if extra is not None:
            parts.append(f"{name}={extra}")
    return ", ".join(parts)


def _flat_library(library: DrugLibrary) -> dict[str, Value]:
    out = _flat(library, skip=("drugs", "care_areas", "entries", "ehr_mappings"))
    seen: dict[str, int] = defaultdict(int)
    for mapping in library.ehr_mappings:
        seen[mapping.order_code] += 1
        suffix = f"#{seen[mapping.order_code]}" if seen[mapping.order_code] > 1 else ""
        out[f"ehr_mappings[{mapping.order_code}{suffix}]"] = _mapping_text(mapping)
    return out


def _numeric_factor(old: Value | None, new: Value | None) -> Decimal | None:
    if isinstance(old, Decimal) and isinstance(new, Decimal) and old != 0:
        return ratio(new, old)
    return None


def _is_flagged(parameter: str, kind: ChangeKind, old: Value | None, new: Value | None) -> bool:
    """Limits beyond x2 / x0.5 or that appear/disappear; dosing unit and high-alert changes."""
    last = parameter.rsplit(".", 1)[-1]
    if last in ("unit", "is_high_alert"):
        return True
    if not _is_limit(parameter):
        return False
    if kind is not ChangeKind.CHANGED:
        return True
    factor = _numeric_factor(old, new)
    if factor is None:
        return old == 0
    return factor > FLAG_ABOVE or factor < FLAG_BELOW


def _merged_order(old: list[str], new: list[str]) -> list[str]:
    """Keys of both, in model order: new's order, each old-only key right after its old predecessor."""
    order = list(new)
    for index, key in enumerate(old):
        if key not in order:
            order.insert(order.index(old[index - 1]) + 1 if index else 0, key)
    return order


def _compare(section: Section, where: str, old: dict[str, Value], new: dict[str, Value]) -> list[Change]:
    changes = []
    for parameter in _merged_order(list(old), list(new)):
        before, after = old.get(parameter), new.get(parameter)
        if before == after and type(before) is type(after):
            continue
        kind = (
            ChangeKind.ADDED
            if before is None
            else ChangeKind.REMOVED
            if after is None
            else ChangeKind.CHANGED
        )
        changes.append(
            Change(
                kind=kind,
                section=section,
                where=where,
                parameter=parameter,
                old=before,
                new=after,
                factor=_numeric_factor(before, after),
                flagged=_is_flagged(parameter, kind, before, after),
            )
        )
    return changes


_T = TypeVar("_T")


def _pair(
    old: Sequence[tuple[tuple[Hashable, ...], _T]], new: Sequence[tuple[tuple[Hashable, ...], _T]]
) -> tuple[list[tuple[_T, _T]], list[_T], list[_T]]:
    """Pair items level by level of their keys (most specific first); returns pairs and leftovers,
    leftovers in their original order."""
    pairs: list[tuple[_T, _T]] = []
    old_free, new_free = list(range(len(old))), list(range(len(new)))
    levels = len(old[0][0]) if old else 0
    for level in range(levels):
        index: dict[Hashable, list[int]] = defaultdict(list)
        for i in old_free:
            index[old[i][0][level]].append(i)
        used: set[int] = set()
        unmatched = []
        for j in new_free:
            bucket = index.get(new[j][0][level])
            if bucket:
                used.add(bucket[0])
                pairs.append((old[bucket.pop(0)][1], new[j][1]))
            else:
                unmatched.append(j)
        old_free = [i for i in old_free if i not in used]
        new_free = unmatched
    return pairs, [old[i][1] for i in old_free], [new[j][1] for j in new_free]


def _strength(concentration: Concentration) -> tuple[Dimension, Decimal, Decimal]:
    """Amount per mL in the dimension's base unit, and the container volume (1 g/250 mL == 1000 mg/250 mL)."""
    per_ml = concentration.per_ml.scaleb(concentration.unit.exponent10)
    return concentration.unit.dimension, per_ml, concentration.volume_ml


@dataclass(frozen=True, slots=True)
class _Side:
    """One library, how its care-area and drug ids map onto the common identities, and the names an
    entry compares them by (the old name for a matched one, so a renamed care area changes no entry)."""

    library: DrugLibrary
    care_area_identity: dict[str, str]
    drug_identity: dict[str, str]
    care_area_names: dict[str, str]
    drug_names: dict[str, str]

    def entry_keys(self, entry: Entry) -> tuple[Hashable, ...]:
        meaning = (
            self.care_area_identity[entry.care_area_id],
            self.drug_identity[entry.drug_id],
            match_key(entry.therapy or ""),
            str(entry.dosing_unit),
            frozenset(_strength(c) for c in entry.concentrations),
        )
        return ((meaning, entry.id), meaning, entry.id)

    def entry_where(self, entry: Entry) -> str:
        area = self.library.care_area(entry.care_area_id).name
        drug = self.library.drug(entry.drug_id).shown_name
        therapy = f" / {entry.therapy}" if entry.therapy else ""
        return f"entry:{entry.id} ({area} / {drug}{therapy} / {entry.dosing_unit})"

    def entry_sort(self, entry: Entry) -> tuple[str, ...]:
        area = self.library.care_area(entry.care_area_id).name
        drug = self.library.drug(entry.drug_id).generic_name
        return (
            match_key(area),
            match_key(drug),
            match_key(entry.therapy or ""),
            str(entry.dosing_unit),
            entry.id,
        )

    def flat_entry(self, entry: Entry) -> dict[str, Value]:
        out: dict[str, Value] = {
            "care_area": self.care_area_names[entry.care_area_id],
            "drug": self.drug_names[entry.drug_id],
        }
        out.update(_flat(entry, skip=("id", "care_area_id", "drug_id", "concentrations")))
        for concentration in entry.concentrations:
            out[f"concentrations[{concentration}]"] = str(concentration)
        return out


def _drug_where(drug: Drug) -> str:
    return f"drug:{drug.id} ({drug.shown_name})"


def _care_area_where(area: CareArea) -> str:
    return f"care_area:{area.id} ({area.name})"


_Item = TypeVar("_Item", Drug, CareArea, Entry)


def _diff_section(
    section: Section,
    pairs: list[tuple[_Item, _Item]],
    removed: list[_Item],
    added: list[_Item],
    *,
    old_view: Callable[[_Item], tuple[str, tuple[str, ...], dict[str, Value]]],
    new_view: Callable[[_Item], tuple[str, tuple[str, ...], dict[str, Value]]],
) -> list[Change]:
    """Changes of one section, ordered by each object's sort key (views give where, sort key, flat)."""
    blocks: list[tuple[tuple[str, ...], list[Change]]] = []
    for item in removed:
        where, order, _ = old_view(item)
        blocks.append(
            (
                order,
                [
                    Change(
                        kind=ChangeKind.REMOVED,
                        section=section,
                        where=where,
                        parameter=section.value,
                        old=where,
                    )
                ],
            )
        )
    for item in added:
        where, order, _ = new_view(item)
        blocks.append(
            (
                order,
                [
                    Change(
                        kind=ChangeKind.ADDED,
                        section=section,
                        where=where,
                        parameter=section.value,
                        new=where,
                    )
                ],
            )
        )
    for before, after in pairs:
        _, _, old_flat = old_view(before)
        where, order, new_flat = new_view(after)
        blocks.append((order, _compare(section, where, old_flat, new_flat)))
    blocks.sort(key=lambda block: block[0])
    return [change for _, block in blocks for change in block]


def diff(old: DrugLibrary, new: DrugLibrary) -> LibraryDiff:
    """Every difference from ``old`` to ``new``: library metadata, drugs, care areas, entries.

    Drugs are matched by generic name then id, care areas by name then id, entries by meaning
    (care area, drug, therapy, dosing unit, concentration set) then id. Pure and deterministic.
    """
    drug_pairs, drugs_removed, drugs_added = _pair(
        [((match_key(d.generic_name), d.id), d) for d in old.drugs],
        [((match_key(d.generic_name), d.id), d) for d in new.drugs],
    )
    area_pairs, areas_removed, areas_added = _pair(
        [((match_key(a.name), a.id), a) for a in old.care_areas],
        [((match_key(a.name), a.id), a) for a in new.care_areas],
    )
    old_side = _Side(
        old,
        {a.id: a.id for a in old.care_areas},
        {d.id: d.id for d in old.drugs},
        {a.id: a.name for a in old.care_areas},
        {d.id: d.generic_name for d in old.drugs},
    )
    new_side = _Side(
        new,
        {a.id: f"new:{a.id}" for a in new.care_areas} | {n.id: o.id for o, n in area_pairs},
        {d.id: f"new:{d.id}" for d in new.drugs} | {n.id: o.id for o, n in drug_pairs},
        {a.id: a.name for a in new.care_areas} | {n.id: o.name for o, n in area_pairs},
        {d.id: d.generic_name for d in new.drugs} | {n.id: o.generic_name for o, n in drug_pairs},
    )
    entry_pairs, entries_removed, entries_added = _pair(
        [(old_side.entry_keys(e), e) for e in old.entries],
        [(new_side.entry_keys(e), e) for e in new.entries],
    )

    def drug_view(drug: Drug) -> tuple[str, tuple[str, ...], dict[str, Value]]:
        return _drug_where(drug), (match_key(drug.generic_name), drug.id), _flat(drug, skip=("id",))

    def area_view(area: CareArea) -> tuple[str, tuple[str, ...], dict[str, Value]]:
        return _care_area_where(area), (match_key(area.name), area.id), _flat(area, skip=("id",))

    def entry_view(side: _Side) -> Callable[[Entry], tuple[str, tuple[str, ...], dict[str, Value]]]:
        return lambda entry: (side.entry_where(entry), side.entry_sort(entry), side.flat_entry(entry))

    changes = [
        *_compare(Section.LIBRARY, "library", _flat_library(old), _flat_library(new)),
        *_diff_section(
            Section.DRUG, drug_pairs, drugs_removed, drugs_added, old_view=drug_view, new_view=drug_view
        ),
        *_diff_section(
            Section.CARE_AREA, area_pairs, areas_removed, areas_added, old_view=area_view, new_view=area_view
        ),
        *_diff_section(
            Section.ENTRY,
            entry_pairs,
            entries_removed,
            entries_added,
            old_view=entry_view(old_side),
            new_view=entry_view(new_side),
        ),
    ]
    return LibraryDiff(old_version=old.version, new_version=new.version, changes=tuple(changes))


def format_value(value: Value | None) -> str:
    """A value as a reviewer reads it: plain decimals, yes/no, '-' when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)
