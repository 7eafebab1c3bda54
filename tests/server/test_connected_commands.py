"""Signed commands and library deployment to simulated pumps over the in-process transport."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from smartpump.demo.fleet import SimFleet
from smartpump.ders.program import InfusionProgram
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.errors import ConflictError, InvalidInputError
from smartpump.server.keys import SigningKey
from smartpump.server.services import commands
from smartpump.server.settings import Settings
from smartpump.transport.commands import sign_command
from smartpump.transport.messages import command_message
from smartpump.transport.offers import OFFER_FORMAT, OfferKind, ProgramOffer, offer_args
from tests.factories import make_library
from tests.server.connected_helpers import Harness, linked_fleet
from tests.server.library_rows import store_released_library

HOSPITAL = "north"


@pytest.fixture
def connected(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, SimFleet]]:
    """Three simulated pumps (factory library v1) linked to an app on a wall clock."""
    with linked_fleet(settings, engine, tmp_path, hospital=HOSPITAL) as linked:
        yield linked


def _refusals(fleet: SimFleet, harness: Harness) -> list[tuple[str, str]]:
    stored = harness.stored()
    return [
        (pump, event["data"]["code"])
        for (pump, _), event in sorted(stored.items())
        if event["type"] == "command.refused"
    ]


def _send_raw(harness: Harness, serial: str, keys: SigningKey, **overrides: object) -> None:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "pump_id": serial,
        "command": "program.offer",
        "args": {},
        "issued_at": now,
        "expires_at": now + timedelta(minutes=5),
        "nonce": "n-" + serial,
        "counter": 10_000,
        "private_key_pem": keys.private_pem,
        "key_id": keys.key_id,
    }
    fields.update(overrides)
    signed = sign_command(**fields)  # type: ignore[arg-type]
    harness.worker.transport.send(command_message(serial, signed.to_dict()))


def test_forged_foreign_expired_and_replayed_commands_are_refused_and_logged_by_the_pump(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    first, second, _ = fleet.serials()
    command_key = harness.state.keys.signer(KeyPurpose.COMMAND)
    forger = replace(command_key, private_pem=signing.generate_keypair()[0])
    _send_raw(harness, first, forger, nonce="forged")
    _send_raw(harness, first, command_key, pump_id=second, nonce="foreign")
    past = datetime.now(UTC) - timedelta(hours=2)
    _send_raw(
        harness,
        first,
        command_key,
        issued_at=past,
        expires_at=past + timedelta(minutes=1),
        nonce="old",
    )
    harness.pump_messages(step=fleet.advance)
    _send_raw(harness, first, command_key, nonce="once", counter=20_000, args={"order_id": "x"})
    _send_raw(harness, first, command_key, nonce="once", counter=20_000, args={"order_id": "x"})
    harness.pump_messages(step=fleet.advance)
    codes = [code for pump, code in _refusals(fleet, harness) if pump == first]
    assert codes[:3] == ["command.forged", "command.foreign", "command.expired"]
    assert "command.replayed" in codes


def test_an_offered_program_for_another_patient_is_refused_and_the_result_recorded(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    serial = fleet.serials()[0]
    with unit_of_work(harness.state.sessions) as session:
        record = commands.issue_command(
            session,
            harness.state,
            pump_serial=serial,
            command="offer_program",
            args=offer_args(
                ProgramOffer(
                    order_id="o-1",
                    patient_id="someone-else",
                    channel="A",
                    kind=OfferKind.NEW,
                    program=InfusionProgram(entry_id="icu-dopamine", rate_ml_per_h=Decimal("5")),
                )
            ),
            actor="nurse",
        )
    harness.pump_messages(step=fleet.advance)
    with harness.session() as session:
        row = session.scalars(select(PumpCommand).where(PumpCommand.nonce == record.nonce)).one()
    assert (row.status, row.result_code) == ("refused", "command.patient_mismatch")
    assert (serial, "command.patient_mismatch") in _refusals(fleet, harness)


def test_a_malformed_offer_signed_by_the_server_key_is_refused_by_the_pump_itself(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    serial = fleet.serials()[0]
    command_key = harness.state.keys.signer(KeyPurpose.COMMAND)
    with pytest.raises(InvalidInputError) as caught, unit_of_work(harness.state.sessions) as session:
        commands.issue_command(
            session,
            harness.state,
            pump_serial=serial,
            command="offer_program",
            args={"format": OFFER_FORMAT, "order_id": 5},
            actor="nurse",
        )
    assert caught.value.code == "command.args"
    _send_raw(harness, serial, command_key, nonce="bad-offer", args={"format": OFFER_FORMAT, "order_id": 5})
    harness.pump_messages(step=fleet.advance)
    assert (serial, "command.malformed") in _refusals(fleet, harness)


def _release(harness: Harness, library: DrugLibrary, *, tamper: bool = False) -> int:
    library_key = harness.state.keys.signer(KeyPurpose.LIBRARY)
    signed = signing.sign(
        replace(library, status=LibraryStatus.RELEASED), library_key.private_pem, library_key.key_id
    )
    document = signed.to_json()
    if tamper:
        doc = json.loads(document)
        payload = base64.b64decode(doc["payload"]).replace(b"Factory test library", b"Factory test librarX")
        doc["payload"] = base64.b64encode(payload).decode("ascii")
        document = json.dumps(doc)
    with harness.session() as session:
        library_id = store_released_library(
            session,
            harness.facility_id,
            library,
            datetime.now(UTC),
            signed_document=document,
            key_id=library_key.key_id,
        )
        session.commit()
        return library_id


def _deploy(harness: Harness, library_id: int, waves: list[int]) -> dict[str, object]:
    from smartpump.server.auth import Access, Principal, Role
    from smartpump.server.services import deployment

    access = Access(
        principal=Principal(user_id=0, username="biomed", global_roles=frozenset({Role.BIOMED})),
        roles=frozenset({Role.BIOMED}),
    )
    with unit_of_work(harness.state.sessions) as session:
        view = deployment.create_deployment(
            session,
            harness.state,
            access,
            facility_id=harness.facility_id,
            kind=deployment.DeploymentKind.LIBRARY,
            library_id=library_id,
            package_id=None,
            target_kind=deployment.TargetKind.CARE_AREA,
            target_value="icu",
            waves=waves,
            pause_s=0,
        )
    harness.pump_messages(step=fleet_step(harness))
    with harness.session() as session:
        final = deployment.view(session, access, view.id)
    return {
        "status": final.status,
        "counts": final.counts,
        "codes": sorted({t.code for t in final.targets if t.code}),
    }


def fleet_step(harness: Harness):  # type: ignore[no-untyped-def]
    fleet = harness.fleet
    assert fleet is not None

    def step() -> None:
        fleet.advance()
        harness.worker.poke()

    return step


def test_a_released_library_deployed_to_a_care_area_reaches_every_pump_and_currency_shows_it(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    library_id = _release(harness, make_library(hospital_id=HOSPITAL, version=2))
    outcome = _deploy(harness, library_id, [34, 100])
    assert outcome == {
        "status": "completed",
        "counts": {"pending": 0, "offered": 0, "accepted": 0, "activated": 3, "refused": 0},
        "codes": [],
    }
    assert {fleet.pump(s).library.version for s in fleet.serials()} == {2}  # type: ignore[union-attr]
    client_view = harness.app.state.smartpump
    from smartpump.server.auth import Access, Principal, Role
    from smartpump.server.services.fleet import library_currency

    access = Access(
        principal=Principal(user_id=0, username="v", global_roles=frozenset({Role.VIEWER})),
        roles=frozenset({Role.VIEWER}),
    )
    with client_view.sessions() as session:
        [currency] = library_currency(session, access)
    assert (currency.released_version, currency.current, currency.outdated_serials) == (2, 3, ())


def test_a_release_numbered_like_the_pumps_other_library_is_refused_before_any_offer(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    library_id = _release(harness, make_library(hospital_id=HOSPITAL, version=1, name="Corrected library"))
    with pytest.raises(ConflictError) as refused:
        _deploy(harness, library_id, [30, 100])
    assert refused.value.code == "deployment.same_version"
    assert refused.value.message.startswith("same version, different content: release as v2")
    with harness.session() as session:
        assert session.scalars(select(PumpCommand)).all() == []
    assert {fleet.pump(s).library.version for s in fleet.serials()} == {1}  # type: ignore[union-attr]


def test_a_rolled_back_library_is_refused_by_the_pumps_and_halts_the_rollout(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    assert (
        _deploy(harness, _release(harness, make_library(hospital_id=HOSPITAL, version=3)), [100])["status"]
        == "completed"
    )
    library_id = _release(harness, make_library(hospital_id=HOSPITAL, version=2))
    outcome = _deploy(harness, library_id, [30, 100])
    assert outcome["status"] == "halted"
    assert outcome["counts"]["refused"] == 1 and outcome["counts"]["pending"] == 2  # type: ignore[index]
    assert outcome["codes"] == ["signature.rollback"]
    assert {fleet.pump(s).library.version for s in fleet.serials()} == {3}  # type: ignore[union-attr]


def test_a_pump_already_running_the_release_is_activated_without_an_offer(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, _ = connected
    library_id = _release(harness, make_library(hospital_id=HOSPITAL, version=2))
    assert _deploy(harness, library_id, [100])["status"] == "completed"
    with harness.session() as session:
        offered = len(session.scalars(select(PumpCommand)).all())
    again = _deploy(harness, library_id, [50, 100])
    assert again["status"] == "completed"
    assert again["counts"]["activated"] == 3  # type: ignore[index]
    with harness.session() as session:
        assert len(session.scalars(select(PumpCommand)).all()) == offered


def test_a_tampered_library_is_refused_and_the_pump_keeps_its_library(
    connected: tuple[Harness, SimFleet],
) -> None:
    harness, fleet = connected
    library_id = _release(harness, make_library(hospital_id=HOSPITAL, version=3), tamper=True)
    outcome = _deploy(harness, library_id, [100])
    assert outcome["counts"]["refused"] == 3  # type: ignore[index]
    assert outcome["codes"] and all(code.startswith("signature.") for code in outcome["codes"])  # type: ignore[attr-defined]
    rejected = [e for e in harness.stored().values() if e["type"] == "library.rejected"]
    assert len(rejected) == 3
    assert {fleet.pump(s).library.version for s in fleet.serials()} == {1}  # type: ignore[union-attr]
