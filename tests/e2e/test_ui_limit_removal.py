"""The pharmacist's journey in real headless Chromium at 1366x768: an edit that empties a limit the entry
held is destructive, so the server saves it only once the pharmacist confirms (found walking the journey
on the demo: clearing a dose soft min was saved without a word)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e


def test_emptying_a_limit_is_saved_only_after_confirmation(new_page: Any, live_server: LiveServer) -> None:
    page = new_page({"width": 1366, "height": 768})
    login(page, "phil")
    page.goto("/ui/libraries")
    page.click("button[data-action=new-draft]")
    expect(page.locator("#library-status")).to_have_text("draft")
    page.click('tr[data-entry="ADULT_ICU.dopamine"] a[data-open-entry]')
    limits = page.locator('#entry-limits tr[data-param="dose"]')
    held = limits.locator('td[data-bound="soft_min"]').inner_text()
    assert held not in ("", "—")
    form = page.locator("#entry-form")
    form.locator("input[name='dose.soft_min']").fill("")
    form.locator("input[name='dose.soft_max']").fill("19")
    form.locator("button[data-action=save-entry]").click()
    problem = page.locator("#entry-problem")
    expect(problem).to_contain_text("Nothing was saved yet: this edit removes 1 limit(s)")
    expect(problem).to_contain_text(f"Dose soft min {held} mcg/kg/min")
    # nothing changed on the server: the saved limits still show the old values
    expect(limits.locator('td[data-bound="soft_min"]')).to_have_text(held)
    expect(limits.locator('td[data-bound="soft_max"]')).not_to_have_text("19")
    expect(form.locator("input[name='dose.soft_max']")).to_have_value("19")
    shot(page, "entry-confirm-limit-removal")
    form.locator("button[data-action=save-entry]").click()
    expect(page.locator("#entry-problem")).to_have_count(0)
    expect(limits.locator('td[data-bound="soft_min"]')).to_have_text("—")
    expect(limits.locator('td[data-bound="soft_max"]')).to_have_text("19")


def test_an_edit_that_removes_no_limit_needs_no_confirmation(new_page: Any, live_server: LiveServer) -> None:
    page = new_page({"width": 1366, "height": 768})
    login(page, "phil")
    page.goto("/ui/libraries")
    page.click("button[data-action=new-draft]")
    page.click('tr[data-entry="ADULT_ICU.dobutamine"] a[data-open-entry]')
    form = page.locator("#entry-form")
    form.locator("input[name='dose.soft_max']").fill("19")
    form.locator("button[data-action=save-entry]").click()
    expect(page.locator('#entry-limits tr[data-param="dose"] td[data-bound="soft_max"]')).to_have_text("19")
    expect(page.locator("#entry-problem")).to_have_count(0)
