"""`smartpump pki ...`: the facility's device CA, pump enrolment, rotation, revocation, the broker's
certificate and configuration, and a probe that shows the broker refuses one pump posing as another."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from smartpump.cli.output import console, emit_json, fail
from smartpump.clock import WallClock
from smartpump.errors import SmartpumpError
from smartpump.server.broker_config import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES
from smartpump.server.pki import CA_DAYS, CRL_DAYS, DEVICE_DAYS, DevicePki

pki_app = typer.Typer(
    help="Device PKI: CA, pump certificates, revocation, broker TLS + ACL.", no_args_is_help=True
)

PkiDir = Annotated[
    Path, typer.Option("--dir", envvar="SMARTPUMP_PKI_DIR", help="the PKI directory (keep private/ offline)")
]
Days = Annotated[int, typer.Option(help="days the certificate is valid", min=1, max=3650)]
Csr = Annotated[
    Path | None, typer.Option(help="a certificate request (PEM) made on the pump: its key never leaves it")
]
AsJson = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _pki(directory: Path) -> DevicePki:
    return DevicePki(directory, WallClock())


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


@pki_app.command("init")
def init(
    facility: Annotated[str, typer.Option(help="facility code, in the CA's name")],
    directory: PkiDir = Path("var/pki"),
    days: Days = CA_DAYS,
) -> None:
    """Create the facility's device CA (private key 0600 in private/)."""
    try:
        fingerprint = _pki(directory).init_ca(facility, days=days)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _say(f"device CA created in {directory} (SHA-256 {fingerprint})")


@pki_app.command("enrol")
def enrol(
    serial: Annotated[str, typer.Argument(help="the pump serial (the certificate's CN)")],
    directory: PkiDir = Path("var/pki"),
    days: Days = DEVICE_DAYS,
    csr: Csr = None,
    as_json: AsJson = False,
) -> None:
    """Issue a pump its client certificate (and a key, unless --csr)."""
    try:
        issued = _pki(directory).enrol_pump(serial, days=days, csr_pem=_read(csr))
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _issued(issued.identity, issued.cert_path, issued.key_path, as_json)


@pki_app.command("rotate")
def rotate(
    serial: Annotated[str, typer.Argument(help="the pump serial")],
    directory: PkiDir = Path("var/pki"),
    days: Days = DEVICE_DAYS,
    csr: Csr = None,
    as_json: AsJson = False,
) -> None:
    """Issue a pump a new certificate and key; the old certificate is revoked (superseded)."""
    try:
        issued = _pki(directory).rotate_pump(serial, days=days, csr_pem=_read(csr))
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _issued(issued.identity, issued.cert_path, issued.key_path, as_json)
    _say("reload the broker (kill -HUP) so new connections are checked against the new CRL")


@pki_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="pump serial, or server:<name>")],
    directory: PkiDir = Path("var/pki"),
    reason: Annotated[str, typer.Option(help="why (lost, stolen, decommissioned...)")] = "lost",
) -> None:
    """Revoke a lost or retired pump: the server refuses it at once, the broker after reading the CRL."""
    try:
        revoked = _pki(directory).revoke(name, reason=reason)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    for identity in revoked:
        _say(f"revoked {identity.name} certificate {identity.cert_serial} ({identity.reason})")
    _say("the server refuses it now; reload the broker (kill -HUP) so it refuses new connections too")


@pki_app.command("server")
def server(
    name: Annotated[str, typer.Argument(help="replica name; the CN is server:<name>")] = "ingest",
    directory: PkiDir = Path("var/pki"),
    days: Days = DEVICE_DAYS,
    as_json: AsJson = False,
) -> None:
    """Issue a server replica its client certificate (regenerate broker-config afterwards)."""
    try:
        issued = _pki(directory).issue_server(name, days=days)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _issued(issued.identity, issued.cert_path, issued.key_path, as_json)


@pki_app.command("broker-cert")
def broker_cert(
    host: Annotated[list[str], typer.Option(help="a host name or address pumps use for the broker")],
    directory: PkiDir = Path("var/pki"),
    days: Days = DEVICE_DAYS,
    as_json: AsJson = False,
) -> None:
    """Issue the broker's TLS server certificate."""
    try:
        issued = _pki(directory).issue_broker(host, days=days)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _issued(issued.identity, issued.cert_path, issued.key_path, as_json)


@pki_app.command("crl")
def crl(
    directory: PkiDir = Path("var/pki"),
    days: Annotated[
        int, typer.Option(help="days until the CRL must be signed again", min=1, max=3650)
    ] = CRL_DAYS,
) -> None:
    """Sign the CRL again (do it before it expires: the broker refuses every client with an expired CRL)."""
    try:
        path = _pki(directory).write_crl(days=days)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _say(f"CRL written to {path}, valid {days} days")


@pki_app.command("list")
def list_identities(directory: PkiDir = Path("var/pki"), as_json: AsJson = False) -> None:
    """Every certificate issued, with its state."""
    try:
        identities = _pki(directory).identities()
    except (SmartpumpError, OSError) as error:
        _fail(error)
    if as_json:
        emit_json(identities)
        return
    for i in identities:
        _say(f"{i.name:<24} {i.kind:<7} {i.status:<10} until {i.not_after}  {i.cert_serial}")


@pki_app.command("broker-config")
def broker_config(
    out: Annotated[Path, typer.Option(help="directory for mosquitto.conf and acl")],
    directory: PkiDir = Path("var/pki"),
    host: Annotated[str, typer.Option(help="address the broker listens on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TLS port", min=1, max=65535)] = 8883,
    topic_prefix: Annotated[
        list[str] | None, typer.Option(help="topic prefix (repeatable; a level may be +)")
    ] = None,
    persistence_dir: Annotated[Path | None, typer.Option(help="keep sessions across restarts here")] = None,
    log_file: Annotated[Path | None, typer.Option(help="broker log file (default: stderr)")] = None,
    run_as: Annotated[
        str | None, typer.Option(help="user the broker runs as (must read the PKI files)")
    ] = None,
    log_denials: Annotated[bool, typer.Option(help="log every packet, denied publishes included")] = False,
    max_queued_messages: Annotated[
        int, typer.Option(help="QoS 1 messages queued per client beyond those in flight", min=1000)
    ] = MAX_QUEUED_MESSAGES,
    max_queued_bytes: Annotated[
        int, typer.Option(help="bytes queued per client at most", min=1024 * 1024)
    ] = MAX_QUEUED_BYTES,
) -> None:
    """Write a Mosquitto config: TLS with required client certificates, CN as username and client id, an
    ACL binding each pump to its own topics."""
    from smartpump.server.broker_config import BrokerOptions, write_broker_config

    options = BrokerOptions(
        host=host,
        port=port,
        topic_prefixes=tuple(topic_prefix or ["smartpump/v1"]),
        persistence_dir=persistence_dir,
        log_file=log_file,
        run_as=run_as,
        log_denials=log_denials,
        max_queued_messages=max_queued_messages,
        max_queued_bytes=max_queued_bytes,
    )
    try:
        files = write_broker_config(_pki(directory), options, out)
    except (SmartpumpError, OSError) as error:
        _fail(error)
    _say(f"wrote {files.config} and {files.acl} (servers: {', '.join(files.servers)})")
    _say(f"start it: mosquitto -c {files.config}")


@pki_app.command("probe")
def probe(
    identity: Annotated[str, typer.Option("--as", help="pump serial whose certificate to connect with")],
    pump: Annotated[str, typer.Option(help="pump whose topic to publish under")],
    mqtt: Annotated[str, typer.Option(help="the TLS broker, mqtts://host:port")] = "mqtts://127.0.0.1:8883",
    directory: PkiDir = Path("var/pki"),
    prefix: Annotated[str, typer.Option(help="MQTT topic prefix")] = "smartpump/v1",
) -> None:
    """Publish a hello under ``--pump``'s topic with ``--as``'s certificate and say what the broker did:
    exit 0 when it accepted, 1 when it refused (what a biomed checks after deploying the ACL). The probe
    takes the session of ``--as``: a running pump with that certificate reconnects after it."""
    from smartpump.server.broker_probe import publish_as

    try:
        outcome = publish_as(
            directory, identity, pump, mqtt, prefix, client_id=f"probe-{uuid.uuid4().hex[:8]}"
        )
    except (SmartpumpError, OSError, ValueError) as error:
        _fail(error)
    _say(f"{identity} publishing under {pump}: {outcome.verdict} ({outcome.detail})")
    raise typer.Exit(0 if outcome.accepted else 1)


@pki_app.command("quarantine")
def quarantine_list(as_json: AsJson = False) -> None:
    """Pumps held in quarantine in the server's database (SMARTPUMP_DATABASE_URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.cli.server import _settings
    from smartpump.server.db.engine import make_engine, make_session_factory
    from smartpump.server.services import quarantine

    engine = make_engine(_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            rows, _ = quarantine.pending(session, limit=500, offset=0)
            held = [
                {
                    "serial": r.serial,
                    "reason": r.reason,
                    "first_seen_at": r.first_seen_at.isoformat(),
                    "last_seen_at": r.last_seen_at.isoformat(),
                    "messages": r.messages,
                    "events": r.events,
                }
                for r in rows
            ]
    except SQLAlchemyError as error:
        fail(f"cannot read the quarantine: {error}", code="db.unreachable")
    finally:
        engine.dispose()
    if as_json:
        emit_json(held)
        return
    for row in held:
        _say(f"{row['serial']:<24} {row['reason']:<20} {row['messages']} messages, {row['events']} events")


@pki_app.command("admit")
def admit(
    serial: Annotated[str, typer.Argument(help="the pump serial held as pump.unknown")],
    facility: Annotated[str, typer.Option(help="facility code to register it in")],
    model: Annotated[str, typer.Option(help="pump model")],
    firmware: Annotated[str, typer.Option(help="firmware version")] = "unknown",
    care_area: Annotated[str | None, typer.Option(help="care area")] = None,
) -> None:
    """Register a quarantined pump in a facility (audited as pump.admitted by cli)."""
    from sqlalchemy.exc import SQLAlchemyError

    from smartpump.cli.server import _settings
    from smartpump.server.auth import Access, Principal, Role
    from smartpump.server.db.engine import make_engine, make_session_factory
    from smartpump.server.db.repositories import users as users_repo
    from smartpump.server.db.unit_of_work import unit_of_work
    from smartpump.server.services import quarantine

    biomed = frozenset({Role.BIOMED})
    access = Access(principal=Principal(user_id=0, username="cli", global_roles=biomed), roles=biomed)
    engine = make_engine(_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            found = users_repo.facility_by_code(session, facility)
            if found is None:
                fail(f"no facility {facility!r}", code="facility.not_found")
            quarantine.admit(
                session,
                WallClock(),
                access,
                serial,
                facility_id=found.id,
                model=model,
                firmware=firmware,
                care_area=care_area,
                location=None,
            )
    except SmartpumpError as error:
        _fail(error)
    except SQLAlchemyError as error:
        fail(f"cannot admit {serial}: {error}", code="db.unreachable")
    finally:
        engine.dispose()
    _say(f"{serial} admitted in {facility}: its next resend is stored")


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def _issued(identity: object, cert: Path, key: Path | None, as_json: bool) -> None:
    if as_json:
        emit_json({"identity": identity, "certificate": str(cert), "key": None if key is None else str(key)})
        return
    _say(f"certificate {cert}" + (f", key {key} (0600)" if key is not None else " (key stays on the pump)"))


def _fail(error: Exception) -> NoReturn:
    code = error.code if isinstance(error, SmartpumpError) else "pki.io"
    fail(str(error), code=code)


def register(app: typer.Typer) -> None:
    """Add ``smartpump pki``."""
    app.add_typer(pki_app, name="pki")
