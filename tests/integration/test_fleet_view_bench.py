"""The fleet view benchmark (``benchmarks/fleet_view.py``) at tiny scale against the real PostgreSQL and
Mosquitto (a broker the run starts with the production queue limits), so that it cannot rot: it runs to the
end, every event sent is stored exactly once, alarm probes reach the live stream (every one on the idle
server), the broker drops nothing, and the fleet list answers, idle and under load. No timing is asserted
(the benchmark measures; this checks that it still can)."""

from __future__ import annotations

import os
import re
import socket

import pytest

from tests.integration.benchmark_runs import run_benchmark

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("topology", ["one process", "api replica"])
def test_benchmark_runs_at_tiny_scale_and_loses_nothing(topology: str) -> None:
    admin_url = os.environ.get(
        "SMARTPUMP_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    arguments = ["--pumps", "20", "--rate", "200", "--seconds", "2", "--publishers", "2"]
    arguments += ["--probe-pumps", "4", "--probe-hz", "3", "--port", str(_free_port())]
    if topology == "api replica":  # the list and the stream from a second process, alarms over the live bus
        arguments += ["--api-port", str(_free_port())]
    else:
        arguments += ["--no-api-replica"]
    out = run_benchmark(
        "fleet_view.py",
        arguments,
        env={"SMARTPUMP_BENCH_POSTGRES_ADMIN_URL": admin_url},
        # a database of the run's own; the run's own Mosquitto, with the production queue limits
        unset=("SMARTPUMP_BENCH_POSTGRES_URL", "SMARTPUMP_BENCH_MQTT_URL"),
    )
    assert "registered 24 of 24 pumps" in out, out
    counts = re.search(r"events sent ([\d,]+), stored ([\d,]+) \(distinct \(pump, seq\) ([\d,]+)", out)
    assert counts is not None, out
    sent, stored, distinct = (int(group.replace(",", "")) for group in counts.groups())
    assert sent > 200, out
    assert sent == stored == distinct, out
    seen = re.search(r"alarms seen / not seen in 10 s\s+all\s+(\d+) / (\d+)\s+(\d+) / (\d+)", out)
    assert seen is not None, out
    idle_seen, idle_missed, loaded_seen, _loaded_missed = (int(g) for g in seen.groups())
    assert idle_seen > 0 and idle_missed == 0 and loaded_seen > 0, out
    assert "times it logged dropping a client's outgoing messages 0" in out, out
    lists = re.search(r"fleet list requests\s+(\d+)\s+(\d+)", out)
    assert lists is not None and int(lists.group(1)) > 0 and int(lists.group(2)) > 0, out
