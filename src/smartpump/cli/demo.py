"""`smartpump demo`: the server on SQLite with an in-process simulated fleet, seeded and ready to browse.

Every run starts afresh under ./var/demo/. The demo library is imported as a draft through the real
lifecycle; its lint errors (high-alert entries without a hard maximum) block submission and release, and
they are printed, not hidden: the pumps run it as their factory-installed library until a pharmacist
fixes those entries and two other approvers (the default release policy) approve and release the result,
which can then be deployed.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from smartpump.cli.output import console, fail
from smartpump.errors import SmartpumpError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartpump.server.sim_fleet import SimFleet
    from smartpump.server.state import ServerState

DEMO_DIR: Final = Path("var/demo")
FACILITY: Final = "demo-hospital"
LIBRARY_FILE: Final = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"
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


def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    pumps: Annotated[int, typer.Option(help="simulated pumps", min=1, max=2000)] = 36,
    speed: Annotated[float, typer.Option(help="virtual seconds per wall second", min=0.1, max=3600)] = 60.0,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
) -> None:
    """Run the server with a simulated fleet across care areas (example data, not for clinical use)."""
    import uvicorn
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.library.formats import json_format
    from smartpump.server import keys
    from smartpump.server.app import create_app
    from smartpump.server.db import migrate
    from smartpump.server.db.engine import make_engine, make_session_factory
    from smartpump.server.logs import configure_logging
    from smartpump.server.process import tune_garbage_collector
    from smartpump.server.settings import Settings
    from smartpump.server.sim_fleet import SimFleet
    from smartpump.server.workers import InProcessLink

    if not LIBRARY_FILE.is_file():
        fail(f"the demo library {LIBRARY_FILE} is missing", code="demo.library_missing")
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    url = f"sqlite:///{DEMO_DIR / 'demo.db'}"
    try:
        settings = Settings(
            database_url=url, signing_key_path=DEMO_DIR / "keys" / "library-signing.pem", demo=True
        )
    except ValidationError as error:
        fail(f"invalid server settings: {error.errors()[0]['msg']}", code="settings.invalid")
    configure_logging(settings.log_level)
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        signing_keys = keys.load_or_create(settings.signing_key_path)
        library = json_format.read(LIBRARY_FILE)
        link = InProcessLink()
        fleet = SimFleet(
            library=library,
            pumps=pumps,
            seed=seed,
            speed=speed,
            public_key_pem=signing_keys.public_pem,
            transport_for=link.pump_transport,
            link=link,
            outbox_dir=DEMO_DIR / "outbox",
        )
        app = create_app(settings, engine=engine, sim_fleet=fleet)
        state = app.state.smartpump
        with make_session_factory(engine)() as session:
            report = seed_demo(session, state, fleet)
    except (SQLAlchemyError, OSError, SmartpumpError) as error:
        fail(f"cannot start the demo: {error}", code="demo.start")
    base = f"http://{host}:{port}"
    say = console.print
    say(f"smartpump demo (EXAMPLE DATA - NOT FOR CLINICAL USE) at {base}", markup=False, highlight=False)
    say(f"  API: {base}/api/v1  docs: {base}/docs", markup=False, highlight=False)
    for username, role, password in report.users:
        say(f"  user {username:<11} role {role:<18} password {password}", markup=False, highlight=False)
    say("  These passwords are shown once.", markup=False)
    say(
        f"  {len(fleet.serials())} simulated pumps in {len(report.care_areas)} care areas "
        f"({', '.join(report.care_areas)}), running at {speed:g}x",
        markup=False,
        highlight=False,
    )
    say(
        f"  demo library v{library.version}: imported as draft #{report.library_id}; "
        f"{len(report.lint_errors)} lint error(s) block its release:",
        markup=False,
        highlight=False,
    )
    for finding in report.lint_errors:
        say(f"    {finding}", markup=False, highlight=False)
    say(
        "  The pumps run it as their factory library; release a fixed version, then POST /api/v1/deployments."
    )
    tune_garbage_collector()
    uvicorn.run(app, host=host, port=port, log_config=None)


class SeedReport:
    """What the seeding created: users with their passwords, the draft library, its lint errors."""

    def __init__(self) -> None:
        self.users: list[tuple[str, str, str]] = []
        self.library_id = 0
        self.lint_errors: list[str] = []
        self.care_areas: list[str] = []


def seed_demo(session: Session, state: ServerState, fleet: SimFleet) -> SeedReport:
    """Seed the facility, the users, the draft library and the registry of the simulated pumps."""
    from smartpump.library.formats import json_format
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
    pharmacist = Access(
        principal=Principal(
            user_id=ids["pharmacist"],
            username="pharmacist",
            facility_roles={facility.id: frozenset({Role.PHARMACIST})},
        ),
        roles=frozenset({Role.PHARMACIST}),
    )
    draft = library_lifecycle.create_draft(
        session,
        clock,
        pharmacist,
        facility_id=facility.id,
        document=json_format.to_document(fleet.library),
        based_on_id=None,
    )
    report.library_id = draft.id
    try:
        library_lifecycle.submit(session, clock, pharmacist, draft.id)
    except SmartpumpError:
        session.rollback()
    report.lint_errors = [
        f"{f.rule} at {f.where}: {f.message}"
        for f in library_lifecycle.findings(draft)
        if f.severity.value == "error"
    ]
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
                care_area=area,
                location=f"{area or 'ward'} bay {serial[-3:]}",
                status=PumpStatus.IN_SERVICE.value,
                created_at=clock.now(),
            )
        )
    session.commit()
    report.care_areas = sorted(areas)
    return report


def register(app: typer.Typer) -> None:
    """Attach `demo` to the main app."""
    app.command("demo")(demo)
