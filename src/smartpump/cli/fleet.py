"""`smartpump fleet`: N simulated pumps with the hospital workload, as their own process, over MQTT."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from smartpump.cli.output import console, emit_json, fail
from smartpump.data import DEMO_LIBRARY
from smartpump.errors import SmartpumpError


def fleet(
    pumps: Annotated[int, typer.Option(help="simulated pumps", min=1, max=20_000)] = 36,
    mqtt: Annotated[str, typer.Option(help="broker URL, mqtt://[user:password@]host[:port]")] = (
        "mqtt://127.0.0.1:1883"
    ),
    library: Annotated[Path | None, typer.Option(help="library the pumps run (JSON)")] = None,
    trust: Annotated[
        Path | None,
        typer.Option(
            help="the server's published keys (JSON of GET /api/v1/keys) that the pumps trust, each for "
            "its purpose"
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="virtual seconds per wall second", min=0.1, max=3600)] = 60.0,
    duration: Annotated[float, typer.Option(help="wall seconds to run (0: until interrupted)", min=0)] = 0.0,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
    prefix: Annotated[str, typer.Option(help="MQTT topic prefix")] = "smartpump/v1",
    outbox_dir: Annotated[Path, typer.Option(help="where the pumps keep their outboxes")] = Path("var/fleet"),
    pki_dir: Annotated[
        Path | None,
        typer.Option(
            help="device PKI: each pump connects over TLS with pumps/<serial>.crt/.key (smartpump pki enrol)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the final counters as JSON")] = False,
) -> None:
    """Run simulated pumps that report to a server through the broker (the server runs `smartpump serve`)."""
    from smartpump.demo.fleet import SimFleet
    from smartpump.library.formats import json_format
    from smartpump.library.keys import TrustStore
    from smartpump.server.pki import ca_cert_file, identity_files
    from smartpump.transport.messages import Topics
    from smartpump.transport.mqtt import MqttSettings, MqttTransport, TlsOptions

    try:
        settings = MqttSettings.from_url(mqtt, topics=Topics(prefix))
    except (ValueError, SmartpumpError) as error:
        fail(f"bad broker URL or prefix: {error}", code="fleet.mqtt")

    def transport_for(serial: str) -> MqttTransport:
        if pki_dir is None:
            return MqttTransport.for_pump(serial, settings)
        cert, key = identity_files(pki_dir, "pump", serial)
        if not cert.exists() or not key.exists():
            fail(f"no certificate of {serial} in {pki_dir}: smartpump pki enrol {serial}", code="fleet.pki")
        tls = TlsOptions(ca_certs=str(ca_cert_file(pki_dir)), certfile=str(cert), keyfile=str(key))
        return MqttTransport.for_pump(serial, replace(settings, tls=tls))

    try:
        drug_library = json_format.read(library or DEMO_LIBRARY)
        trusted = (
            TrustStore.from_document(json.loads(trust.read_text(encoding="utf-8")))
            if trust is not None
            else TrustStore([])
        )
    except (OSError, ValueError, SmartpumpError) as error:
        fail(f"cannot load the library or the trusted keys: {error}", code="fleet.input")
    simulated = SimFleet(
        library=drug_library,
        pumps=pumps,
        seed=seed,
        speed=speed,
        trust=trusted,
        transport_for=transport_for,
        outbox_dir=outbox_dir,
    )
    if trust is None:
        console.print(
            "no --trust: every server command will be refused (signature.unknown_key)", markup=False
        )
    console.print(f"{pumps} simulated pumps reporting to {mqtt} at {speed:g}x", markup=False, highlight=False)
    started = time.monotonic()
    try:
        while duration == 0 or time.monotonic() - started < duration:
            simulated.advance()
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    counters = {
        "pumps": pumps,
        "events": sum(simulated.fleet.counts.values()),
        "unacknowledged": simulated.backlog(),
        "virtual_seconds": round(simulated.env.now_s, 1),
    }
    simulated.close()
    if as_json:
        emit_json(counters)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in counters.items()), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Attach `fleet` to the main app."""
    app.command("fleet")(fleet)
