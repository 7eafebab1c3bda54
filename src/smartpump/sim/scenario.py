"""Timed pump scenarios: a YAML script of bedside actions and faults played on a simulated pump.

A scenario names a model, a care area and a list of steps (``advance``, ``program``, ``override``,
``confirm``, ``start``, ``occlude``, ``pca_demand``, ``patient`` (the patient's weight, height and
BSA on the pump)...); a step may expect an error code (and a ``program``, ``bolus`` or ``secondary``
step a verdict), and the scenario may expect event counts. The result is the pump's
event log plus every failed expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from smartpump.clock import ManualClock
from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind, Verdict
from smartpump.errors import SmartpumpError
from smartpump.library.model import DrugLibrary, Route
from smartpump.pump.delivery import Step
from smartpump.pump.device import Pump
from smartpump.pump.events import PumpEvent
from smartpump.units import Concentration


class ScenarioError(SmartpumpError, ValueError):
    """A scenario file that cannot be read or played as written."""

    code = "scenario.invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A parsed scenario: name, model, care area, steps and expected event counts."""

    name: str
    model: str
    care_area: str
    steps: tuple[Mapping[str, Any], ...]
    expect_events: Mapping[str, int] = field(default_factory=dict)
    patient_id: str | None = None
    library: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioResult:
    """The event log of the run and the expectations that failed (empty when it passed)."""

    name: str
    events: tuple[PumpEvent, ...]
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


def load_scenario(path: Path) -> Scenario:
    """Read a scenario YAML file; raises ScenarioError naming what is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: cannot read scenario: {error}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with name, model, care_area and steps")
    missing = [k for k in ("name", "model", "care_area", "steps") if k not in raw]
    if missing:
        raise ScenarioError(f"{path}: missing {', '.join(missing)}")
    steps = raw["steps"]
    if not isinstance(steps, list) or not all(isinstance(s, dict) and "action" in s for s in steps):
        raise ScenarioError(f"{path}: steps must be a list of mappings, each with an 'action'")
    expect = raw.get("expect_events") or {}
    if not isinstance(expect, dict):
        raise ScenarioError(f"{path}: expect_events must map event types to counts")
    return Scenario(
        name=str(raw["name"]),
        model=str(raw["model"]),
        care_area=str(raw["care_area"]),
        steps=tuple(steps),
        expect_events={str(k): int(v) for k, v in expect.items()},
        patient_id=raw.get("patient_id"),
        library=raw.get("library"),
    )


def _dec(step: Mapping[str, Any], key: str) -> Decimal | None:
    value = step.get(key)
    return None if value is None else Decimal(str(value))


def _program(step: Mapping[str, Any]) -> InfusionProgram:
    kind = ProgramKind(step.get("kind", "basic" if step.get("entry") is None else "continuous"))
    pca = None
    if kind is ProgramKind.PCA:
        pca = PCAProgram(
            demand_dose=Decimal(str(step["demand_dose"])),
            lockout_min=Decimal(str(step["lockout_min"])),
            basal=_dec(step, "basal"),
            loading_dose=_dec(step, "loading_dose"),
            max_dose=_dec(step, "max_dose"),
            max_dose_window_h=step.get("max_dose_window_h"),
        )
    concentration = step.get("concentration")
    return InfusionProgram(
        entry_id=step.get("entry"),
        kind=kind,
        route=Route(step.get("route", "IV")),
        dose=_dec(step, "dose"),
        rate_ml_per_h=_dec(step, "rate_ml_per_h"),
        concentration=None if concentration is None else Concentration.parse(str(concentration)),
        patient=PatientParameters(weight_kg=_dec(step, "weight_kg"), height_cm=_dec(step, "height_cm")),
        vtbi_ml=_dec(step, "vtbi_ml"),
        duration_min=_dec(step, "duration_min"),
        pca=pca,
    )


def _steps(step: Mapping[str, Any]) -> tuple[Step, ...]:
    return tuple(
        Step(rate_ml_per_h=Decimal(str(s["rate_ml_per_h"])), volume_ml=Decimal(str(s["volume_ml"])))
        for s in step.get("steps", ())
    )


def _actions(pump: Pump, clock: ManualClock) -> dict[str, Callable[[Mapping[str, Any]], object]]:
    def advance(s: Mapping[str, Any]) -> None:
        clock.advance(float(Decimal(str(s["seconds"]))))
        pump.sync()

    return {
        "advance": advance,
        "program": lambda s: pump.program(s.get("channel", "A"), _program(s), steps=_steps(s)),
        "reprogram": lambda s: pump.reprogram(s.get("channel", "A"), _program(s), steps=_steps(s)),
        "override": lambda s: pump.override(s.get("channel", "A"), s.get("reason", "other")),
        "cancel": lambda s: pump.cancel(s.get("channel", "A")),
        "confirm": lambda s: pump.confirm(s.get("channel", "A")),
        "start": lambda s: pump.start(s.get("channel", "A"), delay_s=_dec(s, "delay_s")),
        "pause": lambda s: pump.pause(s.get("channel", "A")),
        "resume": lambda s: pump.resume(s.get("channel", "A")),
        "stop": lambda s: pump.stop(s.get("channel", "A")),
        "bolus": lambda s: pump.bolus(s.get("channel", "A"), _program(s), override=s.get("override")),
        "secondary": lambda s: pump.secondary(
            s.get("channel", "A"), _program(s), override=s.get("override"), callback=bool(s.get("callback"))
        ),
        "patient": lambda s: pump.set_patient_parameters(
            _dec(s, "weight_kg"), _dec(s, "height_cm"), _dec(s, "bsa_m2"), override=s.get("override")
        ),
        "occlude": lambda s: pump.occlude_downstream(s.get("channel", "A")),
        "release_occlusion": lambda s: pump.release_downstream(s.get("channel", "A")),
        "occlude_upstream": lambda s: pump.occlude_upstream(s.get("channel", "A")),
        "open_door": lambda s: pump.open_door(s.get("channel", "A")),
        "close_door": lambda s: pump.close_door(s.get("channel", "A")),
        "air": lambda s: pump.air_bubble(s.get("channel", "A"), Decimal(str(s["ul"]))),
        "pca_demand": lambda s: pump.pca_demand(s.get("channel", "A")),
        "vitals": lambda s: pump.record_vitals(spo2_percent=_dec(s, "spo2"), etco2_mmhg=_dec(s, "etco2")),
        "ac_power": lambda s: pump.ac_power(bool(s["connected"])),
        "silence": lambda s: pump.silence(),
        "clear_alarm": lambda s: pump.clear_alarm(str(s["alarm"]), s.get("channel")),
        "fault": lambda s: pump.fault(str(s.get("test", "self_test"))),
    }


def run_scenario(scenario: Scenario, library: DrugLibrary) -> ScenarioResult:
    """Play a scenario on a fresh simulated pump in virtual time and check its expectations."""
    clock = ManualClock()
    pump = Pump("sim-pump", scenario.model, clock, library=library)
    pump.select_care_area(scenario.care_area)
    if scenario.patient_id:
        pump.set_patient(scenario.patient_id)
    actions = _actions(pump, clock)
    failures: list[str] = []
    for index, step in enumerate(scenario.steps, start=1):
        action = actions.get(str(step["action"]))
        if action is None:
            raise ScenarioError(
                f"step {index}: unknown action {step['action']!r} (known: {', '.join(actions)})"
            )
        expected_error = step.get("expect_error")
        expected_verdict = step.get("expect_verdict")
        try:
            outcome = action(step)
            if expected_verdict is not None:
                level = outcome.level.value if isinstance(outcome, Verdict) else None
                if level != expected_verdict:
                    failures.append(
                        f"step {index} ({step['action']}): expected verdict {expected_verdict}, got {level}"
                    )
        except SmartpumpError as error:
            if expected_error != error.code:
                failures.append(
                    f"step {index} ({step['action']}): unexpected error [{error.code}] {error.message}"
                )
            continue
        except (KeyError, ValueError) as error:
            raise ScenarioError(f"step {index} ({step['action']}): bad step: {error}") from None
        if expected_error is not None:
            failures.append(f"step {index} ({step['action']}): expected error {expected_error}, none raised")
    counts: dict[str, int] = {}
    for event in pump.events:
        counts[event.type.value] = counts.get(event.type.value, 0) + 1
    for type_, count in scenario.expect_events.items():
        if counts.get(type_, 0) != count:
            failures.append(f"expected {count} x {type_}, got {counts.get(type_, 0)}")
    return ScenarioResult(name=scenario.name, events=tuple(pump.events), failures=tuple(failures))
