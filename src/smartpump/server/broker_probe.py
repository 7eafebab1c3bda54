"""Ask the broker whether one identity may publish under a pump's topic: connect with that identity's
certificate from the PKI directory, publish a hello (QoS 1) and read the broker's answer."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smartpump.server.pki import SERVER_PREFIX, PkiError, ca_cert_file, identity_files
from smartpump.transport.messages import Topics, hello_message, pump_id
from smartpump.transport.mqtt import MqttSettings, TlsOptions

WAIT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """Whether the broker accepted the publish, in a word, and what it said."""

    accepted: bool
    verdict: str
    detail: str


def publish_as(
    directory: Path, identity: str, target: str, url: str, prefix: str, *, client_id: str
) -> ProbeOutcome:
    """Publish ``target``'s hello as ``identity`` (a pump serial or ``server:<name>``) and report."""
    if identity.startswith(SERVER_PREFIX):
        cert, key = identity_files(directory, "server", identity)
    else:
        cert, key = identity_files(directory, "pump", pump_id(identity))
    if not cert.exists() or not key.exists():
        raise PkiError(f"no certificate and key of {identity} in {directory}", code="pki.unknown")
    tls = TlsOptions(ca_certs=str(ca_cert_file(directory)), certfile=str(cert), keyfile=str(key))
    settings = MqttSettings.from_url(url, topics=Topics(prefix), tls=tls)
    hello = hello_message(target, next_seq=1, acked_seq=0)
    done = threading.Event()
    answer: dict[str, str] = {}

    def connected(
        client: paho.Client, userdata: Any, flags: Any, code: ReasonCode, properties: Properties | None
    ) -> None:
        if code.is_failure:
            answer["refused"] = f"connection refused: {code}"
            done.set()
            return
        client.publish(settings.topics.for_message(hello), hello.encode(), qos=1)

    def published(
        client: paho.Client, userdata: Any, mid: int, code: ReasonCode, properties: Properties | None
    ) -> None:
        answer["refused" if code.is_failure else "accepted"] = f"PUBACK {code}"
        done.set()

    def disconnected(client: paho.Client, userdata: Any, flags: Any, code: ReasonCode, props: Any) -> None:
        answer.setdefault("refused", f"disconnected by the broker: {code}")
        done.set()

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.tls_set_context(tls.context())
    client.on_connect = connected
    client.on_publish = published
    client.on_disconnect = disconnected
    try:
        client.connect(settings.host, settings.port)
    except OSError as error:
        return ProbeOutcome(False, "refused", f"TLS or connection refused: {error}")
    client.loop_start()
    try:
        answered = done.wait(WAIT_S)
        seen = dict(answer)
    finally:
        client.disconnect()
        client.loop_stop()
    if not answered:
        return ProbeOutcome(False, "no answer", f"nothing within {WAIT_S:g} s")
    if "refused" in seen:
        return ProbeOutcome(False, "refused", seen["refused"])
    return ProbeOutcome(True, "accepted", seen["accepted"])
