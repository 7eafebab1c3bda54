"""Look-alike/sound-alike drug names as data: pairs of names a nurse may pick one for the other.

A table (``ConfusedNamesTable``) holds name pairs with their source ('ISMP' or 'institutional'). A
library drug answers to a table name when the name's words occur, in order and whole, in one of the
drug's names, case-folded ('morphine' matches "morphine sulfate PF", not "HYDROmorphone"). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpump.library.high_alert import TableSource, tokens
from smartpump.library.model import Drug, DrugLibrary


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfusedPair:
    """Two drug names confused with each other, and where the pair comes from."""

    first: str
    second: str
    source: str

    @property
    def label(self) -> str:
        """'DOPamine / DOBUTamine (ISMP)'."""
        return f"{self.first} / {self.second} ({self.source})"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrugMixup:
    """Two library drugs a pair says may be confused (``intended`` picked as ``picked`` and back)."""

    pair: ConfusedPair
    first: Drug
    second: Drug


def _words_in(phrase: tuple[str, ...], words: tuple[str, ...]) -> bool:
    size = len(phrase)
    return size > 0 and any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def answers_to(drug: Drug, name: str) -> bool:
    """True when ``name``'s words occur whole and in order in one of the drug's names."""
    phrase = tokens(name)
    return any(_words_in(phrase, tokens(own)) for own in drug.names() if own)


@dataclass(frozen=True, slots=True)
class ConfusedNamesTable:
    """The confused-name pairs and the source they were written from."""

    source: TableSource
    pairs: tuple[ConfusedPair, ...]

    def mixups(self, library: DrugLibrary) -> tuple[DrugMixup, ...]:
        """Every pair of distinct library drugs answering to the two names of a pair (table order)."""
        found: list[DrugMixup] = []
        seen: set[tuple[str, str]] = set()
        for pair in self.pairs:
            firsts = [d for d in library.drugs if answers_to(d, pair.first)]
            seconds = [d for d in library.drugs if answers_to(d, pair.second)]
            for first in firsts:
                for second in seconds:
                    key = (min(first.id, second.id), max(first.id, second.id))
                    if first.id == second.id or key in seen:
                        continue
                    seen.add(key)
                    found.append(DrugMixup(pair=pair, first=first, second=second))
        return tuple(found)
