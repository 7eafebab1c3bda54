"""`smartpump hl7 parse|send|listen` through Typer's runner (the sub-app is mounted here as the lead will)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli import hl7
from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, build_ack
from smartpump.interop.hl7v2.listener import Hl7Listener
from smartpump.interop.hl7v2.message import Message
from tests.unit.interop.helpers import HL7_DIR

app = typer.Typer()
hl7.register(app)
runner = CliRunner()
DOPAMINE = HL7_DIR / "pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7"


def test_parse_json_shows_the_order() -> None:
    result = runner.invoke(app, ["hl7", "parse", str(DOPAMINE), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    order = info["order"]
    assert info["message_type"] == "RGV^O15^RGV_O15"
    assert (order["order_id"], order["pump_id"], order["weight_kg"]) == ("12345", "A0001", 85)
    assert order["steps"][0]["unit"] == "mcg/kg/min" and order["steps"][0]["rate_or_dose"] == 10
    assert order["steps"][0]["concentration"] == "400 mg/250 mL"


def test_parse_alarm_lists_observations() -> None:
    result = runner.invoke(
        app, ["hl7", "parse", str(HL7_DIR / "pcd04_oru_r40_pump_occlusion_start.hl7"), "--json"]
    )
    refids = [o["refid"] for o in json.loads(result.stdout)["observations"]]
    assert "MDC_ATTR_EVENT_PHASE" in refids


def test_parse_malformed_fails_with_a_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hl7"
    bad.write_text("MSH|^~|x")
    result = runner.invoke(app, ["hl7", "parse", str(bad)])
    assert result.exit_code == 2
    assert "hl7.bad_delimiters" in result.output


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[str]]]:
    """A listener in a background thread that answers AA, except AE for control ID 'bad'."""
    clock = ManualClock()
    seen: list[str] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    state: dict[str, Hl7Listener] = {}

    async def handler(message: Message) -> Message:
        seen.append(message.control_id)
        code = AckCode.AE if message.control_id == "bad" else AckCode.AA
        return build_ack(message, code, control_id="r", timestamp=clock.now())

    async def main() -> None:
        state["listener"] = Hl7Listener(handler, clock, port=0)
        await state["listener"].start()
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True
    )
    thread.start()
    started.wait(5)
    yield state["listener"].port, seen
    asyncio.run_coroutine_threadsafe(state["listener"].close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_send_prints_the_ack(receiver: tuple[int, list[str]]) -> None:
    port, seen = receiver
    result = runner.invoke(app, ["hl7", "send", str(DOPAMINE), "--to", f"127.0.0.1:{port}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ack_code"] == "AA"
    assert seen == ["1"]


def test_send_exits_non_zero_on_ae(receiver: tuple[int, list[str]], tmp_path: Path) -> None:
    port, _ = receiver
    message = tmp_path / "bad.hl7"
    message.write_text(DOPAMINE.read_text().replace("RGV_O15|1|", "RGV_O15|bad|"))
    result = runner.invoke(app, ["hl7", "send", str(message), "--to", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "MSA|AE|bad" in result.output


def test_send_to_nothing_fails_cleanly() -> None:
    result = runner.invoke(app, ["hl7", "send", str(DOPAMINE), "--to", "127.0.0.1:1", "--timeout", "1"])
    assert result.exit_code == 1 and "mllp.connection" in result.output


def test_send_refuses_a_bad_endpoint() -> None:
    result = runner.invoke(app, ["hl7", "send", str(DOPAMINE), "--to", "nowhere"])
    assert result.exit_code == 2


def test_listen_with_library_needs_a_care_area(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hl7", "listen", "--library", str(tmp_path / "lib.json")])
    assert result.exit_code == 2 and "--care-area" in result.output
