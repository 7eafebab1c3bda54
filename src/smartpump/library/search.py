"""Find a library's entries by any name of their drug: generic, Tall Man display name, alias or brand.

Matching ignores case and repeated spaces, and a query matches a name it is part of (``heparin`` finds
"HEPARIN SODIUM", ``norepi`` finds norEPINEPHrine, ``levophed`` finds it through its alias). Given a
high-alert table, a drug also answers to the aliases and brands of the table's medications named in it
(``levophed`` finds an imported "norepinephrine" that carries no alias). When nothing matches, the drugs
with the closest names or name words (difflib ratio of at least 0.6) are offered as "did you mean".
The web editor, the API and ``smartpump library search`` all use this one implementation. Pure.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Final

from smartpump.library.high_alert import HighAlertTable
from smartpump.library.model import Drug, DrugLibrary, Entry

MAX_SUGGESTIONS: Final = 5
SUGGESTION_CUTOFF: Final = 0.6


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """An entry found, with its drug and the name the query matched."""

    entry: Entry
    drug: Drug
    matched: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """Entries found (library order) and, when none, the names the user may have meant."""

    query: str
    matches: tuple[Match, ...]
    did_you_mean: tuple[str, ...]


def normalize(text: str) -> str:
    """Case-folded, with runs of whitespace made one space."""
    return " ".join(text.casefold().split())


def drug_names(drug: Drug, vocabulary: HighAlertTable | None = None) -> tuple[str, ...]:
    """The drug's own names, then the names of the vocabulary's medications its names contain."""
    own = tuple(n for n in drug.names() if n)
    known = [
        name
        for own_name in own
        for medication in (vocabulary.medications_named(own_name) if vocabulary else ())
        for name in medication.names()
    ]
    return tuple(dict.fromkeys((*own, *known)))


def search(library: DrugLibrary, query: str, vocabulary: HighAlertTable | None = None) -> SearchResult:
    """Entries whose drug has a name containing ``query``; suggestions when there are none."""
    wanted = normalize(query)
    if not wanted:
        return SearchResult(query=query, matches=(), did_you_mean=())
    names = {drug.id: drug_names(drug, vocabulary) for drug in library.drugs}
    matched: dict[str, str] = {}
    for drug in library.drugs:
        hit = next((name for name in names[drug.id] if wanted in normalize(name)), None)
        if hit is not None:
            matched[drug.id] = hit
    matches = tuple(
        Match(entry=e, drug=library.drug(e.drug_id), matched=matched[e.drug_id])
        for e in library.entries
        if e.drug_id in matched
    )
    if matches:
        return SearchResult(query=query, matches=matches, did_you_mean=())
    shown: dict[str, str] = {}
    for drug in library.drugs:
        for name in names[drug.id]:
            for candidate in (normalize(name), *normalize(name).split()):
                shown.setdefault(candidate, drug.shown_name)
    close = difflib.get_close_matches(wanted, list(shown), n=MAX_SUGGESTIONS * 2, cutoff=SUGGESTION_CUTOFF)
    return SearchResult(
        query=query, matches=(), did_you_mean=tuple(dict.fromkeys(shown[c] for c in close))[:MAX_SUGGESTIONS]
    )
