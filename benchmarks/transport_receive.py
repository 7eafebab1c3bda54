"""How many pump batches a second one server connection receives, beside paho's own client in the same run.

A server replica's MQTT network thread shares the interpreter with ingest. paho's client makes three or
four ``recv`` calls per packet and one ``send`` per packet out (its PUBACKs), and each call lets another
busy thread of the process take the interpreter lock for up to its switch interval (5 ms).
``BurstReadingClient`` reads and writes in large chunks. Each case subscribes one client (the transport's,
or stock paho as the reference) at QoS 1, has ``mosquitto_pub -l`` (another process) publish ``--messages``
event batches of two events (the fleet-view benchmark's template) and times the receipt of all of them,
each decoded as the server decodes it (a case still receiving after ``WAIT_S`` is measured on what arrived
by then); the cases run with no other thread in the process and with
``--busy`` threads spinning in Python (as the ingest thread does when it is busy).

    .venv/bin/python benchmarks/transport_receive.py [--messages 20000] [--busy 1]

Needs the ``mosquitto`` and ``mosquitto_pub`` programs (it starts its own broker). It prints the figures
and exits 0: it measures, it does not judge.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from fleet_view import broker
from fleet_view_clients import events_payload
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from smartpump.transport.messages import Topics, decode
from smartpump.transport.mqtt import BurstReadingClient, MqttSettings

PUMP = "BENCH-RX-1"
WAIT_S = 60.0
"""Longest wait for one case; a case slower than that is measured on what arrived by then."""


def receive_rate(url: str, client_class: type[paho.Client], messages: int, busy: int) -> tuple[float, int]:
    """Messages a second one client of ``client_class`` received (first to last) and how many arrived."""
    settings = MqttSettings.from_url(url)
    topic = Topics().events(PUMP)
    received = 0
    first_s = last_s = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal received, first_s, last_s
        if done.is_set():
            return
        decode(bytes(message.payload))
        received += 1
        last_s = time.perf_counter()
        if received == 1:
            first_s = last_s
        if received >= messages:
            done.set()

    client = client_class(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-rx-{client_class.__name__}-{busy}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = on_message
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.set()
    client.connect(settings.host, settings.port)
    client.loop_start()
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            for n in range(1000):
                total += n

    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(busy)]
    try:
        client.subscribe(topic, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the client did not subscribe")
        for spinner in spinners:
            spinner.start()
        ts = datetime.now(UTC).isoformat()
        lines = b"".join(events_payload(PUMP, 1 + 2 * n, 2, ts) + b"\n" for n in range(messages))
        publisher = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        subprocess.run(
            [publisher, "-h", settings.host, "-p", str(settings.port), "-q", "1", "-t", topic, "-l"],
            input=lines,
            check=True,
        )
        done.wait(WAIT_S)
        done.set()
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
        client.disconnect()
        client.loop_stop()
    elapsed_s = last_s - first_s
    return (received / elapsed_s if elapsed_s > 0 else 0.0), received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--busy", type=int, default=1, help="threads spinning in the client's process")
    args = parser.parse_args()
    print(
        f"one server connection receiving {args.messages:,} event batches (QoS 1) from mosquitto_pub; "
        f"{os.cpu_count()} cores, load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(f"{'client':<38}{'busy threads':>14}{'messages / s':>16}{'received':>12}")
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as run_broker:
        for busy in (0, args.busy):
            for client_class, label in ((paho.Client, "paho.Client (reference)"), (BurstReadingClient, "")):
                rate, received = receive_rate(run_broker.url, client_class, args.messages, busy)
                name = label or f"{client_class.__name__} (the transport's)"
                print(f"{name:<38}{busy:>14}{rate:>16,.0f}{received:>12,}")


if __name__ == "__main__":
    main()
