"""The receive benchmark (``benchmarks/transport_receive.py``) at tiny scale against a Mosquitto the run
starts, so that it cannot rot: both clients receive every batch in both cases. No rate is asserted (the
benchmark measures; this checks that it still can)."""

from __future__ import annotations

import re

import pytest

from tests.integration.benchmark_runs import run_benchmark

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

ROW = re.compile(r"^(paho\.Client|BurstReadingClient) .*?\s(\d+)\s+([\d,]+)\s+([\d,]+)$", re.M)


def test_benchmark_runs_at_tiny_scale_and_every_batch_arrives() -> None:
    out = run_benchmark(
        "transport_receive.py", ["--messages", "200", "--busy", "1"], unset=("SMARTPUMP_BENCH_MQTT_URL",)
    )
    rows = ROW.findall(out)
    assert [(name, busy) for name, busy, _, _ in rows] == [
        ("paho.Client", "0"),
        ("BurstReadingClient", "0"),
        ("paho.Client", "1"),
        ("BurstReadingClient", "1"),
    ], out
    assert all(received == "200" for _, _, _, received in rows), out
