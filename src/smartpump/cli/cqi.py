"""`smartpump cqi report|replay|suggest` and `smartpump sim history` (Parquet or the server's event store)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.progress import Progress
from rich.table import Table

from smartpump.analytics import frames, history, report
from smartpump.analytics.replay import program_rows, replay
from smartpump.analytics.suggest import suggest as suggest_limits
from smartpump.analytics.suggest import to_draft
from smartpump.cli.output import console, emit_json, err_console, fail
from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary

cqi_app = typer.Typer(
    help="CQI analytics: metrics report, what-if replay, limit suggestions.", no_args_is_help=True
)
sim_app = typer.Typer(help="Synthetic data for demos, benchmarks and tests.", no_args_is_help=True)

HistoryOpt = Annotated[Path, typer.Option("--history", help="Event history (Parquet).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def register(app: typer.Typer) -> None:
    """Attach the `cqi` and `sim` groups to the main app."""
    app.add_typer(cqi_app, name="cqi")
    app.add_typer(sim_app, name="sim")


def _library(path: Path) -> DrugLibrary:
    try:
        return json_format.read(path)
    except (SmartpumpError, OSError) as error:
        code = error.code if isinstance(error, SmartpumpError) else "cli.no_file"
        fail(f"cannot read library {path}: {error}", code=code)


def _history(path: Path) -> pl.DataFrame:
    try:
        return frames.read_parquet(path)
    except SmartpumpError as error:
        fail(error.message, code=error.code)


@cqi_app.command("report")
def report_command(
    history_path: HistoryOpt,
    library: Annotated[Path, typer.Option("--library", help="The library in use (JSON).")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .html or .csv.")],
    latest_version: Annotated[
        int | None,
        typer.Option("--latest-version", help="Latest released library version (default: --library's)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events from this date (YYYY-MM-DD, UTC).")
    ] = None,
) -> None:
    """Write the CQI report (every metric) as a self-contained HTML page or as CSV."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".csv"):
        fail(f"--out must end in .html or .csv, got {out.name}", code="cli.bad_output")
    lib = _library(library)
    events = _history(history_path)
    if since is not None:
        try:
            start = datetime.combine(date.fromisoformat(since), datetime.min.time(), tzinfo=UTC)
        except ValueError:
            fail(f"--since must be a date YYYY-MM-DD, got {since!r}", code="cli.bad_date")
        events = events.filter(pl.col("ts") >= start)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("CQI metrics", total=10)

        def step(title: str) -> None:
            progress.update(task, advance=1, description=title)

        parts = report.sections(events, latest_version or lib.version, step)
    synthetic = frames.is_synthetic_file(history_path)
    if suffix == ".csv":
        out.write_text(report.to_csv(parts), encoding="utf-8")
    else:
        title = f"CQI report - {lib.name} v{lib.version}"
        out.write_text(report.to_html(parts, title=title, synthetic=synthetic), encoding="utf-8")
    err_console.print(f"wrote {out} ({events.height} events)", markup=False, highlight=False)


@cqi_app.command("replay")
def replay_command(
    history_path: HistoryOpt,
    current: Annotated[Path, typer.Option("--current", help="The library in use (JSON).")],
    candidate: Annotated[Path, typer.Option("--candidate", help="The candidate (draft) library (JSON).")],
    as_json: JsonOpt = False,
) -> None:
    """Re-evaluate every historical program against the candidate: alerts before/after per entry."""
    result = replay(program_rows(_history(history_path)), _library(current), _library(candidate))
    if as_json:
        emit_json({"summary": result.summary.to_dicts(), "changes": result.changes.to_dicts()})
        return
    table = Table("entry", "programs", "soft before", "soft after", "hard before", "hard after", "changes")
    for row in result.summary.iter_rows(named=True):
        table.add_row(
            str(row["entry_id"]),
            str(row["programs"]),
            str(row["soft_alerts_before"]),
            str(row["soft_alerts_after"]),
            str(row["hard_alerts_before"]),
            str(row["hard_alerts_after"]),
            str(row["verdict_changes"]),
        )
    console.print(table)


@cqi_app.command("suggest")
def suggest_command(
    history_path: HistoryOpt,
    library: Annotated[Path, typer.Option("--library", help="The library in use (JSON).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the draft library here.")
    ] = None,
    quantile: Annotated[float, typer.Option(help="Quantile of overridden doses proposed.")] = 0.9,
    min_overrides: Annotated[int, typer.Option(help="Overrides an entry needs before a proposal.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Propose soft-max changes (hard limits never move; good catches kept) and optionally write the draft."""
    if not 0 < quantile <= 1:
        fail(f"--quantile must be in (0, 1], got {quantile}", code="cli.bad_parameter")
    lib = _library(library)
    found = suggest_limits(_history(history_path), lib, quantile=quantile, min_overrides=min_overrides)
    if output is not None:
        json_format.write(to_draft(lib, found), output)
    if as_json:
        emit_json(found)
        return
    table = Table("entry", "unit", "soft_max", "proposed", "hard_max", "soft alerts", "good catches kept")
    for s in found:
        table.add_row(
            s.entry_id + (" (!)" if s.warnings else ""),
            s.unit,
            str(s.current),
            str(s.proposed),
            _hard_max_text(s.hard_max, s.proposed_hard_max),
            f"{s.soft_alerts_before} -> {s.soft_alerts_after}",
            f"{s.good_catches_kept}/{s.good_catches}",
            style="yellow" if s.warnings else None,
        )
    console.print(table)
    for s in found:
        for warning in s.warnings:
            err_console.print(
                f"WARNING {s.entry_id}: {warning}", style="yellow", markup=False, highlight=False
            )


def _hard_max_text(hard_max: Decimal | None, proposed_hard_max: Decimal | None) -> str:
    """The entry's hard max, or NONE (with the proposed one) where it has none."""
    if hard_max is not None:
        return str(hard_max)
    return "NONE" if proposed_hard_max is None else f"NONE (propose {proposed_hard_max})"


def _start(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        fail(f"--start must be a date YYYY-MM-DD, got {text!r}", code="cli.bad_date")


@sim_app.command("history")
def history_command(
    library: Annotated[
        Path | None,
        typer.Option(
            "--library",
            help="Library the pumps run (JSON); with --into-db the default is the facility's released one.",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Parquet file to write.")] = None,
    into_db: Annotated[
        str | None,
        typer.Option("--into-db", help="Server database URL: store the events there (pumps SIM-F<id>-<n>)."),
    ] = None,
    facility: Annotated[
        str | None, typer.Option("--facility", help="Facility code the pumps belong to (with --into-db).")
    ] = None,
    pumps: Annotated[int, typer.Option(help="Number of pumps.")] = 50,
    days: Annotated[int, typer.Option(help="Number of days.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same history).")] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First day, YYYY-MM-DD UTC (default: 2025-01-06 for Parquet, --days ago for a db).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic (labelled) event history: to Parquet, or into the server's event store."""
    if pumps < 1 or days < 1:
        fail("--pumps and --days must be at least 1", code="cli.bad_parameter")
    if (output is None) == (into_db is None):
        fail("give exactly one of -o/--output FILE and --into-db URL", code="cli.bad_parameter")
    if into_db is not None:
        if facility is None:
            fail("--into-db needs --facility CODE", code="cli.bad_parameter")
        today = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), tzinfo=UTC)
        _history_into_db(
            into_db,
            facility,
            None if library is None else _library(library),
            pumps=pumps,
            days=days,
            seed=seed,
            start=_start(start, today - timedelta(days=days)),
            as_json=as_json,
        )
        return
    if facility is not None:
        fail("--facility goes with --into-db", code="cli.bad_parameter")
    if library is None:
        fail("writing Parquet needs --library", code="cli.bad_parameter")
    assert output is not None
    lib = _library(library)
    frame = history.generate(
        lib, pumps=pumps, days=days, seed=seed, start=_start(start, history.DEFAULT_START)
    )
    frames.write_parquet(frame, output, synthetic=True)
    if as_json:
        emit_json({"output": str(output), "events": frame.height, "synthetic": True})
        return
    err_console.print(f"wrote {output}: {frame.height} synthetic events", markup=False, highlight=False)


def _history_into_db(
    url: str,
    facility: str,
    library: DrugLibrary | None,
    *,
    pumps: int,
    days: int,
    seed: int,
    start: datetime,
    as_json: bool,
) -> None:
    """Store a synthetic history through the server's event store (refused in production)."""
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.clock import WallClock
    from smartpump.server.db.engine import make_engine, make_session_factory
    from smartpump.server.db.unit_of_work import unit_of_work
    from smartpump.server.services.cqi import store_synthetic_history

    if os.environ.get("SMARTPUMP_ENV") == "production":
        fail("synthetic history is never written into a production store", code="cli.production")
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ValueError) as error:
        fail(f"bad database URL: {error}", code="db.url")
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            loaded = store_synthetic_history(
                session,
                WallClock(),
                facility_code=facility,
                library=library,
                pumps=pumps,
                days=days,
                seed=seed,
                start=start,
                actor="cli",
            )
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    except SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        fail(
            f"cannot write the history (is the database migrated? smartpump db upgrade): {reason}",
            code="db.error",
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json(loaded)
        return
    err_console.print(
        f"stored {loaded.stored} synthetic events ({loaded.duplicates} already stored) in facility "
        f"{facility} with library v{loaded.library_version}; {loaded.pumps_registered} pumps registered",
        markup=False,
        highlight=False,
    )
