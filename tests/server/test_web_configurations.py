"""The pump configuration pages: versions and currency, one version's settings, and the biomed forms (draft
with inline refusals, restore defaults, release under separation of duties, deploy), CSRF and escaping."""

from __future__ import annotations

import html
import json
import re
import warnings
from typing import Any

import pytest

from smartpump.server.auth import Role
from tests.server.conftest import World
from tests.server.test_web_pages import SCRIPT, browsers, csrf_of, login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["browsers"]
LVP = "lvp-4"
PAGES = "/ui/configurations"
API = "/api/v1/configurations"


class Site:
    """One facility with two biomeds (bea, bob), a nurse (nina), two LVP pumps and a syringe pump."""

    def __init__(self, world: World, browsers: list[TestClient]) -> None:
        self.world = world
        self.browsers = browsers
        self.facility = world.facility("north")
        for username, role in (("bea", Role.BIOMED), ("bob", Role.BIOMED), ("nina", Role.NURSE)):
            world.user((role, self.facility), username=username)
        self.api = world.login("bob")
        for serial, model in (("LVP-1", LVP), ("LVP-2", LVP), ("SYR-1", "syringe-1")):
            world.pump(self.api, self.facility, serial, model=model)
        self._browsers: dict[str, TestClient] = {}

    def browser(self, username: str) -> TestClient:
        """A browser logged in as the user (once)."""
        if username not in self._browsers:
            self._browsers[username] = login(self.world.app, self.browsers, username)
        return self._browsers[username]

    def token(self, username: str, path: str = PAGES) -> str:
        """The CSRF token of a page the user opened."""
        return csrf_of(self.browser(username).get(path).text)

    def draft_form(self, **settings: str) -> dict[str, Any]:
        """The new-draft form as a browser submits it (empty settings: factory values)."""
        form = dict.fromkeys(
            (
                "max_rate_ml_per_h",
                "require_verification",
                "near_end_alert_min",
                "kvo_rate_ml_per_h",
                "set_change_interval_h",
            ),
            "",
        )
        return {"facility_id": str(self.facility), "model": LVP, "name": "ICU LVP cap", **form, **settings}

    def post_draft(self, username: str = "bea", **settings: str) -> Any:
        """Submit the new-draft form as a user."""
        return self.browser(username).post(
            PAGES, data={**self.draft_form(**settings), "csrf": self.token(username)}
        )

    def api_draft(self, name: str = "ICU LVP cap", **settings: Any) -> dict[str, Any]:
        """A draft by bea through the API."""
        body = {"facility_id": self.facility, "model": LVP, "name": name, "settings": settings}
        response = self.world.post_json(API, json.dumps(body), self.world.login("bea"))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def api_released(self, **settings: Any) -> dict[str, Any]:
        """A draft by bea released by bob through the API."""
        draft = self.api_draft(**settings)
        response = self.world.client.post(f"{API}/{draft['id']}/release", headers=self.api)
        assert response.status_code == 200, response.text
        released: dict[str, Any] = response.json()
        return released

    def stored(self) -> list[dict[str, Any]]:
        """Every configuration version of the facility, from the API."""
        found: list[dict[str, Any]] = self.world.client.get(API, headers=self.api).json()
        return found

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment of the facility, from the API."""
        found: list[dict[str, Any]] = self.world.client.get("/api/v1/deployments", headers=self.api).json()
        return found


@pytest.fixture
def site(world: World, browsers: list[TestClient]) -> Site:
    return Site(world, browsers)


def _cell(html: str, setting: str, column: str) -> str:
    """The text of one cell (``data-value`` or ``data-factory``) of a setting's row on the version page."""
    row = re.search(rf'<tr data-setting="{setting}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row for {setting}"
    cell = re.search(rf"<td {column}>(.*?)</td>", row.group(1), re.S)
    assert cell, f"no {column} cell for {setting}"
    return cell.group(1)


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'data-error-field="{re.escape(field)}">([^<]*)<', page)
    assert found, f"no error next to {field}"
    return html.unescape(found.group(1))


@pytest.mark.parametrize("role", list(Role))
def test_every_role_finds_configurations_in_the_navigation(
    world: World, browsers: list[TestClient], role: Role
) -> None:
    world.user((role, world.facility()), username="someone")
    client = login(world.app, browsers, "someone")
    assert 'data-nav="configurations"' in client.get("/ui/").text
    assert client.get(PAGES).status_code == 200


def test_list_shows_versions_per_model_and_the_fleet_currency(site: Site) -> None:
    released = site.api_released(max_rate_ml_per_h="500")
    draft = site.api_draft(name="Night shift", near_end_alert_min=10)
    page = site.browser("nina").get(PAGES)
    assert page.status_code == 200
    group = re.search(rf'data-group="{site.facility}-{LVP}">(.*?)</table>', page.text, re.S)
    assert group, page.text
    rows = re.findall(r'<tr data-configuration="(\d+)">(.*?)</tr>', group.group(1), re.S)
    assert [int(i) for i, _ in rows] == [draft["id"], released["id"]]
    newest, oldest = rows[0][1], rows[1][1]
    assert ">v2<" in newest and "Night shift" in newest and "st-draft" in newest and "bea" in newest
    assert ">v1<" in oldest and "st-released" in oldest and "bob" in oldest
    assert released["content_sha256"][:12] in oldest
    currency = re.search(rf'<tr data-currency="{site.facility}-{LVP}">(.*?)</tr>', page.text, re.S)
    assert currency
    assert "v1" in currency.group(1) and "0 / 2" in currency.group(1) and "v0: 2" in currency.group(1)
    assert "LVP-1, LVP-2" in currency.group(1)


def test_version_page_shows_each_setting_beside_its_factory_default_and_its_deployments(
    site: Site,
) -> None:
    released = site.api_released(max_rate_ml_per_h="99.9", require_verification=True)
    deployed = site.world.client.post(
        "/api/v1/deployments",
        headers=site.api,
        json={
            "facility_id": site.facility,
            "kind": "configuration",
            "configuration_id": released["id"],
            "target_kind": "pump",
            "target_value": "LVP-2",
        },
    )
    assert deployed.status_code == 201, deployed.text
    page = site.browser("nina").get(f"{PAGES}/{released['id']}").text
    assert (
        _cell(page, "max_rate_ml_per_h", "data-value"),
        _cell(page, "max_rate_ml_per_h", "data-factory"),
    ) == (
        "99.9",
        "none",
    )
    assert (
        _cell(page, "require_verification", "data-value"),
        _cell(page, "require_verification", "data-factory"),
    ) == (
        "yes",
        "no",
    )
    assert (
        _cell(page, "kvo_rate_ml_per_h", "data-value")
        == _cell(page, "kvo_rate_ml_per_h", "data-factory")
        == "1"
    )
    assert _cell(page, "set_change_interval_h", "data-factory") == "96"
    assert "Bedside barcode verification before every start" in page
    assert "0.1-999 mL/h" in page
    deployment = re.search(rf'<tr data-deployment="{deployed.json()["id"]}">(.*?)</tr>', page, re.S)
    assert deployment and "pump: LVP-2" in deployment.group(1)


def test_a_nurse_sees_no_forms_and_her_posts_are_refused(site: Site) -> None:
    released = site.api_released()
    draft = site.api_draft()
    nina = site.browser("nina")
    listing = nina.get(PAGES).text
    assert 'id="draft-form"' not in listing and 'id="defaults-form"' not in listing
    assert 'data-action="release-configuration"' not in nina.get(f"{PAGES}/{draft['id']}").text
    assert 'id="deploy-form"' not in nina.get(f"{PAGES}/{released['id']}").text
    token = site.token("nina")
    for path, form in (
        (PAGES, site.draft_form()),
        (f"{PAGES}/restore-defaults", {"facility_id": site.facility, "model": LVP}),
        (f"{PAGES}/{draft['id']}/release", {}),
        (f"{PAGES}/{released['id']}/deploy", {"target_kind": "all", "waves": "100"}),
    ):
        refused = nina.post(path, data={**form, "csrf": token})
        assert refused.status_code == 403, path
        assert "access.role" in refused.text and "Not allowed" in refused.text
    assert sorted(c["status"] for c in site.stored()) == ["draft", "released"]
    assert site.deployments() == []


def test_a_bad_setting_is_shown_next_to_its_field_and_nothing_is_stored(site: Site) -> None:
    refused = site.post_draft(max_rate_ml_per_h="1000", near_end_alert_min="ten", kvo_rate_ml_per_h="0.05")
    assert refused.status_code == 422
    assert "above the lvp-4 maximum of 999 mL/h" in _field_error(refused.text, "max_rate_ml_per_h")
    assert "must be a whole number, got 'ten'" in _field_error(refused.text, "near_end_alert_min")
    assert "below the lvp-4 minimum of 0.1 mL/h" in _field_error(refused.text, "kvo_rate_ml_per_h")
    assert 'data-error-field="set_change_interval_h"' not in refused.text
    assert 'value="1000"' in refused.text and 'value="ten"' in refused.text
    assert "configuration.invalid" in refused.text
    assert site.stored() == []


def test_a_draft_keeps_decimals_exactly_and_empty_fields_take_the_factory_values(site: Site) -> None:
    created = site.post_draft(max_rate_ml_per_h="99.9", require_verification="true", near_end_alert_min="10")
    assert created.status_code == 303, created.text
    (stored,) = site.stored()
    assert created.headers["location"] == f"{PAGES}/{stored['id']}"
    assert (stored["version"], stored["status"], stored["name"]) == (1, "draft", "ICU LVP cap")
    assert stored["settings"] == {
        "max_rate_ml_per_h": "99.9",
        "require_verification": True,
        "near_end_alert_min": 10,
        "kvo_rate_ml_per_h": "1",
        "set_change_interval_h": 96,
    }


def test_a_second_biomed_releases_and_the_author_is_refused_with_the_separation_of_duties_message(
    site: Site,
) -> None:
    assert site.post_draft(max_rate_ml_per_h="500").status_code == 303
    (draft,) = site.stored()
    page = f"{PAGES}/{draft['id']}"
    bea = site.browser("bea")
    refused = bea.post(f"{page}/release", data={"csrf": site.token("bea", page)})
    assert refused.status_code == 403
    message = re.search(r'id="release-refusal">([^<]*)<code>([^<]*)</code>', refused.text)
    assert message, refused.text
    assert message.group(1).strip() == (
        "the author of a configuration cannot release it; a second biomedical engineer must"
    )
    assert message.group(2) == "configuration.separation_of_duties"
    assert site.stored()[0]["status"] == "draft"
    released = site.browser("bob").post(f"{page}/release", data={"csrf": site.token("bob", page)})
    assert released.status_code == 303
    assert site.stored()[0]["status"] == "released"
    shown = site.browser("nina").get(page).text
    assert 'id="configuration-status">released<' in shown
    assert re.search(r'id="released-by">bob at ', shown)
    again = site.browser("bob").post(f"{page}/release", data={"csrf": site.token("bob", page)})
    assert again.status_code == 409
    assert re.search(r'id="release-refusal">configuration v1 is released and cannot change', again.text)
    assert "configuration.state" in again.text


def test_a_draft_outside_the_authors_facilities_is_refused_on_the_page(site: Site) -> None:
    south = site.world.facility("south")
    refused = site.browser("bea").post(
        PAGES, data={**site.draft_form(), "facility_id": str(south), "csrf": site.token("bea")}
    )
    assert refused.status_code == 403
    shown = re.search(r'id="draft-refusal">([^<]*)<code>([^<]*)</code>', refused.text)
    assert shown, refused.text
    assert shown.group(1).strip() == "you cannot author configurations in this facility"
    assert shown.group(2) == "configuration.forbidden"
    assert site.stored() == []


def test_restore_defaults_drafts_the_factory_settings_as_the_next_version(site: Site) -> None:
    site.api_released(max_rate_ml_per_h="500", require_verification=True)
    bob = site.browser("bob")
    created = bob.post(
        f"{PAGES}/restore-defaults",
        data={"facility_id": site.facility, "model": LVP, "csrf": site.token("bob")},
    )
    assert created.status_code == 303, created.text
    newest = max(site.stored(), key=lambda c: c["version"])
    assert (newest["version"], newest["name"], newest["status"]) == (2, "Factory defaults", "draft")
    assert newest["settings"]["max_rate_ml_per_h"] is None
    assert newest["settings"]["require_verification"] is False
    refused = bob.post(
        f"{PAGES}/restore-defaults",
        data={"facility_id": site.facility, "model": "lvp-9", "csrf": site.token("bob")},
    )
    assert refused.status_code == 422
    assert "model: unknown pump model 'lvp-9'" in html.unescape(refused.text)
    assert 'id="defaults-refusal"' in refused.text
    assert len(site.stored()) == 2


def test_deploy_creates_a_configuration_deployment_for_the_models_pumps(site: Site) -> None:
    released = site.api_released(max_rate_ml_per_h="500")
    page = f"{PAGES}/{released['id']}"
    bob = site.browser("bob")
    form = {"target_kind": "all", "target_value": "", "waves": "50,100", "pause_s": "0"}
    deployed = bob.post(f"{page}/deploy", data={**form, "csrf": site.token("bob", page)})
    assert deployed.status_code == 303, deployed.text
    assert deployed.headers["location"] == f"{page}#deployments"
    (made,) = site.deployments()
    assert (made["kind"], made["configuration_version"], made["waves"]) == ("configuration", 1, [50, 100])
    assert sorted(t["pump"] for t in made["targets"]) == ["LVP-1", "LVP-2"]
    assert f'data-deployment="{made["id"]}"' in bob.get(page).text


@pytest.mark.parametrize(
    ("form", "code", "message"),
    [
        ({"waves": "10,half,100"}, "deployment.waves", "waves are whole percentages separated by commas"),
        ({"waves": "50,40,100"}, "deployment.waves", "waves must increase"),
        ({"waves": "50"}, "deployment.waves", "waves are percentages in (0, 100] ending with 100"),
        (
            {"target_kind": "pump", "target_value": "SYR-1"},
            "deployment.no_pumps",
            "no pump matches the target",
        ),
        (
            {"target_kind": "care_area"},
            "deployment.target",
            "target_value is required unless the target is all",
        ),
        ({"target_kind": "ward"}, "deployment.target", "the target is one of pump, care_area, model, all"),
    ],
)
def test_a_refused_deployment_is_explained_on_the_page_and_nothing_is_deployed(
    site: Site, form: dict[str, str], code: str, message: str
) -> None:
    released = site.api_released()
    page = f"{PAGES}/{released['id']}"
    sent = {"target_kind": "all", "target_value": "", "waves": "100", "pause_s": "0", **form}
    refused = site.browser("bob").post(f"{page}/deploy", data={**sent, "csrf": site.token("bob", page)})
    assert refused.status_code in (409, 422), refused.text
    shown = re.search(r'id="deploy-refusal">([^<]*)<code>([^<]*)</code>', refused.text)
    assert shown, refused.text
    assert message in shown.group(1) and shown.group(2) == code
    assert f'value="{sent["waves"]}"' in refused.text
    assert site.deployments() == []


def test_a_draft_cannot_be_deployed_from_the_page(site: Site) -> None:
    draft = site.api_draft()
    page = f"{PAGES}/{draft['id']}"
    form = {"target_kind": "all", "waves": "100", "csrf": site.token("bob", page)}
    refused = site.browser("bob").post(f"{page}/deploy", data=form)
    assert refused.status_code == 409
    assert "only a released configuration can be deployed" in refused.text
    assert "configuration.not_released" in refused.text
    assert site.deployments() == []


def test_forms_without_a_csrf_token_are_refused(site: Site) -> None:
    draft = site.api_draft()
    bob = site.browser("bob")
    for path, form in (
        (PAGES, site.draft_form()),
        (f"{PAGES}/restore-defaults", {"facility_id": site.facility, "model": LVP}),
        (f"{PAGES}/{draft['id']}/release", {}),
    ):
        refused = bob.post(path, data=form)
        assert refused.status_code == 403, path
        assert "csrf.invalid" in refused.text
    forged = bob.post(f"{PAGES}/{draft['id']}/release", data={"csrf": "0" * 64})
    assert forged.status_code == 403 and "csrf.invalid" in forged.text
    assert [c["status"] for c in site.stored()] == ["draft"]


def test_a_configuration_named_like_a_script_is_shown_as_text(site: Site) -> None:
    draft = site.api_draft(name=SCRIPT)
    for path in (PAGES, f"{PAGES}/{draft['id']}"):
        page = site.browser("nina").get(path)
        assert page.status_code == 200
        assert SCRIPT not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_configuration_of_another_facility_is_not_found(site: Site) -> None:
    draft = site.api_draft()
    south = site.world.facility("south")
    site.world.user((Role.BIOMED, south), username="sam")
    sam = site.browser("sam")
    assert sam.get(f"{PAGES}/{draft['id']}").status_code == 404
    assert ">v1<" not in sam.get(PAGES).text
