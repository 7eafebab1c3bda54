"""`smartpump serve`, `smartpump db upgrade`, `smartpump audit verify`, `smartpump users ...`."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smartpump.cli.output import console, emit_json, fail
from smartpump.clock import Clock, WallClock
from smartpump.errors import SmartpumpError
from smartpump.library.keys import KeyPurpose
from smartpump.server import audit_anchors, keys
from smartpump.server.auth import Access, Role, password_hasher
from smartpump.server.db.engine import make_engine, make_session_factory
from smartpump.server.db.models import RoleGrant, User
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.keys import Keyring
from smartpump.server.services import users as users_service
from smartpump.server.settings import Settings

db_app = typer.Typer(help="Server database: migrations.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit log: verify the hash chain.", no_args_is_help=True)
users_app = typer.Typer(help="Server user accounts.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        reason = "; ".join(str(e["msg"]) for e in error.errors())
        fail(f"invalid server settings: {reason}", code="settings.invalid")


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
) -> None:
    """Run the server (development migrates the database itself; production needs `db upgrade` first)."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.server.app import create_app
    from smartpump.server.db import migrate
    from smartpump.server.db.engine import make_engine
    from smartpump.server.logs import configure_logging
    from smartpump.server.process import tune_garbage_collector
    from smartpump.server.services.users import ensure_first_admin

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        if not settings.is_production:
            migrate.upgrade(settings.database_url)
        engine = make_engine(settings.database_url, request_slots=settings.max_concurrent_requests)
        if migrate.current_revision(engine) != migrate.head_revision():
            fail(
                "the database is not at the latest migration: run `smartpump db upgrade`", code="db.outdated"
            )
        app = create_app(settings, engine=engine)
        state = app.state.smartpump
        with unit_of_work(state.sessions) as session:
            first = ensure_first_admin(session, settings, state.clock, state.hasher)
    except (SQLAlchemyError, OSError, SmartpumpError) as error:
        fail(f"cannot start: {error}", code="server.start")
    if first is not None:
        if first.generated_password is not None:
            console.print(
                f"Created user '{first.username}' with password: {first.generated_password}",
                markup=False,
                highlight=False,
            )
            console.print("This password is shown once. Change it after the first login.", markup=False)
        else:
            console.print(
                f"Created user '{first.username}' with the password from SMARTPUMP_ADMIN_PASSWORD.",
                markup=False,
            )
    tune_garbage_collector()
    uvicorn.run(app, host=host, port=port, log_config=None)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
) -> None:
    """Migrate the database (SMARTPUMP_DATABASE_URL) to the latest schema."""
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.server.db import migrate

    settings = _settings()
    try:
        migrate.upgrade(settings.database_url, revision)
    except (SQLAlchemyError, OSError) as error:
        fail(f"migration failed: {error}", code="db.migration")
    console.print(
        f"database at revision {migrate.head_revision() if revision == 'head' else revision}", markup=False
    )


def _keyring(settings: Settings) -> Keyring:
    try:
        return keys.load(
            settings.signing_keys_dir, create_missing=not settings.is_production, now=datetime.now(UTC)
        )
    except SmartpumpError as error:
        fail(error.message, code=error.code)


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Recompute the audit hash chain and check it against the signed checkpoints kept outside the database
    (SMARTPUMP_AUDIT_ANCHOR_DIR); exit 1 and name the first bad record or checkpoint."""
    settings = _settings()
    keyring = _keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            report = audit_anchors.verify_anchored(session, settings.audit_anchor_dir, keyring)
    except SQLAlchemyError as error:
        fail(f"cannot read the audit log: {error}", code="db.unreachable")
    finally:
        engine.dispose()
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "records_checked": report.records_checked,
                "checkpoints_checked": report.checkpoints_checked,
                "first_bad_seq": report.first_bad_seq,
                "problem": report.problem,
            }
        )
    elif report.ok:
        console.print(
            f"audit chain intact: {report.records_checked} records, {report.checkpoints_checked} checkpoints",
            markup=False,
        )
    else:
        console.print(f"audit chain BROKEN at record {report.first_bad_seq}: {report.problem}", markup=False)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Write a signed checkpoint of the audit chain's head to SMARTPUMP_AUDIT_ANCHOR_DIR now."""
    settings = _settings()
    keyring = _keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            written = audit_anchors.checkpoint(
                session, keyring.signer(KeyPurpose.AUDIT), settings.audit_anchor_dir, WallClock()
            )
    except SQLAlchemyError as error:
        fail(f"cannot read the audit log: {error}", code="db.unreachable")
    except OSError as error:
        fail(f"cannot write to {settings.audit_anchor_dir}: {error.strerror}", code="audit.anchor_unwritable")
    finally:
        engine.dispose()
    if written is None:
        console.print("nothing to anchor: the log is empty or its head is anchored already", markup=False)
    else:
        console.print(
            f"checkpoint of record {written.seq} ({written.hash[:16]}...) signed by {written.key_id}",
            markup=False,
        )


AsAdmin = Annotated[
    str | None,
    typer.Option("--as", help="admin who grants (their password is asked for); required with --role"),
]


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        fail(f"unknown role {text!r}; one of {', '.join(r.value for r in Role)}", code="user.role")


def _console_access(session: Session, settings: Settings, clock: Clock, username: str) -> Access:
    password = typer.prompt(f"password of {username}", hide_input=True, err=True)
    hasher = password_hasher(settings)
    return users_service.console_admin(session, settings, clock, hasher, username, password)


def _grant(
    session: Session,
    settings: Settings,
    clock: Clock,
    access: Access,
    user: User,
    role: Role,
    facility: str | None,
) -> RoleGrant:
    facility_id = None
    if facility is not None:
        found = users_repo.facility_by_code(session, facility)
        if found is None:
            fail(f"no facility {facility!r}", code="facility.not_found")
        facility_id = found.id
    return users_service.grant_role(
        session, clock, access, user.id, role=role, facility_id=facility_id, via="cli"
    )


def _report(username: str, grant: RoleGrant) -> None:
    where = "every facility" if grant.facility_id is None else f"facility #{grant.facility_id}"
    console.print(
        f"grant #{grant.id}: {username} {grant.role} in {where}: {grant.status}",
        markup=False,
        highlight=False,
    )
    if grant.status == "pending":
        console.print(
            f"a second admin confirms it: smartpump users confirm {username} {grant.id} --as ADMIN "
            f"(or POST /api/v1/users/{grant.user_id}/grants/{grant.id}/confirm)",
            markup=False,
            highlight=False,
        )


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[
        str | None,
        typer.Option(
            help="role to grant: admin, pharmacist, pharmacy_approver, physician, nurse, biomed, auditor, "
            "viewer (privileged ones wait for a second admin)"
        ),
    ] = None,
    facility: Annotated[str | None, typer.Option(help="facility code (default: every facility)")] = None,
    as_admin: AsAdmin = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the new user's password from stdin")
    ] = False,
) -> None:
    """Create a user, and with --role grant it through the same service and approvals as the API, as the
    admin named by --as; prints a generated password."""
    chosen = _role(role) if role is not None else None
    if chosen is not None and as_admin is None:
        fail("granting a role needs --as ADMIN (the admin who grants)", code="grant.actor_required")
    settings = _settings()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(18)
    clock = WallClock()
    engine = make_engine(settings.database_url)
    grant = None
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            access = _console_access(session, settings, clock, as_admin) if as_admin else None
            user = users_service.create_user(
                session,
                settings,
                clock,
                password_hasher(settings),
                as_admin or "cli",
                username=username,
                password=password,
            )
            session.commit()
            if chosen is not None and access is not None:
                grant = _grant(session, settings, clock, access, user, chosen, facility)
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    except SQLAlchemyError as error:
        fail(f"cannot create the user: {error}", code="db.error")
    finally:
        engine.dispose()
    console.print(f"created user {username!r}", markup=False)
    if grant is not None:
        _report(username, grant)
    if not password_stdin:
        console.print(f"password (shown once): {password}", markup=False, highlight=False)


@users_app.command("grant")
def users_grant(
    username: Annotated[str, typer.Argument(help="login name of the user who receives the role")],
    role: Annotated[str, typer.Option(help="role to grant (privileged ones wait for a second admin)")],
    as_admin: Annotated[str, typer.Option("--as", help="admin who grants (their password is asked for)")],
    facility: Annotated[str | None, typer.Option(help="facility code (default: every facility)")] = None,
) -> None:
    """Grant a role through the same service and approvals as the API."""
    chosen = _role(role)
    settings = _settings()
    clock = WallClock()
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            access = _console_access(session, settings, clock, as_admin)
            user = users_repo.user_by_username(session, username)
            if user is None:
                fail(f"no user {username!r}", code="user.not_found")
            grant = _grant(session, settings, clock, access, user, chosen, facility)
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    except SQLAlchemyError as error:
        fail(f"cannot grant the role: {error}", code="db.error")
    finally:
        engine.dispose()
    _report(username, grant)


@users_app.command("confirm")
def users_confirm(
    username: Annotated[str, typer.Argument(help="login name of the user the grant is for")],
    grant_id: Annotated[int, typer.Argument(help="the pending grant's number")],
    as_admin: Annotated[
        str, typer.Option("--as", help="second admin who confirms (not the granter, not the grantee)")
    ],
) -> None:
    """Confirm a pending privileged grant as a second admin (the same rule as the API)."""
    settings = _settings()
    clock = WallClock()
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            access = _console_access(session, settings, clock, as_admin)
            user = users_repo.user_by_username(session, username)
            if user is None:
                fail(f"no user {username!r}", code="user.not_found")
            grant = users_service.confirm_grant(session, clock, access, user.id, grant_id, via="cli")
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    except SQLAlchemyError as error:
        fail(f"cannot confirm the grant: {error}", code="db.error")
    finally:
        engine.dispose()
    _report(username, grant)


def register(app: typer.Typer) -> None:
    """Attach `serve`, `db`, `audit` and `users` to the main app."""
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(audit_app, name="audit")
    app.add_typer(users_app, name="users")
