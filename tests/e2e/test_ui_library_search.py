"""The library editor in real headless Chromium: find entries by any name (with "did you mean"), remove
one after the server's confirmation, and compare two chosen versions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e


def test_search_then_compare_two_chosen_versions(new_page: Any, live_server: LiveServer) -> None:
    page = new_page()
    login(page, "phil")
    page.goto("/ui/libraries")
    page.click("button[data-action=new-draft]")
    expect(page.locator("#library-status")).to_have_text("draft")
    draft_url = page.url
    search = page.locator("#entry-search input[name=q]")
    search.fill("NOREPI")
    page.click("button[data-action=search]")
    expect(page.locator("#search-result")).to_contain_text("3 entries")
    expect(page.locator('tr[data-entry="PEDIATRICS.norepinephrine"] td.drug')).to_have_text(
        "norEPINEPHrine HA"
    )
    page.locator("#entry-search input[name=q]").fill("norepinefrin")
    page.click("button[data-action=search]")
    expect(page.locator("#search-result")).to_contain_text("Did you mean")
    page.click("a[data-suggestion]")
    expect(page.locator('tr[data-entry="ADULT_ICU.norepinephrine"]')).to_be_visible()
    shot(page, "library-search")
    page.locator("#entry-search input[name=q]").fill("heparin")
    page.click("button[data-action=search]")
    page.click('tr[data-entry="ADULT_MEDSURG.heparin"] button[data-action=delete-entry]')
    expect(page.locator("#confirm-delete")).to_contain_text("Remove heparin (ADULT_MEDSURG.heparin)")
    page.click("button[data-action=confirm-delete]")
    expect(page.locator('tr[data-entry="ADULT_MEDSURG.heparin"]')).to_have_count(0)
    expect(page).to_have_url(re.compile(re.escape(draft_url)))
    # the version numbers depend on whether the pumps reported their factory library before the seed
    # released its own (the server never gives a released version the factory's number): read them
    released = page.locator("#compare-form select[name=against] option", has_text="(released)")
    released_label = released.inner_text()
    released_version = released_label.split(" ")[0]
    draft_version = page.locator("#library-version").inner_text()
    page.locator("#compare-form select[name=against]").select_option(label=released_label)
    page.click("#compare-form button[data-action=compare]")
    expect(page.locator("h1")).to_have_text(f"Changes from {released_version} to {draft_version}")
    expect(page.locator('#diff tr:has-text("entry:ADULT_MEDSURG.heparin") td').first).to_have_text("removed")
    page.locator("#compare-form select[name=against]").select_option(label=f"{draft_version} (draft)")
    page.locator("#compare-form select[name=new]").select_option(label=released_label)
    page.click("#compare-form button[data-action=compare]")
    expect(page.locator("h1")).to_have_text(f"Changes from {draft_version} to {released_version}")
    expect(page.locator('#diff tr:has-text("entry:ADULT_MEDSURG.heparin") td').first).to_have_text("added")
    shot(page, "library-compare")
