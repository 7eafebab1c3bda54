"""`smartpump bench`: the IEC 60601-2-24 accuracy test on a simulated pump or an analyzer file, its report.

``run`` tests a model's twin (any set, head height, back-pressure, seed) with the occlusion pair;
``doses`` measures each dose of an intermittent/bolus delivery on the twin;
``import`` analyses a flow-analyzer or balance export (and may file it on a server); ``report`` turns a
saved result into a summary and a standalone HTML page with the start-up graph and trumpet curve.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote

import typer
from jinja2 import Environment, PackageLoader
from rich.table import Table

from smartpump.analytics.analyzer_csv import read_analyzer_csv, write_analyzer_csv
from smartpump.analytics.flow_accuracy import FlowRecord, analyse, dose_accuracy
from smartpump.cli.output import console, emit_json, fail
from smartpump.errors import SmartpumpError
from smartpump.sim.flow_models import flow_model
from smartpump.sim.flow_physics import BenchConditions, balance_record, dose_record, occlusion_suite

bench_app = typer.Typer(help="Flow-accuracy bench: IEC 60601-2-24 start-up graph and trumpet curve.")
TOKEN_ENV: Final = "SMARTPUMP_TOKEN"
HTTP_TIMEOUT_S: Final = 60.0
ModelOpt = Annotated[str, typer.Option("--model", help="pump model (lvp-4, syringe-1, pca-1, ambulatory-1)")]
RateOpt = Annotated[float, typer.Option("--rate", help="set rate, mL/h")]
SetOpt = Annotated[
    str | None, typer.Option("--set", help="administration set or syringe (default: the model's first)")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="save the result (JSON) for `bench report`")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def register(app: typer.Typer) -> None:
    """Attach the `bench` group to the main app."""
    app.add_typer(bench_app, name="bench")


def _show(result: dict[str, Any]) -> None:
    report = result["report"]
    verdict = "PASS" if all(f["verdict"] == "pass" for f in result["findings"]) else "FAIL"
    console.print(
        f"{result['source']} {result['model']} {result['set_name']} at {report['rate_ml_per_h']:g} mL/h: "
        f"A {report['mean_error_percent']:+.2f} % against ±{report['tolerance_percent']:g} % -> {verdict}",
        markup=False,
        highlight=False,
    )
    table = Table("window (min)", "Ep(max) %", "Ep(min) %", "positions")
    for p in report["trumpet"]:
        table.add_row(
            f"{p['window_min']:g}",
            f"{p['ep_max_percent']:+.2f}",
            f"{p['ep_min_percent']:+.2f}",
            str(p["positions"]),
        )
    console.print(table)
    for o in result["occlusion"]:
        console.print(
            f"occlusion at {o['rate_ml_per_h']:g} mL/h: alarm after {o['alarm_time_s'] / 60:.1f} min "
            f"(declared {o['declared_time_s'] / 60:.1f}, limit {o['limit_s'] / 60:.1f}); "
            f"bolus {o['bolus_ml']:.3f} mL",
            markup=False,
            highlight=False,
        )


def _finish(result: dict[str, Any], out: Path | None, as_json: bool) -> None:
    if out is not None:
        out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if as_json:
        emit_json(result)
    else:
        _show(result)
    if any(f["verdict"] == "fail" for f in result["findings"]):
        raise typer.Exit(1)


def _occlusion_findings(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    findings = []
    for o in results:
        findings.append(
            {
                "rule": "bench.occlusion_time",
                "limit": o["limit_s"],
                "value": o["alarm_time_s"],
                "verdict": "pass" if o["alarm_time_s"] <= o["limit_s"] else "fail",
            }
        )
        findings.append(
            {
                "rule": "bench.occlusion_bolus",
                "limit": o["bolus_limit_ml"],
                "value": o["bolus_ml"],
                "verdict": "pass" if o["bolus_ml"] <= o["bolus_limit_ml"] else "fail",
            }
        )
    return findings


@bench_app.command("run")
def run_command(
    model: ModelOpt,
    rate: RateOpt,
    set_name: SetOpt = None,
    head_height_cm: Annotated[float, typer.Option(help="container above the pump's reference, cm")] = 0.0,
    back_pressure_mmhg: Annotated[float, typer.Option(help="downstream pressure, mmHg")] = 0.0,
    seed: Annotated[int, typer.Option(help="noise seed (same seed, same record)")] = 1,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="write the balance record (time_s,mass_g)")
    ] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the 120-min test and the occlusion pair on a simulated pump (exit 1 when it fails)."""
    conditions = BenchConditions(
        head_height_cm=head_height_cm, back_pressure_mmhg=back_pressure_mmhg, seed=seed
    )
    try:
        row = flow_model(model)
        run = balance_record(row.model, rate, set_name=set_name, conditions=conditions)
        record = FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=conditions.density_g_per_ml)
        report = analyse(record, rate, tolerance_percent=row.claim_at(rate).tolerance_percent)
        occlusion = [asdict(o) for o in occlusion_suite(row.model, set_name=run.set_name, seed=seed)]
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    if csv_out is not None:
        csv_out.write_text(write_analyzer_csv(run.times_s, run.mass_g), encoding="utf-8")
    result = {
        "source": "twin",
        "model": row.model.value,
        "set_name": run.set_name,
        "conditions": asdict(conditions),
        "report": asdict(report),
        "occlusion": occlusion,
        "findings": [asdict(f) for f in report.findings] + _occlusion_findings(occlusion),
    }
    _finish(result, out, as_json)


def _file_on_server(server: str, serial: str, body: dict[str, Any]) -> dict[str, Any]:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        fail(f"set {TOKEN_ENV} to a biomed's API token to file on {server}", code="bench.no_token")
    request = urllib.request.Request(
        f"{server.rstrip('/')}/api/v1/bench/pumps/{quote(serial, safe='')}/import",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            filed: dict[str, Any] = json.loads(response.read())
            return filed
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", {})
        fail(
            f"the server refused: {detail.get('message', error.reason)}",
            code=detail.get("code", "bench.server"),
        )
    except (urllib.error.URLError, OSError) as error:
        fail(f"cannot reach {server}: {error}", code="bench.server_unreachable")


@bench_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="analyzer or balance export (CSV; see docs/bench.md)")],
    model: ModelOpt,
    rate: RateOpt,
    set_name: SetOpt = None,
    density: Annotated[float, typer.Option(help="test liquid density, g/mL")] = 0.998,
    server: Annotated[
        str | None, typer.Option(help="file the result on this server (token from SMARTPUMP_TOKEN)")
    ] = None,
    serial: Annotated[str | None, typer.Option(help="the pump's serial (with --server)")] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Analyse an analyzer file against the model's stated accuracy (exit 1 when it fails)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}", code="bench.no_file")
    try:
        row = flow_model(model)
        disposable = row.disposable(set_name)
        record = read_analyzer_csv(text, density_g_per_ml=density)
        report = analyse(record, rate, tolerance_percent=row.claim_at(rate).tolerance_percent)
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    result = {
        "source": "analyzer",
        "model": row.model.value,
        "set_name": disposable.name,
        "conditions": {"density_g_per_ml": density, "file": path.name},
        "report": asdict(report),
        "occlusion": [],
        "findings": [asdict(f) for f in report.findings],
    }
    if server is not None:
        if serial is None:
            fail("--server needs --serial", code="bench.no_serial")
        body = {"csv": text, "rate_ml_per_h": rate, "set_name": disposable.name, "density_g_per_ml": density}
        filed = _file_on_server(server, serial, body)
        console.print(
            f"filed as bench test {filed['id']} (maintenance record {filed['record_id']})", markup=False
        )
    _finish(result, out, as_json)


@bench_app.command("doses")
def doses_command(
    model: ModelOpt,
    dose_ml: Annotated[float, typer.Option("--dose-ml", help="volume of each dose, mL")],
    rate: Annotated[float, typer.Option("--rate", help="rate each dose runs at, mL/h")],
    every_min: Annotated[float, typer.Option("--every-min", help="one dose starts every ... min")] = 10.0,
    count: Annotated[int, typer.Option("--doses", help="number of doses", min=1, max=500)] = 6,
    set_name: SetOpt = None,
    back_pressure_mmhg: Annotated[float, typer.Option(help="downstream pressure, mmHg")] = 0.0,
    seed: Annotated[int, typer.Option(help="noise seed")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Intermittent/bolus delivery on the twin: each dose's delivered volume (exit 1 beyond the claim)."""
    conditions = BenchConditions(back_pressure_mmhg=back_pressure_mmhg, seed=seed)
    every_s = every_min * 60
    try:
        row = flow_model(model)
        run = dose_record(
            row.model,
            dose_ml,
            rate_ml_per_h=rate,
            every_s=every_s,
            doses=count,
            set_name=set_name,
            conditions=conditions,
        )
        record = FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=conditions.density_g_per_ml)
        result = dose_accuracy(record, dose_ml, [k * every_s for k in range(count + 1)])
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    tolerance = row.claim_at(rate).tolerance_percent
    worst = max(abs(e) for e in result.errors_percent)
    if as_json:
        emit_json(
            {"model": row.model.value, "set_name": run.set_name, "tolerance_percent": tolerance}
            | asdict(result)
            | {"mean_error_percent": result.mean_error_percent}
        )
    else:
        table = Table("dose", "delivered (mL)", "error %")
        pairs = zip(result.delivered_ml, result.errors_percent, strict=True)
        for k, (volume, percent) in enumerate(pairs, 1):
            table.add_row(str(k), f"{volume:.4f}", f"{percent:+.2f}")
        console.print(table)
        console.print(
            f"mean dose error {result.mean_error_percent:+.2f} %, "
            f"worst {worst:.2f} % against ±{tolerance:g} %",
            markup=False,
            highlight=False,
        )
    if worst > tolerance:
        raise typer.Exit(1)


@bench_app.command("report")
def report_command(
    result_path: Annotated[Path, typer.Argument(help="a result saved by `bench run|import --out`")],
    html: Annotated[
        Path | None, typer.Option("--html", help="write a standalone HTML report with SVG charts")
    ] = None,
) -> None:
    """Print a saved result and optionally write it as a page with the start-up graph and trumpet curve."""
    from smartpump.server.web.bench_charts import startup_chart, trumpet_chart

    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
        report = result["report"]
        charts = [startup_chart(report), trumpet_chart(report)]
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"{result_path} is not a saved bench result: {error}", code="bench.bad_result")
    _show(result)
    if html is not None:
        env = Environment(loader=PackageLoader("smartpump.server.web", "templates"), autoescape=True)
        css = resources.files("smartpump.server.web").joinpath("static/app.css").read_text(encoding="utf-8")
        page = env.get_template("bench_report.html").render(
            result=result, report=report, charts=charts, css=css
        )
        html.write_text(page, encoding="utf-8")
        console.print(f"wrote {html}", markup=False, highlight=False)
