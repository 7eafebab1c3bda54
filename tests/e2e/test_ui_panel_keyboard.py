"""The front panel by keyboard alone in real headless Chromium at 1366x768: a nurse selects the care area,
programs a continuous infusion, reads the verdict and starts it with Tab, Enter, Space and the select's
type-ahead (page.keyboard only, never a click), and every control the focus reaches shows a
:focus-visible outline with at least 3:1 contrast against the background around it (WCAG 2.4.7, 1.4.11)."""

from __future__ import annotations

from typing import Any, Final

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e
LAPTOP: Final = {"width": 1366, "height": 768}
MAX_TABS: Final = 80
MIN_OUTLINE_CONTRAST: Final = 3.0

FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const parse = c => {
    const m = c.match(/[\\d.]+/g).map(Number);
    return {rgb: m.slice(0, 3), a: m.length > 3 ? m[3] : 1};
  };
  const lum = rgb => {
    const v = rgb.map(x => (x /= 255) <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  };
  let bg = [255, 255, 255];
  for (let p = el.parentElement; p; p = p.parentElement) {
    const c = parse(getComputedStyle(p).backgroundColor);
    if (c.a === 1) { bg = c.rgb; break; }
  }
  const style = getComputedStyle(el);
  const [hi, lo] = [lum(parse(style.outlineColor).rgb), lum(bg)].sort((a, b) => b - a);
  const action = el.getAttribute('data-action');
  const what = [el.tagName.toLowerCase(), el.name ? `[name=${el.name}]` : '',
    action ? `[data-action=${action}]` : '', ' ', (el.textContent || '').trim().slice(0, 30)].join('');
  return {
    what, visible: el.matches(':focus-visible'), style: style.outlineStyle,
    width: parseFloat(style.outlineWidth), contrast: (hi + 0.05) / (lo + 0.05),
  };
}"""


def _focus_ring_ok(page: Any) -> str:
    """The focused control's description, after checking it shows a focus ring a nurse can see."""
    ring = page.evaluate(FOCUS_RING)
    assert ring is not None, "the focus left every control"
    assert ring["visible"], f"{ring['what']}: not :focus-visible"
    assert ring["style"] != "none" and ring["width"] >= 2, f"{ring['what']}: no focus outline ({ring})"
    contrast = ring["contrast"]
    assert contrast >= MIN_OUTLINE_CONTRAST, f"{ring['what']}: outline contrast {contrast:.2f}:1"
    return str(ring["what"])


def _tab_to(page: Any, selector: str) -> None:
    """Press Tab until ``selector`` has the focus, checking the focus ring of every control passed."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        _focus_ring_ok(page)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} is not reached within {MAX_TABS} Tabs")


def _focused(page: Any, selector: str) -> bool:
    return bool(page.evaluate("s => document.activeElement.matches(s)", selector))


def _in_view(page: Any, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], (
        f"{selector} is below the fold at 1366x768: {box}"
    )


def test_a_nurse_programs_and_starts_a_continuous_infusion_by_keyboard(
    new_page: Any, live_server: LiveServer
) -> None:
    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto(f"/ui/panel/{live_server.serials[0]}?channel=A")
    form = page.locator("#program-form")
    expect(form).to_be_visible()
    page.keyboard.press("Tab")
    assert _focus_ring_ok(page).startswith("a Skip to the programming form")
    page.keyboard.press("Enter")
    _tab_to(page, "#program-form select[name=entry_id]")
    page.keyboard.type("norEPI")  # the select's type-ahead, as a nurse types a drug's first letters
    expect(form.locator("select[name=entry_id]")).to_have_value("ADULT_ICU.norepinephrine")
    expect(form.locator("input[name=concentration]")).to_have_value("4 mg/250 mL")
    for name, value in (("weight_kg", "80"), ("dose", "0.05"), ("vtbi_ml", "250")):
        _tab_to(page, f"#program-form input[name={name}]")
        page.keyboard.type(value)
    _tab_to(page, "#program-form button[data-action=program]")
    page.keyboard.press("Enter")
    verdict = page.locator("#verdict")
    expect(verdict.locator("h2")).to_have_text("Verdict: OK")
    expect(verdict).to_contain_text("0.05 mcg/kg/min")
    _in_view(page, "#verdict")
    # The focus waits on the verdict's Start button (the next step), with its ring shown.
    start = "#verdict button[data-action=start]"
    expect(page.locator(start)).to_be_focused()
    _focus_ring_ok(page)
    _in_view(page, start)
    shot(page, "panel-keyboard-verdict-1366x768", full_page=False)
    page.keyboard.press("Space")
    expect(page.locator("#channel-state")).to_have_text("running")
    expect(page.locator("#running")).to_contain_text("norEPINEPHrine")
    _focus_ring_ok(page)
    _tab_to(page, "#running button[data-action=stop]")
    page.keyboard.press("Enter")
    expect(page.locator("#channel-state")).to_have_text("idle")
