"""The EHR background services under the app lifespan: ``install`` adds them when ``hl7_port`` is set, and
the MLLP listener answers an order on that port."""

from __future__ import annotations

import socket
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.exceptions import StarletteDeprecationWarning

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.listener import Sender
from smartpump.interop.hl7v2.message import decode, parse
from smartpump.interop.hl7v2.mllp import MllpClient
from smartpump.server.app import create_app
from smartpump.server.ehr_worker import EhrOutboundService, EhrSettings, Hl7ListenerService, install
from smartpump.server.settings import Settings
from tests.server.conftest import World
from tests.server.ehr_support import dopamine_order, ehr_site

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_is_installed_without_an_hl7_port(app: Any) -> None:
    assert install(app.state.smartpump, EhrSettings(ehr_host="ehr.example")) == []


def test_listener_and_sender_are_installed_with_a_port_and_an_ehr_host(
    settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    state = create_app(
        settings.model_copy(update={"hl7_port": 2575}), clock=clock, engine=engine
    ).state.smartpump
    added = install(state, EhrSettings(ehr_host="ehr.example", ehr_port=6661))
    assert [type(s) for s in added] == [Hl7ListenerService, EhrOutboundService]
    assert added[1].destination == "ehr.example:6661"  # type: ignore[attr-defined]
    assert state.background[-2:] == added


def test_the_lifespan_runs_the_listener_and_it_answers_an_order(
    settings: Settings, engine: Engine, clock: ManualClock, world: World
) -> None:
    ehr_site(world)
    port = _free_port()
    application = create_app(settings.model_copy(update={"hl7_port": port}), clock=clock, engine=engine)
    with TestClient(application), MllpClient("127.0.0.1", port, timeout_s=20) as client:
        reply = parse(decode(client.send(dopamine_order().to_er7().encode("utf-8"))))
    assert ack_code_of(reply) is AckCode.CA


def test_the_sender_allow_list_setting_and_its_production_rule() -> None:
    listed = EhrSettings(hl7_allowed_senders="EPIC/HOSP, LAB ,")
    assert listed.senders() == frozenset({Sender("EPIC", "HOSP"), Sender("LAB")})
    assert EhrSettings(hl7_allowed_senders="").senders() is None
    production = SimpleNamespace(settings=SimpleNamespace(hl7_port=2575, is_production=True), background=[])
    with pytest.raises(ValueError, match="SMARTPUMP_HL7_ALLOWED_SENDERS"):
        install(production, EhrSettings())  # type: ignore[arg-type]
    assert production.background == []
    added = install(production, listed)  # type: ignore[arg-type]
    assert len(added) == 1 and production.background == added
