"""Pump configurations in real headless Chromium: a biomed opens Configurations from the navigation, meets
the server's refusal next to the rate cap, corrects it, and finds the draft listed."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e


def test_biomed_drafts_a_configuration_with_a_rate_cap(new_page: Any, live_server: LiveServer) -> None:
    page = new_page()
    login(page, "bea")
    page.click("nav[aria-label=main] a[data-nav=configurations]")
    expect(page.locator("main h1")).to_have_text("Pump configurations")
    form = page.locator("#draft-form")
    form.locator("select[name=model]").select_option("lvp-4")
    form.locator("input[name=name]").fill("ICU LVP cap")
    form.locator("input[name=max_rate_ml_per_h]").fill("1000")
    form.locator("button[data-action=new-configuration]").click()
    expect(page.locator('[data-error-field="max_rate_ml_per_h"]')).to_have_text(
        "1000 mL/h is above the lvp-4 maximum of 999 mL/h"
    )
    expect(page.locator("#draft-form input[name=max_rate_ml_per_h]")).to_have_value("1000")
    shot(page, "configuration-draft-refused")
    page.locator("#draft-form input[name=max_rate_ml_per_h]").fill("500")
    page.locator("#draft-form button[data-action=new-configuration]").click()
    expect(page.locator("#configuration-status")).to_have_text("draft")
    expect(page.locator('#settings tr[data-setting="max_rate_ml_per_h"] td[data-value]')).to_have_text("500")
    expect(page.locator('#settings tr[data-setting="max_rate_ml_per_h"] td[data-factory]')).to_have_text(
        "none"
    )
    shot(page, "configuration-draft")
    page.click("nav[aria-label=main] a[data-nav=configurations]")
    listed = page.locator("table.versions tr[data-configuration]", has_text="ICU LVP cap")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("v1")
    expect(listed).to_contain_text("draft")
    expect(listed).to_contain_text("bea")
    expect(page.locator("#currency")).to_contain_text("lvp-4")
    shot(page, "configurations")
