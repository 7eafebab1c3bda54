"""The receive benchmark (``benchmarks/transport_receive.py``) at tiny scale against a Mosquitto the run
starts, so that it cannot rot: both clients receive every batch in both cases. No rate is asserted (the
benchmark measures; this checks that it still can)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BENCHMARK = REPO / "benchmarks" / "transport_receive.py"
ROW = re.compile(r"^(paho\.Client|BurstReadingClient) .*?\s(\d+)\s+([\d,]+)\s+([\d,]+)$", re.M)


def test_benchmark_runs_at_tiny_scale_and_every_batch_arrives() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("SMARTPUMP_BENCH_MQTT_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "transport_receive.py"),
            "--messages",
            "200",
            "--busy",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(
        r"^(paho\.Client|BurstReadingClient) .*?\s(\d+)\s+([\d,]+)\s+([\d,]+)$", done.stdout, re.M
    )
    assert [(name, busy) for name, busy, _, _ in rows] == [
        ("paho.Client", "0"),
        ("BurstReadingClient", "0"),
        ("paho.Client", "1"),
        ("BurstReadingClient", "1"),
    ], done.stdout
    assert all(received == "200" for _, _, _, received in rows), done.stdout
