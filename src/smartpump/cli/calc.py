"""`smartpump calc` (dose <-> rate) and `smartpump check` (a program against a library, optionally on a
pump model whose resolutions and device limits then count, as on the pump)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.table import Table

from smartpump.cli.output import console, emit_json, fail
from smartpump.ders.check import check as ders_check
from smartpump.ders.program import (
    InfusionProgram,
    PatientParameters,
    PCAProgram,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.ders.select import find_entry
from smartpump.errors import LibraryFormatError, LookupFailedError, SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry, Route
from smartpump.library.search import search
from smartpump.pump.capabilities import PumpModel, capabilities
from smartpump.pump.programming import check_on_model, model_device_limits
from smartpump.units import (
    Concentration,
    DoseUnit,
    bsa_mosteller_m2,
    dose_to_rate_ml_per_h,
    format_decimal,
    parse_duration_min,
    parse_height_cm,
    parse_weight_kg,
    rate_to_dose,
    round_half_up,
    to_decimal,
)

DEFAULT_DOSE_RESOLUTION = Decimal("0.01")
BSA_DISPLAY_RESOLUTION = Decimal("0.01")

DoseOpt = Annotated[str | None, typer.Option("--dose", help="Dose in --dose-unit.")]
RateOpt = Annotated[str | None, typer.Option("--rate-ml-per-h", help="Flow rate (mL/h) instead of a dose.")]
UnitOpt = Annotated[str, typer.Option("--dose-unit", help="Dosing unit, e.g. mcg/kg/min, units/h, mL/h.")]
WeightOpt = Annotated[str | None, typer.Option("--weight", help="Patient weight: 70kg, 154lb, 3500g.")]
HeightOpt = Annotated[str | None, typer.Option("--height", help="Patient height: 170cm, 1.7m, 67in.")]
ConcOpt = Annotated[str | None, typer.Option("--concentration", help='e.g. "400 mg/250 mL" or "1.6 mg/mL".')]
DurationOpt = Annotated[str | None, typer.Option("--duration", help="Duration: 30min, 46h, 2day.")]
ResolutionOpt = Annotated[
    str, typer.Option("--resolution", help="Pump rate resolution in mL/h (rounding is half-up).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]
CheckResolutionOpt = Annotated[
    str | None,
    typer.Option(
        "--resolution",
        "--rate-resolution",
        help="Pump rate resolution in mL/h (rounding is half-up); default: the model's, else 0.1.",
    ),
]
VtbiResolutionOpt = Annotated[
    str | None,
    typer.Option(
        "--vtbi-resolution",
        help="Pump VTBI resolution in mL for a volume that holds a dose; default: the model's, else 0.1.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Pump model whose rate range, VTBI maximum and resolutions hold as hard device limits: "
        "lvp, syringe or pca (default: none, the library's limits only).",
    ),
]
MODELS = {"lvp": PumpModel.LVP, "syringe": PumpModel.SYRINGE, "pca": PumpModel.PCA}

_CANDIDATES_SHOWN: Final = 20


def register(app: typer.Typer) -> None:
    """Attach `calc` and `check` to the main app."""
    app.command("calc")(calc)
    app.command("check")(check)


def calc(
    dose_unit: UnitOpt,
    dose: DoseOpt = None,
    rate_ml_per_h: RateOpt = None,
    weight: WeightOpt = None,
    height: HeightOpt = None,
    concentration: ConcOpt = None,
    duration: DurationOpt = None,
    resolution: ResolutionOpt = "0.1",
    dose_resolution: Annotated[
        str, typer.Option("--dose-resolution", help="Display resolution of a computed dose.")
    ] = str(DEFAULT_DOSE_RESOLUTION),
    as_json: JsonOpt = False,
) -> None:
    """Convert a dose to a flow rate (mL/h) or a rate to the dose it delivers, exactly."""
    try:
        if (dose is None) == (rate_ml_per_h is None):
            fail("give exactly one of --dose and --rate-ml-per-h", code="cli.dose_or_rate")
        unit = DoseUnit.parse(dose_unit)
        weight_kg = parse_weight_kg(weight) if weight is not None else None
        height_cm = parse_height_cm(height) if height is not None else None
        conc = Concentration.parse(concentration) if concentration is not None else None
        duration_min = parse_duration_min(duration) if duration is not None else None
        step = to_decimal(resolution, what="resolution")
        bsa_exact = bsa_mosteller_m2(weight_kg, height_cm) if weight_kg and height_cm else None
        result: dict[str, Any] = {"dose_unit": str(unit), "rounding": "half-up"}
        if dose is not None:
            dose_value = to_decimal(dose, what="dose")
            exact = dose_to_rate_ml_per_h(
                dose_value, unit, conc, weight_kg=weight_kg, bsa_m2=bsa_exact, duration_min=duration_min
            )
            result |= {
                "dose": dose_value,
                "rate_ml_per_h": round_half_up(exact, step),
                "rate_ml_per_h_exact": exact,
            }
        else:
            rate = to_decimal(rate_ml_per_h or "", what="rate")
            exact = rate_to_dose(
                rate, unit, conc, weight_kg=weight_kg, bsa_m2=bsa_exact, duration_min=duration_min
            )
            result |= {
                "rate_ml_per_h": rate,
                "dose": round_half_up(exact, to_decimal(dose_resolution, what="dose resolution")),
                "dose_exact": exact,
            }
        result["resolution_ml_per_h"] = step
        if conc is not None:
            result["concentration_per_ml"] = conc.per_ml
            result["concentration_unit"] = f"{conc.unit}/mL"
        if weight_kg is not None:
            result["weight_kg"] = weight_kg
        if bsa_exact is not None:
            result["bsa_m2"] = round_half_up(bsa_exact, BSA_DISPLAY_RESOLUTION)
            result["bsa_m2_exact"] = bsa_exact
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    if as_json:
        emit_json(result)
        return
    table = Table(show_header=False, box=None)
    for key, value in result.items():
        table.add_row(key, format_decimal(value) if isinstance(value, Decimal) else str(value))
    console.print(table)


def check(
    library: Annotated[Path, typer.Option("--library", help="Drug library JSON file.", exists=False)],
    care_area: Annotated[str, typer.Option("--care-area", help="Care area id or name.")],
    drug: Annotated[str, typer.Option("--drug", help="Drug name (generic, Tall Man or alias).")],
    dose_unit: Annotated[str | None, typer.Option("--dose-unit", help="Unit of --dose.")] = None,
    dose: DoseOpt = None,
    rate_ml_per_h: RateOpt = None,
    therapy: Annotated[str | None, typer.Option("--therapy", help="Therapy / clinical use label.")] = None,
    concentration: ConcOpt = None,
    weight: WeightOpt = None,
    height: HeightOpt = None,
    duration: DurationOpt = None,
    vtbi_ml: Annotated[str | None, typer.Option("--vtbi-ml", help="Volume to be infused (mL).")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="continuous|intermittent|bolus|loading|pca (from the entry).")
    ] = None,
    lockout_min: Annotated[str | None, typer.Option("--lockout-min", help="PCA lockout (min).")] = None,
    route: Annotated[str, typer.Option("--route", help="Route of administration.")] = Route.IV.value,
    resolution: CheckResolutionOpt = None,
    vtbi_resolution: VtbiResolutionOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a dose against a drug library (and a pump model's limits); exit 0 whatever the verdict,
    2 if the request is invalid. Prints the dose the pump delivers at the rate (or in the volume) it
    runs, the dose as programmed, and the deliverable alternatives when rounding crosses a limit."""
    try:
        lib = json_format.read(library)
        area = lib.care_area(care_area)
        unit = DoseUnit.parse(dose_unit) if dose_unit is not None else None
        conc = Concentration.parse(concentration) if concentration is not None else None
        entry = find_entry(lib, area.id, drug, therapy=therapy, concentration=conc, dose_unit=unit)
        program_kind = ProgramKind(kind) if kind is not None else _kind_of(entry)
        dose_value = to_decimal(dose, what="dose") if dose is not None else None
        pca = None
        if program_kind is ProgramKind.PCA:
            pca = _pca_program(entry, dose_value, lockout_min)
        program = InfusionProgram(
            entry_id=entry.id,
            kind=program_kind,
            route=Route(route),
            dose=dose_value,
            dose_unit=unit,
            rate_ml_per_h=to_decimal(rate_ml_per_h, what="rate") if rate_ml_per_h is not None else None,
            concentration=conc,
            patient=PatientParameters(
                weight_kg=parse_weight_kg(weight) if weight is not None else None,
                height_cm=parse_height_cm(height) if height is not None else None,
            ),
            vtbi_ml=to_decimal(vtbi_ml, what="VTBI") if vtbi_ml is not None else None,
            duration_min=parse_duration_min(duration) if duration is not None else None,
            pca=pca,
        )
        program, verdict = _checked(lib, area, program, model, resolution, vtbi_resolution)
    except LookupFailedError as error:
        hint = did_you_mean(lib, care_area, drug) if error.code == "library.no_entry" else ()
        _fail_with_candidates(error, as_json, hint)
    except LibraryFormatError as error:
        fail(f"{error.message} ({len(error.problems)} problems)", code=error.code)
    except SmartpumpError as error:
        if as_json:
            emit_json({"error": error.code, "message": error.message})
        fail(error.message, code=error.code)
    except ValueError as error:
        fail(str(error), code="cli.invalid_value")
    _print_verdict(verdict, program, entry, model, as_json)


def _checked(
    library: DrugLibrary,
    area: CareArea,
    program: InfusionProgram,
    model: str | None,
    resolution: str | None,
    vtbi_resolution: str | None,
) -> tuple[InfusionProgram, Verdict]:
    """The verdict as the pump would give it: on a model, at its resolutions (unless given) and with its
    device limits as hard alerts; without one, at the given (else 0.1) resolutions, library limits only."""
    if resolution is not None:
        program = replace(program, rate_resolution_ml_per_h=to_decimal(resolution, what="resolution"))
    if vtbi_resolution is not None:
        program = replace(program, vtbi_resolution_ml=to_decimal(vtbi_resolution, what="VTBI resolution"))
    if model is None:
        return program, ders_check(library, area, program)
    if model not in MODELS:
        fail(f"--model must be one of {', '.join(MODELS)}, got {model!r}", code="cli.model")
    caps = capabilities(MODELS[model])
    entry = library.entry(program.entry_id) if program.entry_id is not None else None
    if entry is not None and entry.devices and caps.device_type not in entry.devices:
        fail(f"entry {entry.id} is not for a {caps.device_type} pump", code="pump.device_not_allowed")
    device = model_device_limits(caps)
    if resolution is None and vtbi_resolution is None:
        return check_on_model(library, area, program, caps, device)
    if resolution is None:
        program = replace(program, rate_resolution_ml_per_h=caps.finest_resolution_ml_per_h)
    if vtbi_resolution is None:
        program = replace(program, vtbi_resolution_ml=caps.vtbi_resolution_ml)
    return program, ders_check(library, area, program, device)


def _kind_of(entry: Entry) -> ProgramKind:
    return {
        DeliveryMode.INTERMITTENT: ProgramKind.INTERMITTENT,
        DeliveryMode.PCA: ProgramKind.PCA,
    }.get(entry.mode, ProgramKind.CONTINUOUS)


def _pca_program(entry: Entry, demand: Decimal | None, lockout: str | None) -> PCAProgram:
    if demand is None:
        fail("a PCA check needs --dose (the demand dose)", code="program.dose_required")
    default_lockout = entry.pca.lockout_min.default if entry.pca is not None else None
    lockout_value = to_decimal(lockout, what="lockout") if lockout is not None else default_lockout
    if lockout_value is None:
        fail("a PCA check needs --lockout-min", code="program.lockout_required")
    return PCAProgram(demand_dose=demand, lockout_min=lockout_value)


def did_you_mean(library: DrugLibrary, care_area: str, drug: str) -> tuple[str, ...]:
    """Drugs of the care area the user may have meant by ``drug``: those answering to it as part of a
    name, alias or brand (``norepi``, ``levophed``), else the closest names."""
    area_id = library.care_area(care_area).id
    in_area = {library.drug(e.drug_id).shown_name for e in library.entries_in(area_id)}
    found = search(library, drug, high_alert_table())
    named = [m.drug.shown_name for m in found.matches if m.entry.care_area_id == area_id]
    return tuple(dict.fromkeys(named or [n for n in found.did_you_mean if n in in_area]))


def _fail_with_candidates(error: LookupFailedError, as_json: bool, hint: tuple[str, ...] = ()) -> NoReturn:
    if as_json:
        emit_json(
            {
                "error": error.code,
                "message": error.message,
                "candidates": list(error.candidates),
                "did_you_mean": list(hint),
            }
        )
    if hint:
        fail(f"{error.message}; did you mean {' or '.join(hint)}?", code=error.code)
    if error.candidates:
        shown = error.candidates[:_CANDIDATES_SHOWN]
        more = len(error.candidates) - len(shown)
        listing = "; ".join(shown) + (f"; ... and {more} more" if more else "")
        fail(f"{error.message}. Candidates: {listing}", code=error.code)
    fail(error.message, code=error.code)


_STYLE = {VerdictLevel.OK: "bold green", VerdictLevel.SOFT: "bold yellow", VerdictLevel.HARD: "bold red"}


def _print_verdict(
    verdict: Verdict, program: InfusionProgram, entry: Entry, model: str | None, as_json: bool
) -> None:
    if as_json:
        emit_json(
            {
                "verdict": verdict.level,
                "rate_ml_per_h": verdict.rate_ml_per_h,
                "rate_ml_per_h_exact": verdict.rate_ml_per_h_exact,
                "dose": verdict.dose,
                "dose_programmed": verdict.dose_programmed,
                "dose_unit": verdict.dose_unit,
                "vtbi_ml": verdict.vtbi_ml,
                "entry_id": verdict.entry_id,
                "care_area_id": verdict.care_area_id,
                "bsa_m2": verdict.bsa_m2,
                "is_unprotected": verdict.is_unprotected,
                "model": MODELS[model].value if model is not None else None,
                "rate_resolution_ml_per_h": program.rate_resolution_ml_per_h,
                "vtbi_resolution_ml": program.vtbi_resolution_ml,
                "alerts": [
                    {
                        "rule": a.rule,
                        "parameter": a.parameter,
                        "limit_kind": a.limit_kind,
                        "limit": a.limit,
                        "value": a.value,
                        "unit": a.unit,
                        "factor": a.factor,
                        "level": a.level,
                    }
                    for a in verdict.alerts
                ],
                "deliverable": [
                    {"rate_ml_per_h": d.rate_ml_per_h, "vtbi_ml": d.vtbi_ml, "dose": d.dose}
                    for d in verdict.deliverable
                ],
            }
        )
        return
    on = f" on {MODELS[model].value}" if model is not None else ""
    console.print(f"[{_STYLE[verdict.level]}]{verdict.level.value.upper()}[/] {entry.id}{on}")
    volume = f"; VTBI {format_decimal(verdict.vtbi_ml)} mL" if verdict.vtbi_ml is not None else ""
    console.print(
        f"rate {format_decimal(verdict.rate_ml_per_h)} mL/h "
        f"(exact {format_decimal(verdict.rate_ml_per_h_exact)}, resolution "
        f"{format_decimal(program.rate_resolution_ml_per_h)}){volume}"
    )
    if verdict.dose is not None:
        programmed = (
            f" (programmed {_shown(verdict.dose_programmed)} {verdict.dose_unit})"
            if verdict.dose_programmed is not None
            else ""
        )
        console.print(f"dose delivered {_shown(verdict.dose)} {verdict.dose_unit}{programmed}")
    else:
        console.print(f"dose - {verdict.dose_unit}")
    if verdict.is_unprotected:
        console.print("[yellow]this entry has no dose or rate limits (unprotected)[/]")
    if verdict.alerts:
        table = Table("rule", "limit", "value", "beyond")
        for alert in verdict.alerts:
            factor = f"{_shown(alert.factor)}x" if alert.factor else "-"
            table.add_row(
                alert.rule,
                f"{format_decimal(alert.limit)} {alert.unit}",
                f"{_shown(alert.value)} {alert.unit}",
                factor,
            )
        console.print(table)
    for option in verdict.deliverable:
        volume = f"{format_decimal(option.vtbi_ml)} mL at " if option.vtbi_ml is not None else ""
        console.print(
            f"deliverable: {volume}{format_decimal(option.rate_ml_per_h)} mL/h = "
            f"{_shown(option.dose)} {verdict.dose_unit}"
        )


def _shown(value: Decimal | None) -> str:
    """A computed dose for people: 6 significant digits (exact values in --json)."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    digits = Decimal(1).scaleb(value.adjusted() - 5)
    return format_decimal(round_half_up(value, digits))
