"""Review of the real imported vendor libraries: lint findings, the v65 -> v66 diff, DERS verdicts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, VerdictLevel
from smartpump.library.diff import ChangeKind, Section, diff
from smartpump.library.lint import lint
from smartpump.library.model import DrugLibrary
from smartpump.units import AmountUnit, Concentration
from tests import vendor_libraries


@pytest.fixture(scope="module")
def v66() -> DrugLibrary:
    return vendor_libraries.alaris(66).library


@pytest.fixture(scope="module")
def v65() -> DrugLibrary:
    return vendor_libraries.alaris(65).library


def test_lint_reports_entries_without_hard_max_and_custom_concentrations_without_hard_min(
    v66: DrugLibrary,
) -> None:
    findings = lint(v66)
    rules = {f.rule for f in findings}
    assert "lint.limits.missing_hard_max" in rules
    high_alert = [f for f in findings if f.rule == "lint.high_alert.no_hard_max"]
    assert any("adenosine" in f.where for f in high_alert)
    assert "lint.custom_concentration.no_hard_min" in rules


def test_diff_v65_to_v66_touches_exactly_the_entries_that_differ(v65: DrugLibrary, v66: DrugLibrary) -> None:
    result = diff(v65, v66)
    entry_changes = [c for c in result.changes if c.section is Section.ENTRY]
    assert entry_changes
    assert all(c.section is not Section.CARE_AREA for c in result.changes)
    old = {e.id: e for e in v65.entries}
    new = {e.id: e for e in v66.entries}
    differing = {i for i in old.keys() | new.keys() if old.get(i) != new.get(i)}
    summary = result.summary()
    assert summary.entries_added + summary.entries_removed + summary.entries_changed <= len(differing)
    assert summary.entries_added >= 1
    added_drugs = {
        c.where for c in result.changes if c.section is Section.DRUG and c.kind is ChangeKind.ADDED
    }
    assert any("risankizumab" in w for w in added_drugs)


def test_ders_soft_and_hard_verdicts_on_imported_vancomycin(v66: DrugLibrary) -> None:
    entry = v66.entry("adult.int.vancomycin.mg-dosing.mg.1")
    area = v66.care_area("adult")
    concentration = Concentration(Decimal(500), AmountUnit.MG, Decimal(100))

    def verdict(dose: str, minutes: str) -> tuple[VerdictLevel, set[str]]:
        program = InfusionProgram(
            entry_id=entry.id,
            kind=ProgramKind.INTERMITTENT,
            dose=Decimal(dose),
            concentration=concentration,
            duration_min=Decimal(minutes),
            patient=PatientParameters(weight_kg=Decimal(70)),
        )
        result = check(v66, area, program)
        return result.level, {a.rule for a in result.alerts}

    assert verdict("500", "30") == (VerdictLevel.OK, set())
    assert verdict("2100", "60") == (VerdictLevel.SOFT, {"ders.dose.soft_max"})
    assert verdict("500", "20") == (VerdictLevel.HARD, {"ders.duration.hard_min"})


@pytest.fixture(scope="module")
def baxter() -> DrugLibrary:
    return vendor_libraries.baxter().library


def _high_alert_ids(library: DrugLibrary) -> set[str]:
    return {d.id for d in library.drugs if d.is_high_alert}


def test_v66_import_flags_high_alert_drugs_and_the_ismp_rule_fires(v66: DrugLibrary) -> None:
    flagged = {d.generic_name for d in v66.drugs if d.is_high_alert}
    assert {"heparin", "insulin", "potassium chloride", "norepinephrine", "fentaNYL"} <= flagged
    assert "ceFAZolin" not in flagged
    assert len(flagged) == 176
    fired = [f for f in lint(v66) if f.rule == "lint.high_alert.no_hard_max"]
    assert len(fired) == 76
    assert {f.where.removeprefix("entry:") for f in fired} <= {
        e.id for e in v66.entries if e.drug_id in _high_alert_ids(v66)
    }


def test_baxter_import_flags_high_alert_drugs_and_the_ismp_rule_fires(baxter: DrugLibrary) -> None:
    flagged = {d.generic_name for d in baxter.drugs if d.is_high_alert}
    assert {"HEPARIN SODIUM", "INSULIN REGULAR", "NORepinephrine", "POTASSIUM central"} <= flagged
    assert len(flagged) == 54
    assert len([f for f in lint(baxter) if f.rule == "lint.high_alert.no_hard_max"]) == 84


# --- lint rules, each with its fixture from the real v66 data ---------------------------------------


def test_undiluted_potassium_acetate_custom_concentration_has_no_hard_max(v66: DrugLibrary) -> None:
    entry = v66.entry("adult.int.potassium-acetate.none.meq.2")
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.limits.hard_max is None
    fired = {f.where for f in lint(v66) if f.rule == "lint.custom_concentration.no_hard_max"}
    assert f"entry:{entry.id}" in fired


def test_bivalirudin_esrd_in_mcg_where_the_other_therapies_use_mg_is_a_unit_slip(v66: DrugLibrary) -> None:
    fired = [f for f in lint(v66) if f.rule == "lint.units.magnitude"]
    assert [f.where for f in fired] == ["entry:adult.cont.bivalirudin.esrd.mcg-kg-h.1"]
    assert "mg/kg/h" in fired[0].message


def test_an_imported_iv_fluid_above_its_soft_max_alerts_once(v66: DrugLibrary) -> None:
    entry = next(e for e in v66.entries if e.id.startswith("adult.fluid.ivf-kcl.15-meq-l.ml-h."))
    program = InfusionProgram(entry_id=entry.id, kind=ProgramKind.CONTINUOUS, rate_ml_per_h=Decimal(680))
    result = check(v66, v66.care_area("adult"), program)
    assert [a.rule for a in result.alerts] == ["ders.dose.soft_max"]
