"""Signed software packages on the pump: format, verification (forged, wrong model, downgrade against the
running and the pending version, malformed), the slot that activates a verified version, and the pump's
install: activation only when every channel is idle, pump events, and the versions across a restart."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.errors import PumpError, SignatureError
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.library.signing import generate_keypair
from smartpump.pump import EventType, Pump, PumpModel
from smartpump.pump.software import (
    FACTORY_VERSION,
    SignedPackage,
    SoftwareSlot,
    package_payload,
    sign_package,
    verify_package,
    version_key,
)
from tests.unit.pump.library import basic, make_pump, pump_library, start

PRIVATE, PUBLIC = generate_keypair()
TRUST = TrustStore([TrustedKey(key_id="test-key", purpose=KeyPurpose.SOFTWARE, public_pem=PUBLIC)])
MODEL = "lvp"
IMAGE = hashlib.sha256(b"synthetic test image").hexdigest()


def _package(version: str, *, model: str = MODEL, private: bytes = PRIVATE) -> dict[str, str]:
    return sign_package(model, version, IMAGE, private, "test-key").to_document()


def _code(document: object, *, installed: str = "1.0.0", key: bytes = PUBLIC) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_package(document, key, model=MODEL, installed=installed)  # type: ignore[arg-type]
    return caught.value.code


def test_a_package_signed_for_the_model_and_newer_verifies_to_its_version() -> None:
    assert verify_package(_package("1.2.0"), PUBLIC, model=MODEL, installed="1.1.9") == "1.2.0"


def test_the_signature_covers_the_canonical_payload_of_model_version_and_hash() -> None:
    document = _package("2.0")
    payload = package_payload(MODEL, "2.0", IMAGE)
    assert payload == (
        b'{"format":"smartpump.software/1","model":"lvp","sha256":"' + IMAGE.encode() + b'","version":"2.0"}'
    )
    assert SignedPackage.from_document(document).payload == payload


def test_a_package_signed_by_another_key_is_forged() -> None:
    other_private, _ = generate_keypair()
    assert _code(_package("1.2.0", private=other_private)) == "software.forged"


@pytest.mark.parametrize("field, value", [("version", "9.9.9"), ("model", "syringe"), ("sha256", "0" * 64)])
def test_a_package_altered_after_signing_is_forged(field: str, value: str) -> None:
    document = _package("1.2.0") | {field: value}
    assert _code(document) == "software.forged"


def test_a_package_for_another_model_is_refused_after_its_signature_verifies() -> None:
    assert _code(_package("1.2.0", model="syringe")) == "software.wrong_model"


@pytest.mark.parametrize("installed", ["1.2.0", "1.2.0.0", "1.10", "2"])
def test_the_same_or_an_older_version_is_a_downgrade(installed: str) -> None:
    assert _code(_package("1.2.0"), installed=installed) == "software.downgrade"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "not base64!"},
        {"version": "1.x"},
        {"version": "1.2.3.4.5"},
        {"sha256": "ABC"},
        {"model": ""},
        {"format": "smartpump.software/2"},
        {"version": 2},
    ],
)
def test_a_document_that_is_not_a_package_is_malformed(change: dict[str, object]) -> None:
    assert _code(_package("1.2.0") | change) == "software.malformed"


@pytest.mark.parametrize("missing", ["format", "model", "version", "sha256", "key_id", "signature"])
def test_a_document_missing_a_field_is_malformed(missing: str) -> None:
    document = {k: v for k, v in _package("1.2.0").items() if k != missing}
    assert _code(document) == "software.malformed"


def test_an_unusable_key_is_refused_as_a_malformed_key() -> None:
    assert _code(_package("1.2.0"), key=b"not a pem key") == "key.malformed"


def test_a_truncated_signature_is_forged_not_accepted() -> None:
    document = _package("1.2.0")
    document["signature"] = base64.b64encode(base64.b64decode(document["signature"])[:32]).decode()
    assert _code(document) == "software.forged"


def test_signing_refuses_what_no_pump_could_read() -> None:
    with pytest.raises(SignatureError) as caught:
        sign_package(MODEL, "one", IMAGE, PRIVATE, "test-key")
    assert caught.value.code == "software.malformed"


@given(
    st.lists(st.integers(min_value=0, max_value=999_999), min_size=1, max_size=4),
    st.lists(st.integers(min_value=0, max_value=999_999), min_size=1, max_size=4),
)
def test_versions_compare_as_integer_tuples(a: list[int], b: list[int]) -> None:
    left, right = ".".join(map(str, a)), ".".join(map(str, b))
    assert (version_key(left) < version_key(right)) == (tuple(a) < tuple(b))


def test_a_version_that_is_not_dotted_digits_has_no_key() -> None:
    with pytest.raises(PumpError) as caught:
        version_key("1.0-beta")
    assert caught.value.code == "software.version_invalid"


def test_the_slot_keeps_a_verified_package_pending_until_activated() -> None:
    slot = SoftwareSlot()
    assert slot.install(_package("1.1.0"), PUBLIC, MODEL) == "1.1.0"
    assert (slot.installed_version, slot.pending_version) == (FACTORY_VERSION, "1.1.0")
    activation = slot.activate()
    assert (activation.version, activation.previous_version) == ("1.1.0", FACTORY_VERSION)
    assert (slot.installed_version, slot.pending_version) == ("1.1.0", None)


def test_the_slot_refuses_a_package_not_above_the_pending_one_and_keeps_it() -> None:
    slot = SoftwareSlot(installed_version="1.0.0")
    slot.install(_package("1.5.0"), PUBLIC, MODEL)
    for version in ("1.5.0", "1.2.0"):
        with pytest.raises(SignatureError) as caught:
            slot.install(_package(version), PUBLIC, MODEL)
        assert caught.value.code == "software.downgrade"
    assert (slot.installed_version, slot.pending_version) == ("1.0.0", "1.5.0")
    slot.install(_package("1.6.0"), PUBLIC, MODEL)
    assert slot.pending_version == "1.6.0"


def test_the_slot_refuses_a_package_not_above_the_installed_one() -> None:
    slot = SoftwareSlot(installed_version="2.0.0")
    with pytest.raises(SignatureError) as caught:
        slot.install(_package("1.9.9"), PUBLIC, MODEL)
    assert caught.value.code == "software.downgrade"
    assert slot.pending_version is None


def test_a_refused_package_leaves_the_slot_unchanged() -> None:
    slot = SoftwareSlot(installed_version="1.0.0", pending_version="1.1.0")
    forged = _package("3.0.0") | {"version": "4.0.0"}
    with pytest.raises(SignatureError):
        slot.install(forged, PUBLIC, MODEL)
    assert (slot.installed_version, slot.pending_version) == ("1.0.0", "1.1.0")


def test_activating_with_nothing_pending_is_refused() -> None:
    with pytest.raises(PumpError) as caught:
        SoftwareSlot().activate()
    assert caught.value.code == "software.nothing_pending"


@pytest.mark.parametrize(
    "installed, pending", [("latest", None), ("1.0.0", "1.0.0"), ("2.0.0", "1.9.0"), ("1.0.0", "x")]
)
def test_a_slot_cannot_hold_an_invalid_or_backwards_state(installed: str, pending: str | None) -> None:
    with pytest.raises(PumpError) as caught:
        SoftwareSlot(installed_version=installed, pending_version=pending)
    assert caught.value.code == "software.version_invalid"


# --- software on the pump: install, activation only at idle, refusals, restart -------------------------

LVP_MODEL = PumpModel.LVP.value
STATE_KEY = b"k" * 32


def _lvp_package(version: str, *, model: str = LVP_MODEL, private: bytes = PRIVATE) -> dict[str, str]:
    return _package(version, model=model, private=private)


def _versions(pump: Pump) -> tuple[str, str | None]:
    """The pump's installed and pending software versions, read afresh."""
    return pump.software.installed_version, pump.software.pending_version


def _software_events(pump: Pump) -> list[tuple[str, dict[str, object]]]:
    kinds = (EventType.SOFTWARE_INSTALLED, EventType.SOFTWARE_ACTIVATED, EventType.SOFTWARE_REJECTED)
    return [(e.type.value, dict(e.data)) for e in pump.events.since(0) if e.type in kinds]


def test_a_package_installed_on_an_idle_pump_runs_at_once_with_both_events() -> None:
    pump, _ = make_pump()
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    assert _software_events(pump) == [
        ("software.installed", {"version": "1.1.0", "pending": False}),
        ("software.activated", {"version": "1.1.0", "previous_version": FACTORY_VERSION}),
    ]
    assert _versions(pump) == ("1.1.0", None)
    status = pump.status()
    assert (status.software_version, status.software_pending) == ("1.1.0", None)


def test_a_package_waits_while_a_channel_delivers_and_runs_when_the_last_channel_stops() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="50"))
    start(pump, "B", basic("200"))
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    assert _software_events(pump) == [("software.installed", {"version": "1.1.0", "pending": True})]
    status = pump.status()
    assert (status.software_version, status.software_pending) == (FACTORY_VERSION, "1.1.0")
    clock.advance(3600)
    pump.sync()
    assert pump.channel("A").state.value == "kvo"
    pump.stop("A")
    assert pump.events.of_type(EventType.SOFTWARE_ACTIVATED) == []
    assert pump.software.installed_version == FACTORY_VERSION
    pump.stop("B")
    [activated] = pump.events.of_type(EventType.SOFTWARE_ACTIVATED)
    last_stop = pump.events.of_type(EventType.INFUSION_STOPPED)[-1]
    assert last_stop.channel == "B" and activated.seq > last_stop.seq
    assert dict(activated.data) == {"version": "1.1.0", "previous_version": FACTORY_VERSION}
    assert _versions(pump) == ("1.1.0", None)


def test_a_program_not_yet_started_also_holds_the_software_back() -> None:
    pump, _ = make_pump()
    pump.program("C", basic("100"))
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    assert pump.software.pending_version == "1.1.0"
    pump.cancel("C")
    assert _versions(pump) == ("1.1.0", None)


def _other_key_package() -> dict[str, str]:
    other_private, _ = generate_keypair()
    return _lvp_package("2.0.0", private=other_private)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (_other_key_package, "software.forged"),
        (lambda: _lvp_package("2.0.0") | {"version": "3.0.0"}, "software.forged"),
        (lambda: _lvp_package("2.0.0", model=PumpModel.SYRINGE.value), "software.wrong_model"),
        (lambda: _lvp_package("1.2.0"), "software.downgrade"),
        (lambda: _lvp_package("1.1.5"), "software.downgrade"),
        (lambda: _lvp_package("1.0.0"), "software.downgrade"),
        (lambda: {"format": "smartpump.software/1"}, "software.malformed"),
    ],
    ids=[
        "other-key",
        "altered",
        "other-model",
        "same-as-pending",
        "below-pending",
        "below-running",
        "malformed",
    ],
)
def test_a_refused_package_is_logged_and_changes_nothing(
    make: Callable[[], dict[str, str]], code: str
) -> None:
    pump, _ = make_pump()
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    start(pump, "A", basic("100"))
    pump.install_software(_lvp_package("1.2.0"), TRUST)
    before = _software_events(pump)
    with pytest.raises(SignatureError) as refused:
        pump.install_software(make(), TRUST)
    assert refused.value.code == code
    assert _software_events(pump) == [
        *before,
        ("software.rejected", {"code": code, "reason": refused.value.message}),
    ]
    assert _versions(pump) == ("1.1.0", "1.2.0")
    pump.stop("A")
    [_, activated] = pump.events.of_type(EventType.SOFTWARE_ACTIVATED)
    assert dict(activated.data) == {"version": "1.2.0", "previous_version": "1.1.0"}


def test_the_software_a_caller_reads_is_a_copy_that_cannot_bypass_the_idle_gate() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    pump.software.activate()
    assert _versions(pump) == (FACTORY_VERSION, "1.1.0")
    assert pump.events.of_type(EventType.SOFTWARE_ACTIVATED) == []


def test_the_running_and_pending_software_survive_a_sealed_restart() -> None:
    pump, clock = make_pump()
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    start(pump, "A", basic("100"))
    pump.install_software(_lvp_package("1.2.0"), TRUST)
    stored = pump.to_sealed_state(STATE_KEY)
    later = ManualClock(start=clock.now() + timedelta(seconds=60))
    restarted = Pump.power_on(
        stored, STATE_KEY, pump_id="pump-1", model=PumpModel.LVP, clock=later, library=pump_library()
    )
    assert restarted.events.of_type(EventType.PUMP_STATE_RESTORED)
    status = restarted.status()
    assert (status.software_version, status.software_pending) == ("1.1.0", "1.2.0")
    with pytest.raises(SignatureError) as refused:
        restarted.install_software(_lvp_package("1.2.0"), TRUST)
    assert refused.value.code == "software.downgrade"
    restarted.resume("A")
    assert restarted.events.of_type(EventType.SOFTWARE_ACTIVATED) == []
    restarted.stop("A")
    [activated] = restarted.events.of_type(EventType.SOFTWARE_ACTIVATED)
    assert dict(activated.data) == {"version": "1.2.0", "previous_version": "1.1.0"}


def test_a_state_saved_before_pumps_held_software_restarts_on_the_factory_version() -> None:
    pump, clock = make_pump()
    pump.install_software(_lvp_package("1.1.0"), TRUST)
    state = json.loads(json.dumps(pump.to_state()))
    del state["software_version"], state["software_pending"]
    restarted = Pump.from_state(state, clock, pump_library())
    assert (restarted.software.installed_version, restarted.software.pending_version) == (
        FACTORY_VERSION,
        None,
    )


@pytest.mark.parametrize(
    ("installed", "pending"), [("latest", None), ("1.1.0", "1.0.0"), ("1.1.0", "1.1.0"), (110, None)]
)
def test_persisted_software_that_is_not_a_valid_slot_is_refused(installed: object, pending: object) -> None:
    pump, clock = make_pump()
    state = json.loads(json.dumps(pump.to_state()))
    state["software_version"], state["software_pending"] = installed, pending
    with pytest.raises(PumpError) as refused:
        Pump.from_state(state, clock, pump_library())
    assert refused.value.code == "pump.state_invalid"
