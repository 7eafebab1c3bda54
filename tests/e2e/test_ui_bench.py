"""The bench page in real headless Chromium at 1366x768: a biomed runs the twin, imports a hand-written
analyzer file, sees the start-up graph and trumpet curve as SVG, and files both; an auditor only reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e
SCREEN = {"width": 1366, "height": 768}


def analyzer_file(folder: Path, rate_ml_per_h: float, over_percent: float) -> Path:
    """A balance export written by hand: grams every 30 s for 120 min, water at 0.998 g/mL."""
    grams_per_s = 0.998 * rate_ml_per_h * (1 + over_percent / 100) / 3600
    lines = ["# bench balance, water 21 C", "time_s,mass_g"]
    lines += [f"{i * 30},{i * 30 * grams_per_s:.5f}" for i in range(241)]
    path = folder / "analyzer.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_biomed_runs_the_twin_and_imports_an_analyzer_file(
    new_page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    serial = live_server.serials[0]
    page = new_page(SCREEN)
    login(page, "bea")
    page.click("nav[aria-label=main] a[data-nav=bench]")
    expect(page.locator("h1")).to_contain_text("Bench")
    page.goto(f"/ui/pumps/{serial}")
    page.click("#bench-link")
    expect(page.locator("#no-tests")).to_be_visible()

    page.fill("#twin-form input[name=rate_ml_per_h]", "20")
    page.fill("#twin-form input[name=back_pressure_mmhg]", "100")
    page.click("button[data-action=run-twin]")
    page.wait_for_url(re.compile(r"/bench\?test=\d+$"))
    expect(page.locator("#verdict")).to_have_text(re.compile("^(pass|fail)$"))
    charts = page.locator("figure.bench-chart")
    expect(charts).to_have_count(2)
    expect(page.locator("figure[data-chart=start-up-graph] polyline.flow")).to_have_count(1)
    expect(page.locator("figure[data-chart='trumpet-curve-(second-hour)'] circle.dot")).to_have_count(10)
    expect(page.locator("#trumpet tbody tr")).to_have_count(5)
    expect(page.locator("#occlusion tbody tr")).to_have_count(2)
    shot(page, "bench-twin", full_page=False)

    page.set_input_files("#import-form input[type=file]", str(analyzer_file(tmp_path, 20, 3)))
    page.fill("#import-form input[name=rate_ml_per_h]", "20")
    page.click("button[data-action=import-file]")
    page.wait_for_url(re.compile(r"/bench\?test=\d+$"))
    expect(page.locator("#mean-error")).to_have_text("+3.00 %")
    expect(page.locator("#tests tbody tr")).to_have_count(2)
    expect(page.locator("#history figure.bench-chart")).to_have_count(1)
    shot(page, "bench-import")


def test_a_bad_file_is_refused_on_the_page_and_an_auditor_only_reads(
    new_page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    serial = live_server.serials[-1]
    page = new_page(SCREEN)
    login(page, "bea")
    page.goto(f"/ui/pumps/{serial}/bench")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,weight\n0,0\n30,0.1\n", encoding="utf-8")
    page.set_input_files("#import-form input[type=file]", str(bad))
    page.fill("#import-form input[name=rate_ml_per_h]", "5")
    page.click("button[data-action=import-file]")
    expect(page.locator("#bench-error")).to_contain_text("bench.csv_columns")
    expect(page.locator("#no-tests")).to_be_visible()
    shot(page, "bench-refused", full_page=False)
    page.click("button[data-action=run-twin]")
    page.wait_for_url(re.compile(r"/bench\?test=\d+$"))

    reader = new_page(SCREEN)
    login(reader, "audrey")
    reader.goto(f"/ui/pumps/{serial}/bench")
    expect(reader.locator("#verdict")).to_be_visible()
    expect(reader.locator("#twin-form")).to_have_count(0)
    reader.goto("/ui/bench")
    expect(reader.locator("#worst")).to_contain_text(serial)
    shot(reader, "bench-overview")
