"""`smartpump demo`: the server with an in-process simulated fleet, seeded and ready to browse.

Every run starts afresh under its data directory (``--data-dir``, default ./var/demo/), on SQLite there
or on the database ``SMARTPUMP_DATABASE_URL`` names (which must not hold the demo already). A second demo
on the same data directory is refused while the first runs (a lock file holding its PID).

The fleet first plays the last ``--history-h`` hours at once, then runs at the wall clock's pace: every
event carries the pump's own clock, which is never ahead of the server's, so the CQI views and the live
dashboard show the same time.

The pumps run the example library as their factory-installed library (version 1). The server starts
with its first release, version 2, made through the real lifecycle and audited under the demo's own
users: the pharmacist imports the example as a draft and completes what lint refuses (a high-alert entry
without a dose hard maximum gets one of twice its soft maximum, said in the entry's provenance; the
example itself keeps its sources' values), the two approvers approve it (the default release policy) and
one of them releases it, signed. Lint warnings stay and are printed. EHR orders are checked against this
release at once; a biomed deploys it to the pumps (``POST /api/v1/deployments``).
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from smartpump.cli.output import console, fail
from smartpump.data import DEMO_LIBRARY
from smartpump.errors import SmartpumpError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartpump.demo.fleet import SimFleet
    from smartpump.server.auth import Access
    from smartpump.server.state import ServerState

DEMO_DIR: Final = Path("var/demo")
LOCK_FILE: Final = "demo.pid"
DATABASE_ENV: Final = "SMARTPUMP_DATABASE_URL"
FACILITY: Final = "demo-hospital"
DEMO_USERS: Final = (
    ("pharmacist", "pharmacist"),
    ("approver", "pharmacy_approver"),
    ("approver2", "pharmacy_approver"),
    ("physician", "physician"),
    ("nurse", "nurse"),
    ("biomed", "biomed"),
    ("auditor", "auditor"),
    ("viewer", "viewer"),
)
HOUR_S: Final = 3600
SEED_REASON: Final = "demo seed: first release of the example library"
"""The approvals' comment, in the audit log, of the release the demo seeds."""


def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    pumps: Annotated[int, typer.Option(help="simulated pumps", min=1, max=2000)] = 36,
    history_h: Annotated[
        float,
        typer.Option(help="hours of fleet history played at start, then wall-clock pace", min=0, max=23),
    ] = 12.0,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
    data_dir: Annotated[
        Path, typer.Option(help="where the demo keeps its database, keys and outboxes (wiped on start)")
    ] = DEMO_DIR,
) -> None:
    """Run the server with a simulated fleet across care areas (example data, not for clinical use)."""
    if not DEMO_LIBRARY.is_file():
        fail(f"the demo library {DEMO_LIBRARY} is missing", code="demo.library_missing")
    lock = acquire_lock(data_dir)
    try:
        _run(host=host, port=port, pumps=pumps, history_h=history_h, seed=seed, data_dir=data_dir)
    finally:
        release_lock(lock)


def acquire_lock(data_dir: Path) -> Path:
    """Take the data directory's lock file (our PID), refusing while a live process holds it; a lock left
    by a process that is gone is taken over.

    Exits with code 3 (``demo.running``) when another demo runs on this directory.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = data_dir / LOCK_FILE
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and _alive(holder):
                fail(
                    f"a demo (PID {holder}) is already running on {data_dir}; stop it first, or use another "
                    "--data-dir",
                    code="demo.running",
                    exit_code=3,
                )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return lock
    fail(f"cannot take the demo lock {lock}", code="demo.running", exit_code=3)


def release_lock(lock: Path) -> None:
    """Remove the lock file when it is still ours."""
    if _lock_holder(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def _lock_holder(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    return int(text) if (text.isascii() and text.isdigit()) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wipe(data_dir: Path) -> None:
    """Empty the data directory, keeping its lock file."""
    for child in data_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _run(*, host: str, port: int, pumps: int, history_h: float, seed: int, data_dir: Path) -> None:
    import uvicorn
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.demo.fleet import SimFleet
    from smartpump.library.formats import json_format
    from smartpump.server import keys
    from smartpump.server.app import create_app
    from smartpump.server.db import migrate
    from smartpump.server.db.engine import make_engine, make_session_factory
    from smartpump.server.db.unit_of_work import unit_of_work
    from smartpump.server.logs import configure_logging
    from smartpump.server.process import tune_garbage_collector
    from smartpump.server.settings import Settings
    from smartpump.server.workers import InProcessLink

    _wipe(data_dir)
    url = os.environ.get(DATABASE_ENV) or f"sqlite:///{data_dir / 'demo.db'}"
    try:
        settings = Settings(
            database_url=url,
            signing_keys_dir=data_dir / "keys",
            audit_anchor_dir=data_dir / "audit-anchors",
            demo=True,
        )
    except ValidationError as error:
        fail(f"invalid server settings: {error.errors()[0]['msg']}", code="settings.invalid")
    configure_logging(settings.log_level)
    try:
        migrate.upgrade(url)
        engine = make_engine(url, request_slots=settings.max_concurrent_requests)
        with make_session_factory(engine)() as session:
            if holds_demo(session):
                fail(
                    f"the database {DATABASE_ENV} names already holds the demo ({FACILITY}); the demo seeds "
                    "a fresh database",
                    code="demo.database_not_empty",
                )
        keyring = keys.load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
        library = json_format.read(DEMO_LIBRARY)
        link = InProcessLink()
        fleet = SimFleet(
            library=library,
            pumps=pumps,
            seed=seed,
            speed=1.0,
            history_s=history_h * HOUR_S,
            trust=keyring.trust_store(),
            transport_for=link.pump_transport,
            link=link,
            outbox_dir=data_dir / "outbox",
        )
        app = create_app(settings, engine=engine, sim_fleet=fleet)
        state = app.state.smartpump
        with unit_of_work(make_session_factory(engine)) as session:
            report = seed_demo(session, state, fleet)
    except (SQLAlchemyError, OSError, SmartpumpError) as error:
        fail(f"cannot start the demo: {error}", code="demo.start")
    base = f"http://{host}:{port}"
    say = console.print
    say(f"smartpump demo (EXAMPLE DATA - NOT FOR CLINICAL USE) at {base}", markup=False, highlight=False)
    say(f"  API: {base}/api/v1  docs: {base}/docs", markup=False, highlight=False)
    say(f"  database: {_shown(url)}  data: {data_dir}", markup=False, highlight=False)
    for username, role, password in report.users:
        say(f"  user {username:<11} role {role:<18} password {password}", markup=False, highlight=False)
    say("  These passwords are shown once.", markup=False)
    say(
        f"  {len(fleet.serials())} simulated pumps in {len(report.care_areas)} care areas "
        f"({', '.join(report.care_areas)}): the last {history_h:g} h played, now at wall-clock pace",
        markup=False,
        highlight=False,
    )
    say(
        f"  demo library: v{report.library_version} (#{report.library_id}) released and signed by the demo "
        f"seed; high-alert entries it completed to clear lint errors: {len(report.completed)}",
        markup=False,
        highlight=False,
    )
    for line in report.completed:
        say(f"    {line}", markup=False, highlight=False)
    lint_url = f"/api/v1/libraries/{report.library_id}/lint"
    say(
        f"  {len(report.lint_warnings)} lint warning(s) remain (GET {lint_url}).",
        markup=False,
        highlight=False,
    )
    say(
        f"  EHR orders are checked against v{report.library_version} now; the pumps run the example as their "
        f"factory library v{library.version} until it is deployed with 'Deploy to pumps' on "
        f"v{report.library_version}'s page (or POST /api/v1/deployments).",
        markup=False,
        highlight=False,
    )
    tune_garbage_collector()
    uvicorn.run(app, host=host, port=port, log_config=None)


def _shown(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def holds_demo(session: Session) -> bool:
    """Whether the database already holds the demo's facility or one of its users."""
    from sqlalchemy import select

    from smartpump.server.db.models import Facility, User

    if session.scalars(select(Facility.id).where(Facility.code == FACILITY)).first() is not None:
        return True
    names = [name for name, _ in DEMO_USERS]
    return session.scalars(select(User.id).where(User.username.in_(names))).first() is not None


class SeedReport:
    """What the seeding created: users with their passwords, the released library, the entries the seed
    completed to clear lint errors, and the lint warnings that remain."""

    def __init__(self) -> None:
        self.users: list[tuple[str, str, str]] = []
        self.library_id = 0
        self.library_version = 0
        self.completed: list[str] = []
        self.lint_warnings: list[str] = []
        self.care_areas: list[str] = []


def seed_demo(session: Session, state: ServerState, fleet: SimFleet) -> SeedReport:
    """Seed the facility, the users, the registry of the simulated pumps (with their factory library's
    version and content hash) and then the first release of the example library, numbered above the factory
    version (see the module docstring)."""
    from smartpump.library.formats import json_format
    from smartpump.pump.installation import library_sha256
    from smartpump.server.auth import Access, Principal, Role
    from smartpump.server.db.models import Facility, Pump, RoleGrant
    from smartpump.server.services import library_lifecycle, users
    from smartpump.server.vocabulary import PumpStatus

    report = SeedReport()
    clock, settings = state.clock, state.settings
    first = users.ensure_first_admin(session, settings, clock, state.hasher)
    if first is not None:
        shown = first.generated_password or "(from SMARTPUMP_ADMIN_PASSWORD)"
        report.users.append((first.username, Role.ADMIN.value, shown))
    facility = Facility(code=FACILITY, name="Demo hospital (example)", created_at=clock.now())
    session.add(facility)
    session.flush()
    ids: dict[str, int] = {}
    for username, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        user = users.create_user(
            session, settings, clock, state.hasher, None, username=username, password=password
        )
        session.add(
            RoleGrant(
                user_id=user.id, role=role, facility_id=facility.id, status="active", created_at=clock.now()
            )
        )
        ids[username] = user.id
        report.users.append((username, role, password))
    session.commit()

    def acting(username: str, role: Role) -> Access:
        principal = Principal(
            user_id=ids[username], username=username, facility_roles={facility.id: frozenset({role})}
        )
        return Access(principal=principal, roles=frozenset({role}))

    pharmacist = acting("pharmacist", Role.PHARMACIST)
    areas: set[str] = set()
    for serial in fleet.serials():
        pump = fleet.pump(serial)
        area = pump.care_area.id if pump.care_area is not None else None
        if area is not None:
            areas.add(area)
        session.add(
            Pump(
                facility_id=facility.id,
                serial=serial,
                model=pump.caps.model.value,
                firmware=fleet.software(serial).installed_version,
                installed_library_version=fleet.library.version,
                library_sha256=library_sha256(fleet.library),
                care_area=area,
                location=f"{area or 'ward'} bay {serial[-3:]}",
                status=PumpStatus.IN_SERVICE.value,
                created_at=clock.now(),
            )
        )
    session.commit()
    draft = library_lifecycle.create_draft(
        session,
        clock,
        pharmacist,
        facility_id=facility.id,
        document=json_format.to_document(fleet.library),
        based_on_id=None,
    )
    report.library_id = draft.id
    report.library_version = draft.version
    report.completed = _complete_hard_maxima(session, state, pharmacist, draft.id)
    library_lifecycle.submit(session, clock, pharmacist, draft.id)
    approvers = (acting("approver", Role.PHARMACY_APPROVER), acting("approver2", Role.PHARMACY_APPROVER))
    for approver in approvers:
        library_lifecycle.approve(session, clock, approver, draft.id, comment=SEED_REASON, emergency=False)
    released = library_lifecycle.release(session, clock, state.keys, approvers[0], draft.id)
    report.lint_warnings = [
        f"{f.rule} at {f.where}: {f.message}"
        for f in library_lifecycle.findings(released)
        if f.severity.value == "warning"
    ]
    report.care_areas = sorted(areas)
    return report


def _complete_hard_maxima(
    session: Session, state: ServerState, pharmacist: Access, library_id: int
) -> list[str]:
    """Give each high-alert entry lint refuses for lacking a dose hard maximum one of twice its highest dose
    limit, noted in its provenance (the pharmacist's edit, audited); returns what was completed."""
    from decimal import Decimal

    from smartpump.library.formats import json_format
    from smartpump.server.services import library_lifecycle
    from smartpump.units import format_decimal

    row = library_lifecycle.get_version(session, pharmacist, library_id)
    missing = {
        f.where.removeprefix("entry:")
        for f in library_lifecycle.findings(row)
        if f.rule == "lint.high_alert.no_hard_max"
    }
    completed = []
    for entry in json_format.to_document(library_lifecycle.library_of(row))["entries"]:
        if entry["id"] not in missing:
            continue
        limits = entry["dose"]["limits"]
        hard_max = 2 * max(Decimal(str(v)) for v in limits.values())
        limits["hard_max"] = hard_max
        shown = format_decimal(hard_max)
        note = f"hard max {shown} {entry['dose']['unit']} added by the demo seed (twice the highest limit)"
        entry["provenance"] = f"{entry['provenance']}; {note}" if entry.get("provenance") else note
        library_lifecycle.put_entry(session, state.clock, pharmacist, library_id, entry["id"], entry)
        completed.append(f"{entry['id']}: {note}")
    return completed


def register(app: typer.Typer) -> None:
    """Attach `demo` to the main app."""
    app.command("demo")(demo)
