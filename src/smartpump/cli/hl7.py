"""`smartpump hl7 ...`: parse, send and listen for IHE PCD messages over MLLP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from smartpump.cli.output import console, emit_json, fail
from smartpump.clock import WallClock
from smartpump.errors import SmartpumpError
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.listener import Exchange, Hl7Listener, accept_all, new_control_id
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, decode, parse
from smartpump.interop.hl7v2.mllp import DEFAULT_PORT, MllpClient, MllpError
from smartpump.interop.hl7v2.pcd03 import DEFAULT_MAX_ORDER_AGE, OrderRejected, answer_order, parse_order
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary

hl7_app = typer.Typer(help="HL7 v2 / IHE PCD: parse, send and listen (MLLP).", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="An HL7 v2 message file (CR, LF or CRLF between segments).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]


def register(app: typer.Typer) -> None:
    """Attach the `hl7` command group to the main app."""
    app.add_typer(hl7_app, name="hl7")


def _read_message(path: Path) -> Message:
    try:
        data = path.read_bytes()
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}", code="cli.file")
    try:
        return parse(decode(data))
    except Hl7ParseError as error:
        fail(error.message, code=error.code)


def describe(message: Message) -> dict[str, object]:
    """What the system understood from a message, as plain JSON values."""
    info: dict[str, object] = {
        "message_type": "^".join(p for p in message.message_type if p),
        "control_id": message.control_id,
        "version": message.version,
        "profile": list(message.profile_ids),
        "segments": list(message.segment_ids),
    }
    pid = message.first("PID")
    if pid is not None:
        info["patient_id"] = pid.value(3).strip()
    ack = ack_code_of(message)
    if ack is not None:
        info["ack_code"] = ack.value
        info["acknowledged_control_id"] = message.first("MSA").value(2) if message.first("MSA") else ""  # type: ignore[union-attr]
        info["errors"] = [
            {
                "hl7_code": e.value(3, 1),
                "severity": e.value(4),
                "application_code": e.value(5, 1),
                "text": e.value(5, 2) or e.value(8),
            }
            for e in message.all("ERR")
        ]
    if message.message_type[:2] == ("RGV", "O15"):
        info["order"] = _order_summary(message)
    elif message.message_type[0] == "ORU":
        obr = message.first("OBR")
        if obr is not None:
            info["order_id"] = obr.value(2, 1)
            info["filler_id"] = obr.value(3, 1)
            info["observation"] = obr.value(4, 2) or obr.value(4, 1)
        info["observations"] = [
            {
                "containment": o.value(4),
                "code": o.value(3, 1),
                "refid": o.value(3, 2),
                "value": o.value(5),
                "value_text": o.value(5, 2),
                "unit": o.value(6, 2) or o.value(6, 1),
            }
            for o in message.all("OBX")
        ]
    return info


def _order_summary(message: Message) -> dict[str, object]:
    try:
        order = parse_order(message)
    except (Hl7ParseError, OrderRejected) as error:
        return {"error": error.code, "message": error.message}
    steps = [
        {
            "step": s.number,
            "drug_code": s.drug_code,
            "drug": s.drug_text,
            "rate_or_dose": s.give_amount,
            "unit": str(s.give_unit) if s.give_unit else None,
            "vtbi_ml": s.vtbi_ml,
            "concentration": str(s.concentration) if s.concentration else None,
            "duration_min": s.duration_min,
            "route": s.route,
            "method": s.method,
            "parameters": {p.refid: p.text for p in s.parameters},
        }
        for s in order.steps
    ]
    return {
        "intent": order.intent.value,
        "order_control": order.order_control,
        "order_id": order.order_id,
        "parent_order_id": order.parent_order_id,
        "order_time": order.order_time.isoformat() if order.order_time else None,
        "patient_id": order.patient_id,
        "pump_id": order.pump_id,
        "pump_vendor": order.pump_vendor,
        "weight_kg": order.weight_kg,
        "height_cm": order.height_cm,
        "bsa_m2": order.bsa_m2,
        "steps": steps,
    }


@hl7_app.command("parse")
def parse_command(file: FileArg, as_json: JsonOpt = False) -> None:
    """Show what the system understood from a message (type, patient, order, drug, dose, pump...)."""
    info = describe(_read_message(file))
    if as_json:
        emit_json(info)
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        fail(f"--to must be HOST:PORT, got {text!r}", code="cli.endpoint")
    return host, int(port)


@hl7_app.command("send")
def send_command(
    file: FileArg,
    to: Annotated[str, typer.Option("--to", help="Receiver as HOST:PORT (MLLP).")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the ACK.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Send a message with MLLP framing, print the acknowledgement; exit 1 on AE/AR/CE/CR or timeout."""
    message = _read_message(file)
    host, port = _endpoint(to)
    try:
        with MllpClient(host, port, timeout_s=timeout) as client:
            reply_bytes = client.send(message.to_er7().encode("utf-8"))
    except MllpError as error:
        fail(error.message, code=error.code, exit_code=1)
    try:
        reply = parse(decode(reply_bytes))
    except Hl7ParseError as error:
        fail(f"unreadable reply: {error.message}", code=error.code, exit_code=1)
    code = ack_code_of(reply)
    if as_json:
        emit_json(describe(reply))
    else:
        console.print(reply.to_er7().replace("\r", "\n"), markup=False, highlight=False)
    if code is None or not code.is_positive:
        raise typer.Exit(1)


@hl7_app.command("listen")
def listen_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="MLLP port.")] = DEFAULT_PORT,
    library_file: Annotated[
        Path | None, typer.Option("--library", help="Drug library (JSON) to check PCD-03 orders against.")
    ] = None,
    care_area: Annotated[str | None, typer.Option("--care-area", help="Care area of the orders.")] = None,
    max_order_age_min: Annotated[
        int, typer.Option("--max-order-age-min", help="Reject orders whose ORC-9 is older (PIV 9022).")
    ] = int(DEFAULT_MAX_ORDER_AGE.total_seconds() // 60),
) -> None:
    """Answer HL7 over MLLP: PCD-03 orders get ACK/RRG (DERS-checked with --library), others AA/CA."""
    library: DrugLibrary | None = None
    if library_file is not None:
        if care_area is None:
            fail("--library needs --care-area", code="cli.care_area")
        try:
            library = json_format.read(library_file)
            library.care_area(care_area)
        except (SmartpumpError, OSError) as error:
            fail(str(error), code=getattr(error, "code", "cli.file"))
    clock = WallClock()
    max_age = timedelta(minutes=max_order_age_min)

    async def handler(message: Message) -> Message:
        if library is not None and care_area is not None and message.message_type[:2] == ("RGV", "O15"):
            reply, _ = answer_order(
                message, library, care_area, now=clock.now(), control_id=new_control_id(), max_age=max_age
            )
            return reply
        return await accept_all(message, clock)

    def log(exchange: Exchange) -> None:
        flag = " duplicate" if exchange.is_duplicate else ""
        error = f" {exchange.error}" if exchange.error else ""
        console.print(
            f"{datetime.now(UTC).isoformat(timespec='seconds')} {exchange.peer} {exchange.message_type}"
            f" {exchange.control_id or '-'} -> {exchange.ack_code or '?'}{flag}{error}",
            markup=False,
            highlight=False,
        )

    async def serve() -> None:
        listener = Hl7Listener(handler, clock, host=host, port=port, on_exchange=log)
        try:
            bound_host, bound_port = await listener.start()
        except OSError as error:
            fail(f"cannot listen on {host}:{port}: {error.strerror}", code="mllp.bind")
        console.print(f"listening for MLLP on {bound_host}:{bound_port}", markup=False, highlight=False)
        await listener.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
