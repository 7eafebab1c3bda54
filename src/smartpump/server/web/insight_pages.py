"""The CQI overview page (inline SVG bar charts, no chart library) and the live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from smartpump.analytics.metrics import Dimension
from smartpump.server.api.deps import SessionDep, StateDep, require_roles
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.errors import InvalidInputError
from smartpump.server.live import LiveMessage
from smartpump.server.services import cqi, cqi_suggestions, fleet_view
from smartpump.server.web.live_display import with_display
from smartpump.server.web.render import CQI_ROLES, render

router = APIRouter(include_in_schema=False)
CqiUser = Annotated[Access, require_roles(*CQI_ROLES)]
StreamUser = Annotated[Access, require_roles(*ALL_ROLES)]
HEARTBEAT_S: Final = 15.0
MAX_BARS: Final = 12
SUGGESTION_READERS: Final = frozenset({Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR})


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar of a chart: its label, value text and length as a share of the longest bar."""

    label: str
    text: str
    share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """A horizontal bar chart drawn as inline SVG."""

    title: str
    bars: tuple[Bar, ...]


def bar_chart(title: str, table: cqi.CqiTable | None, column: str, *, percent: bool = False) -> Chart:
    """Bars of one numeric column of a CQI table, labelled by its first column, largest first."""
    if table is None or column not in table.columns:
        return Chart(title=title, bars=())
    values = []
    for record in table.records():
        value = record.get(column)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append((str(record[table.columns[0]]), float(value)))
    values.sort(key=lambda pair: -pair[1])
    top = max((v for _, v in values), default=0.0) or 1.0
    bars = tuple(
        Bar(label=label, text=f"{value * 100:.1f} %" if percent else f"{value:.1f}", share=value / top)
        for label, value in values[:MAX_BARS]
    )
    return Chart(title=title, bars=bars)


def _table(overview: cqi.CqiOverview, key: str) -> cqi.CqiTable | None:
    return next((t for t in overview.tables if t.key == key), None)


@router.get("/ui/cqi")
def cqi_page(
    request: Request,
    access: CqiUser,
    session: SessionDep,
    state: StateDep,
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
    min_overrides: Annotated[int, Query(ge=1, le=1_000_000)] = 3,
) -> Response:
    """CQI overview over the stored events: compliance, alerts per 100 infusions, overrides by drug, and
    (for pharmacy and auditors) the soft-max suggestions on each released version, with their warnings."""
    until = state.clock.now()
    since = until - timedelta(days=days)
    by_area = cqi.overview(session, access, since=since, until=until, group_by=Dimension.CARE_AREA)
    by_entry = cqi.overview(session, access, since=since, until=until, group_by=Dimension.ENTRY)
    readers = Access(principal=access.principal, roles=SUGGESTION_READERS)
    previews = (
        cqi_suggestions.preview_suggestions(
            session, readers, since=since, until=until, min_overrides=min_overrides
        )
        if readers.scope != frozenset()
        else ()
    )
    charts = (
        bar_chart(
            "Library compliance by care area", _table(by_area, "compliance"), "compliance", percent=True
        ),
        bar_chart("Soft alerts per 100 infusions", _table(by_area, "alerts"), "soft_per_100"),
        bar_chart("Hard alerts per 100 infusions", _table(by_area, "alerts"), "hard_per_100"),
        bar_chart("Overrides by drug entry", _table(by_entry, "overrides"), "overrides"),
    )
    return render(
        request,
        "cqi.html",
        principal=access.principal,
        active="cqi",
        overview=by_area,
        headline=by_area.headline,
        charts=charts,
        days=days,
        previews=previews,
        min_overrides=min_overrides,
    )


def sse_frame(message: LiveMessage) -> str:
    """One Server-Sent Events frame (the event name is the message kind, the data its JSON)."""
    data = json.dumps(
        {
            "kind": message.kind,
            "facility_id": message.facility_id,
            "ts": message.ts.isoformat(),
            **message.payload,
        },
        default=str,
    )
    return f"event: {message.kind}\ndata: {data}\n\n"


CURRENT_EVENT: Final = "live.current"
"""The frame after a stream's starting views: the page now shows what the server holds."""


async def _frames(
    batches: AsyncGenerator[list[LiveMessage]], current: Callable[[], list[LiveMessage]]
) -> AsyncIterator[str]:
    """SSE frames: the ``current`` view of every pump, read once the subscription is registered (so no
    change falls between them), closed by a ``live.current`` frame; then the live messages, one chunk per
    batch, with a comment ping after each quiet ``HEARTBEAT_S``; the stream ends when the hub ends the
    subscription (the browser opens a new one, which starts from the current views again).

    The next batch is awaited in a task so that the ping can interrupt the wait without ending the
    subscription. When the browser leaves while that task still reads, cancelling the task ends the
    subscription (its ``finally`` unsubscribes); closing the subscription then, as well, would raise
    ``aclose(): asynchronous generator is already running``. Otherwise the subscription is closed here.
    Neither path suspends (the subscription's cleanup is synchronous), so a cancellation delivered again
    during the cleanup cannot cut it short.
    """
    yield "retry: 2000\n: connected\n\n"
    pending: asyncio.Future[list[LiveMessage]] | None = None
    try:
        await anext(batches)
        views = await asyncio.to_thread(current)
        done = f"event: {CURRENT_EVENT}\ndata: {json.dumps({'pumps': len(views)})}\n\n"
        yield "".join(sse_frame(with_display(message)) for message in views) + done
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(batches))
            finished, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
            if not finished:
                yield ": ping\n\n"
                continue
            try:
                batch = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield "".join(sse_frame(with_display(message)) for message in batch)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        else:
            await batches.aclose()


@router.get("/ui/stream")
async def stream(request: Request, access: StreamUser, state: StateDep, session: SessionDep) -> Response:
    """Live fleet messages of the caller's facilities as Server-Sent Events (text/event-stream only),
    starting from every pump's current view; the request's database session is released before
    streaming, and the starting views are read with a session of their own, so open streams hold no
    connection."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise InvalidInputError("this endpoint speaks text/event-stream only", code="ui.stream_accept")
    scope = access.principal.scope(ALL_ROLES)
    session.close()

    def current() -> list[LiveMessage]:
        now = state.clock.now()
        with state.sessions() as reading:
            views = fleet_view.current_views(reading, scope, now, state.settings.offline_after_s)
        return [
            LiveMessage(kind="pump.view", facility_id=facility_id, payload=view, ts=now)
            for facility_id, view in views
        ]

    return StreamingResponse(
        _frames(state.live.subscribe(scope), current),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
