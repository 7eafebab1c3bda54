"""The benchmarks' stock MQTT client: paho, a client the project did not write, as pumps and load use it."""

from __future__ import annotations

import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def paho_client(host: str, port: int, name: str, *, in_flight: int = 1000) -> paho.Client:
    """A connected MQTT 5 client, its network loop running, id ``<name>-<random>``: up to ``in_flight`` QoS 1
    messages awaiting their PUBACK, no limit on those queued behind them."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"{name}-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(in_flight)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client
