"""High-alert medication knowledge as data: which library drugs an ISMP-style table lists, and why.

The table (``HighAlertTable``) holds listings (an ISMP class such as "opioids" or a specific
medication such as "magnesium sulfate injection") and a vocabulary of medications (generic name,
aliases, brands) that point at listings. A drug matches a listing by any of its names (whole words,
case-folded; a trailing ``*`` in a table phrase matches a word prefix), by its ``drug_class``, by
the route or kind of its entries, or by a strength in its name (hypertonic dextrose and saline).
``apply_high_alert`` flags matched drugs that the source left unflagged and returns what it did, so
an import report can list every flag for the pharmacist to confirm or clear. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.library.model import Drug, DrugLibrary, Entry, EntryKind, Route

_TOKEN: Final = re.compile(r"\d+(?:\.\d+)?%?|[^\W\d_]+")


def tokens(text: str) -> tuple[str, ...]:
    """Words and numbers of a name, case-folded; letters and digits split ('KCL10' -> kcl, 10).

    >>> tokens("0.45%NS+KCL10 mEq/L")
    ('0.45%', 'ns', 'kcl', '10', 'meq', 'l')
    """
    return tuple(_TOKEN.findall(text.casefold()))


def _phrase_in(phrase: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """True when the phrase's words occur contiguously in ``words`` (last word may end in '*')."""
    size = len(phrase)
    if not size:
        return False
    last = phrase[-1]
    prefix = last.endswith("*")
    for start in range(len(words) - size + 1):
        window = words[start : start + size]
        if window[:-1] != phrase[:-1]:
            continue
        if window[-1] == last or (prefix and window[-1].startswith(last[:-1])):
            return True
    return False


class ListingKind(StrEnum):
    """An ISMP class/category of medications, or one specific medication."""

    CLASS = "class"
    MEDICATION = "medication"


@dataclass(frozen=True, slots=True, kw_only=True)
class HighAlertListing:
    """One line of the list: id, kind, wording, source ('ISMP' or 'institutional'), and how drugs
    match it besides the medication vocabulary: names in a drug name, class names, entry routes and
    kinds, and a strength threshold (percent, inclusive or not) for names such as 'dextrose 50%'."""

    id: str
    kind: ListingKind
    name: str
    source: str
    names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    entry_kinds: tuple[EntryKind, ...] = ()
    min_percent: Decimal | None = None
    percent_inclusive: bool = True

    @property
    def label(self) -> str:
        """'ISMP class: opioids, IV, oral and transdermal' (or 'institutional medication: ...')."""
        return f"{self.source} {self.kind.value}: {self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HighAlertMedication:
    """A medication of the vocabulary: generic name, aliases, brands, the listings it falls under,
    and phrases that, in a drug name, mean another product (e.g. 'meq l' for a premixed KCl fluid)."""

    name: str
    listings: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """Generic name, aliases and brands."""
        return (self.name, *self.aliases, *self.brands)


@dataclass(frozen=True, slots=True, kw_only=True)
class TableSource:
    """Where the table comes from: title, publisher, edition, when it was transcribed, and a note."""

    title: str
    publisher: str
    edition: str
    transcribed: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.title} ({self.publisher}, {self.edition} edition; transcribed {self.transcribed})"


@dataclass(frozen=True, slots=True, kw_only=True)
class HighAlertMatch:
    """Why a drug is high-alert: the listing and what matched (a name, class, route, kind or strength)."""

    listing: HighAlertListing
    matched: str


@dataclass(frozen=True, slots=True)
class HighAlertTable:
    """The listings and the medication vocabulary, with the source they were written from."""

    source: TableSource
    listings: tuple[HighAlertListing, ...]
    medications: tuple[HighAlertMedication, ...]

    def __post_init__(self) -> None:
        known = {listing.id for listing in self.listings}
        for medication in self.medications:
            unknown = [i for i in medication.listings if i not in known]
            if unknown:
                raise ValueError(f"medication {medication.name!r} names unknown listings {unknown}")

    def listing(self, listing_id: str) -> HighAlertListing:
        """The listing with this id (KeyError when there is none)."""
        for listing in self.listings:
            if listing.id == listing_id:
                return listing
        raise KeyError(listing_id)

    def medications_named(self, text: str) -> tuple[HighAlertMedication, ...]:
        """Medications one of whose names occurs (whole words) in ``text`` and no exclusion does."""
        words = tokens(text)
        return tuple(m for m in self.medications if _names_match(m.names(), m.excludes, words) is not None)

    def match(self, drug: Drug, entries: Iterable[Entry] = ()) -> tuple[HighAlertMatch, ...]:
        """Every listing the drug falls under (one match per listing, table order)."""
        found: dict[str, HighAlertMatch] = {}
        drug_entries = tuple(entries)
        for name in drug.names():
            words = tokens(name)
            for medication in self.medications:
                hit = _names_match(medication.names(), medication.excludes, words)
                if hit is not None:
                    for listing_id in medication.listings:
                        match = HighAlertMatch(listing=self.listing(listing_id), matched=hit)
                        found.setdefault(listing_id, match)
            for listing in self.listings:
                hit = _listing_name_match(listing, words)
                if hit is not None:
                    found.setdefault(listing.id, HighAlertMatch(listing=listing, matched=hit))
        for listing in self.listings:
            hit = _listing_other_match(listing, drug, drug_entries)
            if hit is not None:
                found.setdefault(listing.id, HighAlertMatch(listing=listing, matched=hit))
        order = {listing.id: index for index, listing in enumerate(self.listings)}
        return tuple(sorted(found.values(), key=lambda m: order[m.listing.id]))


def _names_match(names: tuple[str, ...], excludes: tuple[str, ...], words: tuple[str, ...]) -> str | None:
    """The first name that occurs in ``words``, or None (also when an exclusion occurs)."""
    if any(_phrase_matches(phrase, words) for phrase in excludes):
        return None
    return next((name for name in names if _phrase_matches(name, words)), None)


def _prefix_tokens(phrase: str) -> tuple[str, ...]:
    words = tokens(phrase[:-1])
    return (*words[:-1], words[-1] + "*") if words else ()


def _phrase_matches(phrase: str, words: tuple[str, ...]) -> bool:
    if phrase.endswith("*"):
        return _phrase_in(_prefix_tokens(phrase), words)
    return _phrase_in(tokens(phrase), words)


def _percents(words: tuple[str, ...]) -> list[Decimal]:
    return [Decimal(w[:-1]) for w in words if w.endswith("%")]


def _listing_name_match(listing: HighAlertListing, words: tuple[str, ...]) -> str | None:
    for name in listing.names:
        if not _phrase_matches(name, words):
            continue
        if listing.min_percent is None:
            return name
        threshold = listing.min_percent
        for percent in _percents(words):
            if percent > threshold or (listing.percent_inclusive and percent == threshold):
                return f"{name} {percent}%"
    return None


def _listing_other_match(listing: HighAlertListing, drug: Drug, entries: tuple[Entry, ...]) -> str | None:
    if drug.drug_class is not None:
        words = tokens(drug.drug_class)
        for class_name in (*listing.class_names, listing.name):
            if tokens(class_name) == words:
                return f"class {drug.drug_class}"
    for entry in entries:
        if entry.route in listing.routes:
            return f"route {entry.route.value}"
        if entry.kind in listing.entry_kinds:
            return f"kind {entry.kind.value}"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HighAlertFlag:
    """What applying the table did to one drug: ``flagged`` (set high-alert), or ``kept_unflagged``
    (the source says not high-alert explicitly: reported, not changed), with the matches."""

    drug_id: str
    drug_name: str
    action: str
    matches: tuple[HighAlertMatch, ...]

    @property
    def reasons(self) -> str:
        """'ISMP class: opioids, IV, oral and transdermal (fentanyl); ...'."""
        return "; ".join(f"{m.listing.label} ({m.matched})" for m in self.matches)


FLAGGED: Final = "flagged"
KEPT_UNFLAGGED: Final = "kept_unflagged"


def apply_high_alert(
    library: DrugLibrary, table: HighAlertTable, *, source_has_flags: bool
) -> tuple[DrugLibrary, tuple[HighAlertFlag, ...]]:
    """Flag drugs the table lists. When the source holds no high-alert flag (vendor exports) every
    match is set and reported ``flagged``; when it does (CSV, workbook, JSON), a drug the source
    marks not high-alert keeps its flag and is reported ``kept_unflagged`` for the pharmacist."""
    by_drug: dict[str, list[Entry]] = {}
    for entry in library.entries:
        by_drug.setdefault(entry.drug_id, []).append(entry)
    flags: list[HighAlertFlag] = []
    drugs: list[Drug] = []
    for drug in library.drugs:
        matches = () if drug.is_high_alert else table.match(drug, by_drug.get(drug.id, ()))
        if matches:
            action = KEPT_UNFLAGGED if source_has_flags else FLAGGED
            flags.append(
                HighAlertFlag(drug_id=drug.id, drug_name=drug.shown_name, action=action, matches=matches)
            )
            if action == FLAGGED:
                drug = replace(drug, is_high_alert=True)
        drugs.append(drug)
    if not any(f.action == FLAGGED for f in flags):
        return library, tuple(flags)
    return replace(library, drugs=tuple(drugs)), tuple(flags)
