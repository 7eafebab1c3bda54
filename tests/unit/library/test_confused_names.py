"""The confused-names table: stated source, pairs with a source each, whole-word matching, refusals."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from smartpump.errors import LibraryFormatError
from smartpump.library.confused_names import answers_to
from smartpump.library.formats.confused_names_table import confused_names_table, parse_table
from tests.factories import make_drug, make_library


def _document() -> dict[str, Any]:
    text = (
        resources.files("smartpump.library.formats").joinpath("ismp_confused_names.json").read_text("utf-8")
    )
    document: dict[str, Any] = json.loads(text)
    return document


def test_the_packaged_table_states_its_source_and_marks_additions() -> None:
    table = confused_names_table()
    assert table.source.title == "ISMP List of Confused Drug Names"
    assert table.source.edition and table.source.transcribed
    assert {p.source for p in table.pairs} == {"ISMP", "institutional"}
    assert ("DOPamine", "DOBUTamine") in {(p.first, p.second) for p in table.pairs}


@pytest.mark.parametrize(
    ("name", "drug_name", "answers"),
    [
        ("morphine", "morphine sulfate PF", True),
        ("morphine", "HYDROmorphone", False),
        ("DOPamine", "dopamine", True),
        ("EPINEPHrine", "norEPINEPHrine", False),
        ("magnesium sulfate", "MAGNESIUM SULFATE 4 g", True),
        ("magnesium sulfate", "magnesium", False),
    ],
)
def test_names_match_whole_words_in_order(name: str, drug_name: str, answers: bool) -> None:
    assert answers_to(make_drug(generic_name=drug_name, display_name=""), name) is answers


def test_mixups_pair_distinct_library_drugs_once() -> None:
    drugs = (
        make_drug(id="dopamine", generic_name="dopamine", display_name="DOPamine"),
        make_drug(id="dobutamine", generic_name="dobutamine", display_name="DOBUTamine"),
        make_drug(id="hydromorphone", generic_name="hydromorphone", display_name="HYDROmorphone"),
    )
    mixups = confused_names_table().mixups(make_library(drugs=drugs, entries=()))
    assert [(m.first.id, m.second.id, m.pair.source) for m in mixups] == [("dopamine", "dobutamine", "ISMP")]


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (lambda d: d.update(format="other/1"), "format must be"),
        (lambda d: d["pairs"].append({"names": ["a"], "source": "ISMP"}), "not enough values"),
        (lambda d: d["pairs"].append({"names": ["a", "b"], "source": "blog"}), "source must be one of"),
        (lambda d: d["pairs"].append({"names": ["a", " "], "source": "ISMP"}), "non-blank"),
        (lambda d: d.pop("source"), "source"),
    ],
)
def test_a_malformed_table_is_refused_with_the_reason(change: Any, text: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(LibraryFormatError) as raised:
        parse_table(document)
    assert raised.value.code == "library.confused_names_table"
    assert text in raised.value.message
