"""Bench pages: the fleet's worst performers and due checks, and one pump's start-up graph, trumpet curve,
findings and trend, with the biomed's forms to run the twin or import an analyzer file."""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from smartpump.errors import SmartpumpError
from smartpump.server.api.deps import SessionDep, StateDep, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import Access, Role
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.services import bench
from smartpump.server.services.maintenance import due_list
from smartpump.server.vocabulary import MaintenanceKind
from smartpump.server.web.bench_charts import startup_chart, trend_chart, trumpet_chart
from smartpump.server.web.render import BENCH_ROLES, render
from smartpump.server.web.session import CsrfChecked
from smartpump.sim.flow_models import FlowModel, flow_model

router = APIRouter(include_in_schema=False)
BenchReader = Annotated[Access, require_roles(*BENCH_ROLES)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
Serial = Annotated[str, Path(max_length=64)]
MAX_UPLOAD_BYTES: Final = 900_000
WORST_ROWS: Final = 20
DUE_DAYS: Final = 60


def _model(model: str) -> FlowModel | None:
    try:
        return flow_model(model)
    except SmartpumpError:
        return None


@router.get("/ui/bench")
def bench_overview(request: Request, access: BenchReader, session: SessionDep, state: StateDep) -> Response:
    """The fleet's worst performers (latest test per pump) and the performance checks due soon."""
    due = [
        d
        for d in due_list(session, state.clock, state.settings, access, within_days=DUE_DAYS)
        if d.kind == MaintenanceKind.PERFORMANCE_CHECK.value
    ]
    return render(
        request,
        "bench_overview.html",
        principal=access.principal,
        active="bench",
        worst=bench.worst_performers(session, access, limit=WORST_ROWS),
        due=due,
        due_days=DUE_DAYS,
    )


def _pump_page(
    request: Request,
    access: Access,
    session: Any,
    state: Any,
    serial: str,
    test_id: int | None,
    *,
    error: tuple[str, str, str] | None = None,
    status_code: int = 200,
) -> Response:
    pump, tests = bench.history(session, access, serial)
    chosen = next((t for t in tests if t.id == test_id), None) if test_id is not None else None
    if test_id is not None and chosen is None:
        raise NotFoundError("no such bench test on this pump", code="bench.not_found")
    shown = chosen or (tests[-1] if tests else None)
    report = None if shown is None else bench.report_of(shown)
    model = _model(pump.model)
    return render(
        request,
        "bench.html",
        principal=access.principal,
        active="bench",
        status_code=status_code,
        pump=pump,
        model=model,
        tests=list(reversed(tests)),
        shown=shown,
        report=report,
        charts=[] if report is None else [startup_chart(report), trumpet_chart(report)],
        trend=trend_chart([t.mean_error_percent for t in tests], tests[-1].tolerance_percent)
        if len(tests) > 1
        else None,
        due=bench.next_due(session, state.clock, state.settings, access, serial),
        can_file=bool(access.principal.roles_in(pump.facility_id) & {Role.BIOMED}) and model is not None,
        error=error,
    )


@router.get("/ui/pumps/{serial}/bench")
def pump_bench(
    request: Request,
    serial: Serial,
    access: BenchReader,
    session: SessionDep,
    state: StateDep,
    test: Annotated[int | None, Query(ge=1, le=2**31)] = None,
) -> Response:
    """One pump's bench: the chosen (default latest) test's charts and findings, its history and trend."""
    return _pump_page(request, access, session, state, serial, test)


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"{name} {text!r} is not a number", code="bench.form_number") from None


def _filed(request: Request, access: Access, session: Any, state: Any, serial: str, action: Any) -> Response:
    try:
        test = action()
    except (InvalidInputError, NotFoundError) as refused:
        session.rollback()
        if isinstance(refused, NotFoundError):
            raise
        return _pump_page(
            request,
            access,
            session,
            state,
            serial,
            None,
            error=(refused.message, refused.code, ""),
            status_code=status_for(refused),
        )
    return RedirectResponse(f"/ui/pumps/{quote(serial, safe='')}/bench?test={test.id}", status_code=303)


@router.post("/ui/pumps/{serial}/bench/twin")
def run_twin(
    request: Request,
    serial: Serial,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    rate_ml_per_h: Annotated[str, Form(max_length=16)],
    set_name: Annotated[str, Form(max_length=64)] = "",
    head_height_cm: Annotated[str, Form(max_length=16)] = "0",
    back_pressure_mmhg: Annotated[str, Form(max_length=16)] = "0",
    seed: Annotated[str, Form(max_length=10)] = "1",
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Run the 120-min test and the occlusion pair on the pump's twin and file the result."""

    def action() -> Any:
        request_ = bench.TwinRequest(
            rate_ml_per_h=_number(rate_ml_per_h, "rate"),
            set_name=set_name or None,
            head_height_cm=_number(head_height_cm, "head height"),
            back_pressure_mmhg=_number(back_pressure_mmhg, "back-pressure"),
            seed=int(_number(seed, "seed")),
            notes=notes.strip(),
        )
        return bench.run_twin(session, state.clock, access, serial, request_)

    return _filed(request, access, session, state, serial, action)


@router.post("/ui/pumps/{serial}/bench/import")
async def import_file(
    request: Request,
    serial: Serial,
    access: Biomed,
    _csrf: CsrfChecked,
    state: StateDep,
    file: Annotated[UploadFile, File()],
    rate_ml_per_h: Annotated[str, Form(max_length=16)],
    set_name: Annotated[str, Form(max_length=64)] = "",
    density_g_per_ml: Annotated[str, Form(max_length=16)] = "0.998",
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Analyse an uploaded analyzer or balance export (CSV) and file the result."""
    raw = await file.read(MAX_UPLOAD_BYTES + 1)

    def action() -> Any:
        if len(raw) > MAX_UPLOAD_BYTES:
            raise InvalidInputError(f"the file exceeds {MAX_UPLOAD_BYTES} bytes", code="bench.too_large")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInputError("the file is not UTF-8 text", code="bench.not_text") from None
        request_ = bench.ImportRequest(
            csv_text=text,
            rate_ml_per_h=_number(rate_ml_per_h, "rate"),
            set_name=set_name or None,
            density_g_per_ml=_number(density_g_per_ml, "density"),
            notes=notes.strip(),
        )
        return bench.import_analyzer(session, state.clock, access, serial, request_)

    with unit_of_work(state.sessions) as session:
        return _filed(request, access, session, state, serial, action)
