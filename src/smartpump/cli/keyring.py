"""`smartpump keys list|add|rotate|activate|retire|publish`: the server's keyring of per-purpose signing keys
(rotation) and the signed trust list that tells the pumps which keys to trust."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smartpump.cli.library import keys_app
from smartpump.cli.output import console, emit_json, fail
from smartpump.clock import Clock, WallClock
from smartpump.errors import SigningKeyError
from smartpump.library.keys import KeyPurpose
from smartpump.server import keys
from smartpump.server.db.engine import make_engine, make_session_factory
from smartpump.server.db.models import Facility
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.keys import Keyring, SigningKey
from smartpump.server.services import trust_lists

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="keyring directory (default: SMARTPUMP_SIGNING_KEYS_DIR, else ./var/keys)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
FacilityOption = Annotated[
    str | None, typer.Option("--facility", help="facility code (default: every facility)")
]


def _directory(given: Path | None) -> Path:
    if given is not None:
        return given
    from smartpump.cli.server import _settings

    return _settings().signing_keys_dir


def _show(rows: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        emit_json({"keys": rows})
        return
    for row in rows:
        console.print(
            f"{row['key_id']}  {row['purpose']:<13} {row['status']:<9} created {row['created_at']}",
            markup=False,
            highlight=False,
        )


def _row(key: SigningKey) -> dict[str, str]:
    return {
        "key_id": key.key_id,
        "purpose": key.purpose.value,
        "status": key.status.value,
        "created_at": key.created_at,
    }


@keys_app.command("list")
def list_keys(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List the keyring: each key's id, purpose, status (published, active, retired) and creation time."""
    try:
        rows = keys.manifest(_directory(directory))
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show(rows, as_json)


@keys_app.command("add")
def add_key(
    purpose: Annotated[KeyPurpose, typer.Option(help="what the key signs")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a key for a purpose: active if the purpose has none, else published (pumps learn to trust it)
    until `keys activate`."""
    try:
        key = keys.add_key(_directory(directory), purpose, datetime.now(UTC))
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    except OSError as error:
        fail(f"cannot write the keyring: {error.strerror}", code="key.unwritable")
    _show([_row(key)], as_json)


@keys_app.command("activate")
def activate_key(
    key_id: Annotated[str, typer.Argument(help="id of a published key")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a published key the signer of its purpose; the former one stays published until retired.
    Restart the server replicas to sign with it."""
    try:
        key = keys.activate(_directory(directory), key_id)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show([_row(key)], as_json)


@keys_app.command("retire")
def retire_key(
    key_id: Annotated[str, typer.Argument(help="id of a key that no longer signs")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop publishing a key (pumps drop it); the active key of a purpose cannot be retired."""
    try:
        key = keys.retire(_directory(directory), key_id)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show([_row(key)], as_json)


@keys_app.command("rotate")
def rotate_key(
    purpose: Annotated[KeyPurpose, typer.Option(help="the purpose whose key is replaced")],
    facility: FacilityOption = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a rotation: add a successor key (published, not signing yet) and publish the trust list that
    names it to the pumps; once every pump accepted it, `keys activate` the successor, then `keys retire`
    the old key and `keys publish` again."""
    where = _directory(directory)
    try:
        key = keys.add_key(where, purpose, datetime.now(UTC))
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    except OSError as error:
        fail(f"cannot write the keyring: {error.strerror}", code="key.unwritable")
    if not as_json:
        _show([_row(key)], as_json=False)
    _publish(where, facility, as_json)


@keys_app.command("publish")
def publish_keys(
    facility: FacilityOption = None, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Sign the keyring's trust list (next version) with the trust-root key and send it to every pump (of one
    facility with --facility) as a `trust.install` command; then list each pump's standing."""
    _publish(_directory(directory), facility, as_json)


@keys_app.command("trust-status")
def trust_status(
    facility: Annotated[str, typer.Option(help="facility code")],
    as_json: JsonOption = False,
) -> None:
    """Each pump of a facility with the version and status of the last trust list sent to it."""
    from smartpump.cli.server import _settings

    engine = make_engine(_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = trust_lists.pump_trust(session, _facility_ids(session, facility)[0])
    except SQLAlchemyError as error:
        fail(f"cannot read the database: {error}", code="db.unreachable")
    finally:
        engine.dispose()
    _show_pumps([(r.serial, r.version, r.status, r.result_code) for r in rows], None, as_json)


@dataclass(frozen=True, slots=True)
class _Console:
    """The command context of the console: the wall clock and the keyring; queued commands go out at the
    server's next dispatch."""

    clock: Clock
    keys: Keyring

    def wake(self) -> None:
        """Nothing to wake from the console: the server's dispatcher polls the queue."""


def _facility_ids(session: Session, code: str | None) -> list[int]:
    query = select(Facility.id).order_by(Facility.id)
    ids = list(session.scalars(query if code is None else query.where(Facility.code == code)))
    if code is not None and not ids:
        fail(f"no facility {code!r}", code="facility.not_found")
    return ids


def _publish(directory: Path, facility: str | None, as_json: bool) -> None:
    from smartpump.cli.server import _settings

    settings = _settings()
    try:
        keyring = keys.load(directory, create_missing=not settings.is_production, now=datetime.now(UTC))
        signed = trust_lists.sign_current(keyring, directory)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            publication = trust_lists.publish(
                session,
                _Console(clock=WallClock(), keys=keyring),
                signed,
                facility_ids=_facility_ids(session, facility),
                actor="console",
            )
    except SQLAlchemyError as error:
        fail(
            f"cannot send the trust list: {error}; run `smartpump keys publish` once the database answers",
            code="db.unreachable",
        )
    finally:
        engine.dispose()
    rows = [(c.pump, publication.version, c.status, None) for c in publication.commands]
    _show_pumps(rows, publication, as_json)


def _show_pumps(
    rows: Sequence[tuple[str, int | None, str | None, str | None]],
    publication: trust_lists.Publication | None,
    as_json: bool,
) -> None:
    pumps = [{"serial": s, "version": v, "status": st, "result_code": c} for s, v, st, c in rows]
    if as_json:
        head = (
            {}
            if publication is None
            else {
                "version": publication.version,
                "signed_by": publication.signed_by,
                "key_ids": list(publication.key_ids),
            }
        )
        emit_json({**head, "pumps": pumps})
        return
    if publication is not None:
        console.print(
            f"trust list v{publication.version} signed by {publication.signed_by}: "
            f"{', '.join(publication.key_ids)}; sent to {len(rows)} pump(s)",
            markup=False,
            highlight=False,
        )
    for row in pumps:
        console.print(
            f"{row['serial']}  v{row['version'] if row['version'] is not None else '-'}  "
            f"{row['status'] or 'never sent'}  {row['result_code'] or ''}".rstrip(),
            markup=False,
            highlight=False,
        )
