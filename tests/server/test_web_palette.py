"""The UI palette (CSS variables at the top of app.css) meets WCAG 2.1 AA contrast for every pairing it is
used in: 4.5:1 for text (1.4.3), 3:1 for control and state borders (1.4.11)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

import smartpump.server.web as web

CSS: Final = Path(web.__file__).resolve().parent / "static" / "app.css"
TEXT: Final = 4.5
NON_TEXT: Final = 3.0
PAIRS: Final = (
    ("--ink", "--bg", TEXT, "body text on the page"),
    ("--ink", "--card", TEXT, "body text on a card"),
    ("--muted", "--bg", TEXT, "labels and footers on the page"),
    ("--muted", "--card", TEXT, "labels and table headers on a card"),
    ("--accent", "--card", TEXT, "links"),
    ("--high", "--card", TEXT, "errors and high-priority text"),
    ("--high", "--bg", TEXT, "errors on the page"),
    ("--ok", "--card", TEXT, "running and success text"),
    ("--ok", "--bg", TEXT, "success text on the page"),
    ("--ok-text", "--card", TEXT, "pass badges"),
    ("--warn", "--card", TEXT, "amber caution text"),
    ("--warn", "--bg", TEXT, "amber caution text on the page"),
    ("--warn-text", "--card", TEXT, "soft-alert text"),
    ("#ffffff", "--high", TEXT, "white text on a high-priority (red) alarm"),
    ("#000000", "--medium", TEXT, "black text on a medium-priority (yellow) alarm"),
    ("#000000", "--low", TEXT, "black text on a low-priority (cyan) alarm"),
    ("#ffffff", "--accent", TEXT, "primary buttons and the active tab"),
    ("--control", "--card", NON_TEXT, "input, select and button borders"),
    ("--control", "--bg", NON_TEXT, "control borders on the page"),
    ("--offline", "--card", NON_TEXT, "an offline pump's border"),
    ("--high", "--card", NON_TEXT, "an alarming pump's border"),
    ("--ok", "--card", NON_TEXT, "a running pump's border"),
    ("--focus", "--card", NON_TEXT, "the keyboard focus outline on a card"),
    ("--focus", "--bg", NON_TEXT, "the keyboard focus outline on the page"),
    ("--focus", "#fdecea", NON_TEXT, "the keyboard focus outline on a hard verdict"),
    ("--focus", "#fff8e6", NON_TEXT, "the keyboard focus outline on a soft verdict"),
    ("--focus-on-dark", "#0f1c27", NON_TEXT, "the keyboard focus outline on the panel's dark screen"),
    ("#ffffff", "#12324f", NON_TEXT, "the keyboard focus outline on the navigation bar"),
)
HEX: Final = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of a #rgb or #rrggbb colour."""
    match = HEX.fullmatch(colour.strip())
    if match is None:
        raise ValueError(f"not a hex colour: {colour!r}")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(2 * d for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1 contrast ratio of two colours (1 to 21, order-free)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def palette() -> dict[str, str]:
    """The custom properties declared in app.css's :root block."""
    root = re.search(r":root\s*\{([^}]*)\}", CSS.read_text(encoding="utf-8"))
    if root is None:
        raise AssertionError(f"{CSS} declares no :root palette")
    return dict(re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", root.group(1)))


def resolve(name: str, colours: dict[str, str]) -> str:
    """A palette variable's colour, or the literal colour itself."""
    if not name.startswith("--"):
        return name
    if name not in colours:
        raise KeyError(f"app.css declares no {name}")
    return colours[name].strip()


@pytest.mark.parametrize(("foreground", "background", "minimum", "use"), PAIRS, ids=[p[3] for p in PAIRS])
def test_palette_pairs_meet_wcag_aa(foreground: str, background: str, minimum: float, use: str) -> None:
    colours = palette()
    ratio = contrast_ratio(resolve(foreground, colours), resolve(background, colours))
    assert ratio >= minimum, f"{use}: {foreground} on {background} is {ratio:.2f}:1, needs {minimum}:1"


def test_contrast_ratio_matches_the_wcag_reference_points() -> None:
    assert contrast_ratio("#000", "#fff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#b26a00", "#ffffff") < TEXT


@pytest.mark.parametrize("colour", ["red", "#12345", "#gggggg", "", "rgb(0,0,0)"])
def test_a_colour_that_is_not_hex_is_refused(colour: str) -> None:
    with pytest.raises(ValueError, match="not a hex colour"):
        relative_luminance(colour)


def test_an_undeclared_variable_is_named() -> None:
    with pytest.raises(KeyError, match=r"app\.css declares no --nope"):
        resolve("--nope", palette())
