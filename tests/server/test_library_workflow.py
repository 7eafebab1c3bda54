"""The pharmacist's daily work on the server: entry search with "did you mean", the care-area coverage
report, diff of any two versions, confirmed removal, deployment from the UI, and the audit view.

The library here is synthetic (tests/factories.py): heparin stored as an import would name it ("HEPARIN
SODIUM"), norepinephrine with its Tall Man form and a brand alias, dopamine in two care areas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from smartpump.library.model import DrugLibrary
from smartpump.library.search import search
from smartpump.server.auth import Role
from smartpump.server.services.library_coverage import coverage
from tests.factories import dose_limits, make_care_area, make_drug, make_entry, make_library
from tests.server.conftest import World, library_payload
from tests.server.test_web_pages import csrf_of, login

LIBS = "/api/v1/libraries"


def _drugs() -> tuple[Any, ...]:
    return (
        make_drug(),
        make_drug(id="heparin", generic_name="HEPARIN SODIUM", display_name="", drug_class="anticoagulant"),
        make_drug(
            id="norepinephrine",
            generic_name="norepinephrine",
            display_name="norEPINEPHrine",
            aliases=("Levophed",),
        ),
    )


def _entries(*, heparin_hard_max: int | None = 30) -> tuple[Any, ...]:
    return (
        make_entry(),
        make_entry(id="ward-dopamine", care_area_id="ward"),
        make_entry(id="icu-norepinephrine", drug_id="norepinephrine"),
        make_entry(
            id="icu-heparin",
            drug_id="heparin",
            dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_max=20, hard_max=heparin_hard_max),
        ),
    )


def _library(**overrides: Any) -> DrugLibrary:
    fields: dict[str, Any] = {
        "hospital_id": "north",
        "drugs": _drugs(),
        "care_areas": (make_care_area(), make_care_area(id="ward", name="Med-surg ward")),
        "entries": _entries(),
    }
    fields.update(overrides)
    return make_library(**fields)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("heparin", {"icu-heparin"}),
        ("HePaRiN  sodium", {"icu-heparin"}),
        ("levophed", {"icu-norepinephrine"}),
        ("norepi", {"icu-norepinephrine"}),
        ("NOREPINEPHRINE", {"icu-norepinephrine"}),
        ("dopa", {"icu-dopamine", "ward-dopamine"}),
    ],
)
def test_search_finds_entries_by_any_name_alias_or_tall_man_form(query: str, found: set[str]) -> None:
    result = search(_library(), query)
    assert {m.entry.id for m in result.matches} == found
    assert result.did_you_mean == ()


def test_search_without_a_match_offers_the_closest_names() -> None:
    assert search(_library(), "levofed").did_you_mean == ("norEPINEPHrine",)
    assert search(_library(), "hepatin").did_you_mean == ("HEPARIN SODIUM",)
    assert search(_library(), "zzz").did_you_mean == ()


def test_coverage_counts_entries_and_names_gaps_per_care_area() -> None:
    report = coverage(_library(entries=_entries(heparin_hard_max=None)))
    icu, ward = report.areas
    assert (icu.entries, icu.drugs, ward.entries, ward.drugs) == (3, 3, 1, 1)
    assert icu.high_alert_without_hard_max == ("HEPARIN SODIUM (icu-heparin)",)
    assert ward.high_alert_without_hard_max == ()
    assert report.common_classes == ("vasopressor",)
    assert (icu.missing_common_classes, ward.missing_common_classes) == ((), ())


def test_coverage_names_a_class_most_care_areas_carry_and_one_lacks() -> None:
    areas = (make_care_area(), make_care_area(id="ward", name="Ward"), make_care_area(id="or", name="OR"))
    entries = (
        make_entry(),
        make_entry(id="ward-dopamine", care_area_id="ward"),
        make_entry(id="or-heparin", care_area_id="or", drug_id="heparin"),
    )
    report = coverage(_library(care_areas=areas, entries=entries))
    assert [a.missing_common_classes for a in report.areas] == [(), (), ("vasopressor",)]


class Desk:
    """North with a released v1 and a draft v2 of the synthetic library; a pharmacist, approvers, a biomed."""

    def __init__(self, world: World, browsers: list[TestClient]) -> None:
        self.world = world
        self.browsers = browsers
        self.facility = world.facility("north")
        world.user((Role.PHARMACIST, self.facility), username="pam")
        world.user((Role.PHARMACY_APPROVER, self.facility), username="apa")
        world.user((Role.PHARMACY_APPROVER, self.facility), username="abe")
        world.user((Role.BIOMED, self.facility), username="bea")
        world.user((Role.AUDITOR, None), username="aud")
        library = _library()
        body = library_payload(
            self.facility, drugs=library.drugs, care_areas=library.care_areas, entries=library.entries
        )
        created = world.post_json(LIBS, body, world.login("pam")).json()
        self.v1: int = created["id"]
        client = world.client
        assert client.post(f"{LIBS}/{self.v1}/submit", headers=world.login("pam")).status_code == 200
        for approver in ("apa", "abe"):
            assert (
                client.post(f"{LIBS}/{self.v1}/approve", headers=world.login(approver), json={}).status_code
                == 200
            )
        assert client.post(f"{LIBS}/{self.v1}/release", headers=world.login("apa")).status_code == 200
        self.v2: int = client.post(
            LIBS, json={"facility_id": self.facility, "based_on_id": self.v1}, headers=world.login("pam")
        ).json()["id"]

    def browser(self, username: str) -> TestClient:
        """A logged-in browser."""
        return login(self.world.app, self.browsers, username)


@pytest.fixture
def browsers(app: Any) -> Iterator[list[TestClient]]:
    opened: list[TestClient] = []
    yield opened
    for client in opened:
        client.close()


@pytest.fixture
def desk(world: World, browsers: list[TestClient]) -> Desk:
    return Desk(world, browsers)


def test_search_api_and_page_find_levophed_and_suggest_on_a_typo(desk: Desk) -> None:
    found = desk.world.client.get(
        f"{LIBS}/{desk.v2}/search", params={"q": "levophed"}, headers=desk.world.login("bea")
    ).json()
    assert [(m["entry_id"], m["drug"], m["matched"]) for m in found["matches"]] == [
        ("icu-norepinephrine", "norEPINEPHrine", "Levophed")
    ]
    page = desk.browser("pam").get(f"/ui/libraries/{desk.v2}", params={"q": "heparin"}).text
    assert 'data-entry="icu-heparin"' in page
    assert 'data-entry="icu-dopamine"' not in page
    typo = desk.browser("pam").get(f"/ui/libraries/{desk.v2}", params={"q": "levofed"}).text
    assert "Did you mean" in typo
    assert "data-suggestion>norEPINEPHrine</a>" in typo


def test_coverage_api_and_page(desk: Desk) -> None:
    body = desk.world.client.get(f"{LIBS}/{desk.v1}/coverage", headers=desk.world.login("pam")).json()
    assert [(a["care_area_id"], a["entries"]) for a in body["areas"]] == [("icu", 3), ("ward", 1)]
    page = desk.browser("pam").get(f"/ui/libraries/{desk.v1}/coverage")
    assert page.status_code == 200
    assert 'data-care-area="ward"' in page.text
    assert desk.browser("bea").get(f"/ui/libraries/{desk.v1}/coverage").status_code == 403


def test_remove_asks_for_confirmation_server_side(desk: Desk) -> None:
    pam = desk.browser("pam")
    token = csrf_of(pam.get(f"/ui/libraries/{desk.v2}").text)
    asked = pam.post(f"/ui/libraries/{desk.v2}/entries/icu-heparin/delete", data={"csrf": token})
    assert asked.status_code == 200
    assert 'name="confirm" value="yes"' in asked.text
    document = desk.world.client.get(f"{LIBS}/{desk.v2}/document", headers=desk.world.login("pam")).json()
    assert "icu-heparin" in {e["id"] for e in document["entries"]}
    done = pam.post(
        f"/ui/libraries/{desk.v2}/entries/icu-heparin/delete", data={"csrf": token, "confirm": "yes"}
    )
    assert done.status_code == 303
    document = desk.world.client.get(f"{LIBS}/{desk.v2}/document", headers=desk.world.login("pam")).json()
    assert "icu-heparin" not in {e["id"] for e in document["entries"]}


def test_any_two_versions_can_be_compared_in_the_api_and_the_page(desk: Desk) -> None:
    pam = desk.browser("pam")
    token = csrf_of(pam.get(f"/ui/libraries/{desk.v2}").text)
    pam.post(f"/ui/libraries/{desk.v2}/entries/icu-heparin/delete", data={"csrf": token, "confirm": "yes"})
    v3 = desk.world.client.post(
        LIBS, json={"facility_id": desk.facility, "based_on_id": desk.v2}, headers=desk.world.login("pam")
    ).json()["id"]
    diff = desk.world.client.get(
        f"{LIBS}/{v3}/diff", params={"against": desk.v1}, headers=desk.world.login("pam")
    ).json()
    assert (diff["old_version"], diff["new_version"]) == (1, 3)
    assert [(c["kind"], c["where"].split()[0]) for c in diff["changes"] if c["section"] == "entry"] == [
        ("removed", "entry:icu-heparin")
    ]
    chosen = pam.get(f"/ui/libraries/{desk.v1}/compare", params={"against": desk.v2, "new": v3})
    assert (chosen.status_code, chosen.headers["location"]) == (
        303,
        f"/ui/libraries/{v3}/compare?against={desk.v2}",
    )
    same = pam.get(chosen.headers["location"]).text
    assert "Changes from v2 to v3" in same
    assert "entry:icu-heparin" not in same
    changed = pam.get(f"/ui/libraries/{v3}/compare", params={"against": desk.v1}).text
    assert "entry:icu-heparin" in changed


def test_a_pharmacy_approver_deploys_the_released_library_from_the_page(desk: Desk) -> None:
    desk.world.pump(desk.world.login("bea"), desk.facility, "P-1")
    assert 'id="deploy-form"' not in desk.browser("pam").get(f"/ui/libraries/{desk.v1}").text
    apa = desk.browser("apa")
    page = apa.get(f"/ui/libraries/{desk.v1}").text
    assert 'id="deploy-form"' in page
    deployed = apa.post(
        f"/ui/libraries/{desk.v1}/deploy", data={"csrf": csrf_of(page), "target_kind": "all", "waves": "100"}
    )
    assert deployed.status_code == 303
    (made,) = desk.world.client.get("/api/v1/deployments", headers=desk.world.login("apa")).json()
    assert (made["kind"], made["library_version"], made["targets"][0]["pump"]) == ("library", 1, "P-1")
    assert 'data-deployment="' in apa.get(f"/ui/libraries/{desk.v1}").text


def test_a_draft_cannot_be_deployed_and_a_pharmacist_may_not_deploy(desk: Desk) -> None:
    desk.world.pump(desk.world.login("bea"), desk.facility, "P-1")
    bea = desk.browser("bea")
    token = csrf_of(bea.get(f"/ui/libraries/{desk.v2}").text)
    draft = bea.post(f"/ui/libraries/{desk.v2}/deploy", data={"csrf": token, "target_kind": "all"})
    assert (draft.status_code, "library.not_released" in draft.text) == (409, True)
    pam = desk.browser("pam")
    token = csrf_of(pam.get(f"/ui/libraries/{desk.v1}").text)
    assert (
        pam.post(f"/ui/libraries/{desk.v1}/deploy", data={"csrf": token, "target_kind": "all"}).status_code
        == 403
    )


def test_audit_view_is_newest_first_filters_by_text_and_reads_details(desk: Desk) -> None:
    aud = desk.browser("aud")
    page = aud.get("/ui/audit").text
    seqs = [int(part.split('"')[0]) for part in page.split('data-seq="')[1:]]
    assert seqs == sorted(seqs, reverse=True)
    filtered = aud.get(
        "/ui/audit", params={"action": "RELEASED", "actor": "ap", "target": f"library {desk.v1}"}
    )
    rows = filtered.text.split('data-seq="')[1:]
    assert len(rows) == 1
    assert "library.released" in rows[0]
    assert '<span class="muted">version:</span> 1' in rows[0]
    assert "{&#34;" not in filtered.text and '{"' not in rows[0]
