"""axe-core in the page under test: injects the vendored copy and returns its WCAG 2.0/2.1 A and AA findings
(and axe's best-practice findings: landmarks, headings, which the gate also holds to serious/critical)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Page

AXE_JS: Final = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_VERSION: Final = "4.14.1"
WCAG_TAGS: Final = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
RUN_TAGS: Final = (*WCAG_TAGS, "best-practice")
BLOCKING_IMPACTS: Final = frozenset({"serious", "critical"})

_RUN_AXE: Final = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.flatMap((v) => v.nodes.map((n) => ({
    rule: v.id, impact: n.impact || v.impact || 'unknown', help: v.help, tags: v.tags,
    target: n.target.map(String).join(' '), summary: n.failureSummary || ''})));
}"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One element failing one axe rule on one page."""

    page: str
    rule: str
    impact: str
    target: str
    help: str
    summary: str
    wcag: bool

    @property
    def blocking(self) -> bool:
        """True when the impact is serious or critical (the WCAG 2.1 AA gate)."""
        return self.impact in BLOCKING_IMPACTS

    def line(self) -> str:
        """A one-line, readable description for a failure report."""
        detail = " ".join(self.summary.split())
        scope = "WCAG" if self.wcag else "best practice"
        return f"{self.page}: {self.rule} [{self.impact}, {scope}] at {self.target} - {self.help}. {detail}"


def run_axe(page: Page, *, label: str) -> list[Violation]:
    """Run the vendored axe-core on the page as it stands: every WCAG A/AA and best-practice violation, one
    per element."""
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: see tests/e2e/vendor/README.md")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    version = page.evaluate("() => window.axe.version")
    if version != AXE_VERSION:
        raise AssertionError(f"the page runs axe-core {version}, the vendored copy is {AXE_VERSION}")
    found: list[dict[str, Any]] = page.evaluate(_RUN_AXE, list(RUN_TAGS))
    return [
        Violation(
            page=label,
            rule=str(item["rule"]),
            impact=str(item["impact"]),
            target=str(item["target"]),
            help=str(item["help"]),
            summary=str(item["summary"]),
            wcag=any(tag in WCAG_TAGS for tag in item["tags"]),
        )
        for item in found
    ]


def summary_table(violations: list[Violation]) -> str:
    """Violations counted per page and rule, with impact and the first element, one line each."""
    counts = Counter((v.page, v.rule, v.impact) for v in violations)
    first = {(v.page, v.rule, v.impact): v for v in reversed(violations)}
    return "\n".join(
        f"{page} | {rule} | {impact} | {count} element(s) | e.g. {first[page, rule, impact].line()}"
        for (page, rule, impact), count in sorted(counts.items())
    )
