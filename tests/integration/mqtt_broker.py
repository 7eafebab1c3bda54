"""The MQTT broker of the integration tests (SMARTPUMP_TEST_MQTT_URL): its address, checked reachable."""

from __future__ import annotations

import os
import socket

import pytest

from smartpump.transport.messages import Topics
from smartpump.transport.mqtt import MqttSettings

BROKER_URL = os.environ.get("SMARTPUMP_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def reachable_broker(url: str = BROKER_URL, topics: Topics | None = None) -> MqttSettings:
    """The broker's settings (under ``topics`` when given) once a connection to it opens; fails the test,
    never skips it, when none does."""
    settings = MqttSettings.from_url(url, **({} if topics is None else {"topics": topics}))
    try:
        socket.create_connection((settings.host, settings.port), timeout=2).close()
    except OSError as error:
        pytest.fail(
            f"MQTT broker {url} unreachable ({error}); start Mosquitto or set SMARTPUMP_TEST_MQTT_URL"
        )
    return settings
