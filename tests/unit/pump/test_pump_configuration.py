"""Pump service configuration (commercial req. 55, SEC-CFG-01..05): schema, signature, the pump's refusals,
activation only at idle, what each setting changes, and persistence across a restart."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.ders.program import Alert, InfusionProgram, ProgramKind, VerdictLevel
from smartpump.errors import ConfigurationError, PumpError, RollbackError, SignatureError
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.library.model import DeviceDefaults, DrugLibrary
from smartpump.library.signing import generate_keypair, sign_payload
from smartpump.pump import EventType, Pump, PumpModel, Step, capabilities
from smartpump.pump.configuration import (
    ConfigurationSettings,
    PumpConfiguration,
    SignedConfiguration,
    canonical_bytes,
    content_sha256,
    factory_settings,
    sign_configuration,
    verify_configuration,
)
from smartpump.transport.commands import (
    INSTALL_CONFIGURATION,
    INSTALL_LIBRARY,
    Command,
    install_configuration_args,
    signed_configuration_of,
)
from tests.factories import HOSPITAL_ID
from tests.unit.pump.delivered import delivered_library, vancomycin
from tests.unit.pump.library import WEIGHT, basic, make_pump, morphine_pca, pump_library, start

D = Decimal
PRIVATE, PUBLIC = generate_keypair()
KEY_ID = "biomed-key"
TRUST = TrustStore([TrustedKey(key_id=KEY_ID, purpose=KeyPurpose.CONFIGURATION, public_pem=PUBLIC)])
LVP = capabilities(PumpModel.LVP)
NOW = ManualClock().now()


def document(*, version: int = 1, model: str = "lvp-4", **settings: Any) -> dict[str, Any]:
    """A configuration document for the test hospital with the given settings (others: factory)."""
    return {
        "format": "smartpump.pump-configuration/1",
        "hospital_id": HOSPITAL_ID,
        "model": model,
        "version": version,
        "name": f"ICU pumps v{version}",
        "settings": settings,
    }


def configuration(*, version: int = 1, model: str = "lvp-4", **settings: Any) -> PumpConfiguration:
    """A validated configuration."""
    return PumpConfiguration.from_dict(document(version=version, model=model, **settings))


def signed(*, version: int = 1, model: str = "lvp-4", **settings: Any) -> SignedConfiguration:
    """A configuration signed with the trusted key."""
    return sign_configuration(configuration(version=version, model=model, **settings), PRIVATE, KEY_ID)


def problems(raw: object) -> tuple[tuple[str, str], ...]:
    """The problems ``from_dict`` reports for a document."""
    with pytest.raises(ConfigurationError) as refused:
        PumpConfiguration.from_dict(raw)
    assert refused.value.code == "configuration.invalid"
    return refused.value.problems


def plain_library() -> DrugLibrary:
    """The test library with a care area that sets no KVO rate and no set-change interval."""
    library = pump_library()
    (icu,) = library.care_areas
    return replace(library, care_areas=(replace(icu, device=DeviceDefaults()),))


# --- schema ------------------------------------------------------------------------------------------


def test_settings_left_out_take_the_factory_values_of_the_model() -> None:
    syringe = configuration(model="syringe-1")
    assert syringe.settings == factory_settings(PumpModel.SYRINGE)
    assert syringe.settings == ConfigurationSettings(
        max_rate_ml_per_h=None,
        require_verification=False,
        near_end_alert_min=5,
        kvo_rate_ml_per_h=D("0.1"),
        set_change_interval_h=96,
    )


def test_decimals_are_read_exactly_and_written_as_text() -> None:
    config = configuration(max_rate_ml_per_h=D("99.9"), kvo_rate_ml_per_h="2.5")
    assert config.settings.max_rate_ml_per_h == D("99.9")
    assert config.to_dict()["settings"]["max_rate_ml_per_h"] == "99.9"
    assert config.to_dict()["settings"]["kvo_rate_ml_per_h"] == "2.5"


@pytest.mark.parametrize(
    ("setting", "value", "field", "reason"),
    [
        ("max_rate_ml_per_h", "1000", "settings.max_rate_ml_per_h", "above the lvp-4 maximum of 999 mL/h"),
        ("max_rate_ml_per_h", "0", "settings.max_rate_ml_per_h", "below the lvp-4 minimum of 0.1 mL/h"),
        ("max_rate_ml_per_h", "-5", "settings.max_rate_ml_per_h", "below the lvp-4 minimum"),
        ("max_rate_ml_per_h", "150.5", "settings.max_rate_ml_per_h", "not a multiple of the 1 mL/h"),
        ("max_rate_ml_per_h", 2.5, "settings.max_rate_ml_per_h", "decimal number written as text"),
        ("max_rate_ml_per_h", True, "settings.max_rate_ml_per_h", "decimal number written as text"),
        ("max_rate_ml_per_h", "fast", "settings.max_rate_ml_per_h", "not a number"),
        ("max_rate_ml_per_h", "NaN", "settings.max_rate_ml_per_h", "finite"),
        ("require_verification", "yes", "settings.require_verification", "true or false"),
        ("require_verification", None, "settings.require_verification", "true or false"),
        ("near_end_alert_min", 0, "settings.near_end_alert_min", "within 1-30"),
        ("near_end_alert_min", 31, "settings.near_end_alert_min", "within 1-30"),
        ("near_end_alert_min", "5", "settings.near_end_alert_min", "whole number"),
        ("near_end_alert_min", 5.0, "settings.near_end_alert_min", "whole number"),
        ("kvo_rate_ml_per_h", "21", "settings.kvo_rate_ml_per_h", "above the lvp-4 maximum of 20 mL/h"),
        ("kvo_rate_ml_per_h", "0.05", "settings.kvo_rate_ml_per_h", "below the lvp-4 minimum"),
        ("set_change_interval_h", 169, "settings.set_change_interval_h", "within 1-168"),
        ("set_change_interval_h", 0, "settings.set_change_interval_h", "within 1-168"),
        ("audio_pause_s", 300, "settings.audio_pause_s", "unknown setting"),
        ("alarm_priorities", {"door.open": "low"}, "settings.alarm_priorities", "unknown setting"),
    ],
)
def test_each_bad_setting_is_one_problem_naming_its_field(
    setting: str, value: object, field: str, reason: str
) -> None:
    settings: dict[str, Any] = {setting: value}
    [(found_field, found_reason)] = problems(document(**settings))
    assert found_field == field
    assert reason in found_reason


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"extra": 1}, "extra", "unknown field"),
        ({"name": None}, "name", "non-empty text"),
        ({"name": "  "}, "name", "non-empty text"),
        ({"hospital_id": ""}, "hospital_id", "non-empty text"),
        ({"version": 0}, "version", "within 1-"),
        ({"version": "2"}, "version", "whole number"),
        ({"model": "lvp-9"}, "model", "unknown pump model 'lvp-9'"),
        ({"format": "smartpump.pump-configuration/2"}, "format", "must be"),
        ({"settings": []}, "settings", "must be an object"),
    ],
)
def test_each_bad_document_field_is_one_problem_naming_it(
    change: dict[str, object], field: str, reason: str
) -> None:
    [(found_field, found_reason)] = problems({**document(), **change})
    assert found_field == field
    assert reason in found_reason


def test_a_missing_field_is_required_and_every_problem_is_reported_at_once() -> None:
    raw = document(max_rate_ml_per_h="1200", near_end_alert_min=0)
    del raw["name"]
    found = problems(raw)
    assert [field for field, _ in found] == [
        "name",
        "settings.max_rate_ml_per_h",
        "settings.near_end_alert_min",
    ]
    with pytest.raises(ConfigurationError) as refused:
        PumpConfiguration.from_dict(raw)
    assert "name: required" in refused.value.message
    assert "settings.near_end_alert_min: must be within 1-30, got 0" in refused.value.message


def test_a_document_that_is_not_an_object_is_refused() -> None:
    assert problems(["not", "an", "object"]) == (("configuration", "must be an object"),)


def _settings_for(model: PumpModel) -> st.SearchStrategy[dict[str, Any]]:
    caps = capabilities(model)
    rates = st.one_of(
        st.integers(1, 99).map(lambda n: D(n) / 10),
        st.integers(10, int(caps.max_rate_ml_per_h)).map(D),
    ).filter(lambda r: caps.min_rate_ml_per_h <= r <= caps.max_rate_ml_per_h)
    return st.fixed_dictionaries(
        {},
        optional={
            "max_rate_ml_per_h": st.one_of(st.none(), rates.map(str)),
            "require_verification": st.booleans(),
            "near_end_alert_min": st.integers(1, 30),
            "kvo_rate_ml_per_h": rates.filter(lambda r: r <= caps.max_kvo_ml_per_h).map(str),
            "set_change_interval_h": st.integers(1, 168),
        },
    )


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    model=st.sampled_from([PumpModel.LVP, PumpModel.PCA, PumpModel.AMBULATORY]),
    version=st.integers(1, 2**31 - 1),
)
def test_a_valid_document_round_trips_through_its_canonical_json(
    data: st.DataObject, model: PumpModel, version: int
) -> None:
    raw = document(version=version, model=model.value, **data.draw(_settings_for(model)))
    config = PumpConfiguration.from_dict(raw)
    again = PumpConfiguration.from_dict(json.loads(canonical_bytes(config)))
    assert again == config
    assert canonical_bytes(again) == canonical_bytes(config)
    assert content_sha256(again) == content_sha256(config)


# --- signature and the pump's refusals (SEC-CFG-01, CVE-2021-33882/33885) --------------------------


def test_a_signed_configuration_verifies_and_activates_at_once_on_an_idle_pump() -> None:
    pump, _ = make_pump()
    document_json = signed(version=3, max_rate_ml_per_h="500").to_json()
    pump.install_configuration(SignedConfiguration.from_json(document_json), TRUST, hospital_id=HOSPITAL_ID)
    [installed] = pump.events.of_type(EventType.CONFIGURATION_INSTALLED)
    [activated] = pump.events.of_type(EventType.CONFIGURATION_ACTIVATED)
    assert dict(installed.data) == {"version": 3, "pending": False}
    assert dict(activated.data) == {
        "version": 3,
        "previous_version": 0,
        "sha256": content_sha256(configuration(version=3, max_rate_ml_per_h="500")),
    }
    assert pump.status().configuration_version == 3
    assert pump.settings.max_rate_ml_per_h == D(500)


def _tampered(signed_config: SignedConfiguration) -> SignedConfiguration:
    payload = signed_config.payload.replace(b'"max_rate_ml_per_h":"500"', b'"max_rate_ml_per_h":"999"')
    assert payload != signed_config.payload
    return replace(signed_config, payload=payload)


def _signed_over(payload: bytes) -> SignedConfiguration:
    """A valid signature over arbitrary bytes (what a careless signer would produce)."""
    return replace(signed(version=5), payload=payload, signature=sign_payload(payload, PRIVATE, KEY_ID))


def _foreign_key() -> SignedConfiguration:
    other_private, _ = generate_keypair()
    return sign_configuration(configuration(version=5), other_private, KEY_ID)


def _unknown_key() -> SignedConfiguration:
    other_private, _ = generate_keypair()
    return sign_configuration(configuration(version=5), other_private, "forger")


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (_foreign_key, "signature.invalid"),
        (_unknown_key, "signature.unknown_key"),
        (lambda: _tampered(signed(version=5, max_rate_ml_per_h="500")), "signature.invalid"),
        (lambda: replace(signed(version=5), algorithm="RSA"), "signature.algorithm"),
        (
            lambda: _signed_over(json.dumps(configuration(version=5).to_dict(), indent=2).encode()),
            "signature.payload",
        ),
        (
            lambda: _signed_over(json.dumps(document(version=5, kvo_rate_ml_per_h="50")).encode()),
            "signature.payload",
        ),
        (lambda: _signed_over(b"\xff not json"), "signature.payload"),
        (lambda: signed(version=5, model="syringe-1"), "signature.wrong_model"),
        (
            lambda: sign_configuration(
                replace(configuration(version=5), hospital_id="other-hospital"), PRIVATE, KEY_ID
            ),
            "signature.wrong_hospital",
        ),
        (lambda: signed(version=2), "signature.rollback"),
        (lambda: signed(version=3), "signature.rollback"),
    ],
    ids=[
        "forged",
        "unknown-key",
        "tampered",
        "algorithm",
        "non-canonical",
        "invalid-settings",
        "not-json",
        "other-model",
        "other-hospital",
        "older",
        "equal",
    ],
)
def test_a_refused_configuration_is_logged_and_the_pump_keeps_its_own(make: Any, code: str) -> None:
    pump, _ = make_pump()
    pump.install_configuration(signed(version=3, max_rate_ml_per_h="500"), TRUST, hospital_id=HOSPITAL_ID)
    with pytest.raises(SignatureError) as refused:
        pump.install_configuration(make(), TRUST, hospital_id=HOSPITAL_ID)
    assert refused.value.code == code
    assert isinstance(refused.value, RollbackError) == (code == "signature.rollback")
    [rejected] = pump.events.of_type(EventType.CONFIGURATION_REJECTED)
    assert rejected.data["code"] == code and rejected.data["reason"] == refused.value.message
    assert pump.configuration_version == 3 and pump.pending_configuration is None
    assert pump.settings.max_rate_ml_per_h == D(500)


def test_verification_alone_checks_the_version_against_the_held_one() -> None:
    document_v4 = signed(version=4)
    assert verify_configuration(document_v4, PUBLIC, model=PumpModel.LVP, held_version=3).version == 4
    with pytest.raises(RollbackError):
        verify_configuration(document_v4, PUBLIC, model=PumpModel.LVP, held_version=4)


def test_a_signed_document_travels_in_a_command_byte_for_byte() -> None:
    original = signed(version=2, require_verification=True)
    command = Command(
        pump_id="pump-1",
        command=INSTALL_CONFIGURATION,
        args=install_configuration_args(original),
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        nonce="n",
        counter=1,
    )
    assert signed_configuration_of(command) == original
    with pytest.raises(SignatureError) as wrong:
        signed_configuration_of(replace(command, command=INSTALL_LIBRARY))
    assert wrong.value.code == "command.malformed"
    with pytest.raises(SignatureError) as malformed:
        SignedConfiguration.from_json(original.to_json().replace("signed-configuration", "signed-library"))
    assert malformed.value.code == "signature.malformed"


# --- activation only at idle (SEC-CFG-02) --------------------------------------------------------------


def test_a_configuration_never_changes_while_a_channel_delivers() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("400", vtbi="50"))
    pump.install_configuration(signed(version=1, max_rate_ml_per_h="300"), TRUST, hospital_id=HOSPITAL_ID)
    [installed] = pump.events.of_type(EventType.CONFIGURATION_INSTALLED)
    assert installed.data["pending"] is True
    assert pump.status().configuration_version == 0
    assert pump.status().configuration_pending == 1
    pump.program("A", basic("450", vtbi="50"))
    pump.confirm("A")
    assert pump.channel("A").flow_ml_per_h == D(450)
    clock.advance(3600)
    pump.sync()
    assert pump.channel("A").state.value == "kvo"
    assert pump.events.of_type(EventType.CONFIGURATION_ACTIVATED) == []
    pump.stop("A")
    [activated] = pump.events.of_type(EventType.CONFIGURATION_ACTIVATED)
    assert activated.seq > pump.events.of_type(EventType.INFUSION_STOPPED)[0].seq
    assert pump.configuration_version == 1 and pump.pending_configuration is None
    assert _capped(pump, "A", basic("400")).limit == D(300)


def test_a_programmed_channel_that_has_not_started_also_holds_the_configuration_back() -> None:
    pump, _ = make_pump()
    pump.program("B", basic("100"))
    pump.install_configuration(signed(version=1), TRUST, hospital_id=HOSPITAL_ID)
    assert pump.configuration_version == 0
    pump.cancel("B")
    assert pump.configuration_version == 1


def test_a_newer_configuration_replaces_a_pending_one_and_the_pending_one_counts_as_held() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.install_configuration(signed(version=2), TRUST, hospital_id=HOSPITAL_ID)
    with pytest.raises(RollbackError):
        pump.install_configuration(signed(version=2), TRUST, hospital_id=HOSPITAL_ID)
    pump.install_configuration(signed(version=3, near_end_alert_min=10), TRUST, hospital_id=HOSPITAL_ID)
    pump.stop("A")
    [activated] = pump.events.of_type(EventType.CONFIGURATION_ACTIVATED)
    assert (activated.data["version"], activated.data["previous_version"]) == (3, 0)


# --- what each setting changes ------------------------------------------------------------------------


def _capped_pump(
    cap: str, model: PumpModel = PumpModel.LVP, library: DrugLibrary | None = None
) -> tuple[Pump, ManualClock]:
    clock = ManualClock()
    config = configuration(model=model.value, max_rate_ml_per_h=cap)
    pump = Pump("pump-1", model, clock, library=library or pump_library(), configuration=config)
    pump.select_care_area("icu")
    return pump, clock


def _refused(pump: Pump, cid: str, program: InfusionProgram, **kwargs: Any) -> PumpError:
    with pytest.raises(PumpError) as refused:
        pump.program(cid, program, **kwargs)
    return refused.value


def _capped(pump: Pump, cid: str, program: InfusionProgram, **kwargs: Any) -> Alert:
    """Program above the rate cap: a hard verdict whose cap alert is returned, the start refused, the
    program cancelled (the channel is free again)."""
    verdict = pump.program(cid, program, **kwargs)
    assert verdict.level is VerdictLevel.HARD
    [alert] = [a for a in verdict.alerts if a.rule == "ders.device.rate_cap.hard_max"]
    with pytest.raises(PumpError) as refused:
        pump.confirm(cid)
    assert refused.value.code == "pump.hard_stop"
    assert "ders.device.rate_cap.hard_max" in refused.value.message
    pump.cancel(cid)
    return alert


def test_the_rate_cap_accepts_exactly_the_cap_and_refuses_one_step_above() -> None:
    pump, _ = _capped_pump("500")
    assert pump.program("A", basic("500")).level is VerdictLevel.OK
    alert = _capped(pump, "B", basic("501"))
    assert (alert.value, alert.limit, alert.unit) == (D(501), D(500), "mL/h")
    checked = pump.events.of_type(EventType.PROGRAM_CHECKED)[-1]
    assert (checked.channel, checked.data["verdict"]) == ("B", "hard")
    alerts = checked.data["alerts"]
    assert isinstance(alerts, list)
    assert "ders.device.rate_cap.hard_max" in [a["rule"] for a in alerts]


def test_the_rate_cap_refuses_a_titration_a_step_a_bolus_and_a_piggyback_above_it() -> None:
    pump, _ = _capped_pump("500", library=delivered_library())
    start(pump, "A", basic("400", vtbi="500"))
    assert _capped(pump, "A", basic("550", vtbi="500")).value == D(550)
    assert pump.channel("A").flow_ml_per_h == D(400)
    steps = (Step(rate_ml_per_h=D(300), volume_ml=D(50)), Step(rate_ml_per_h=D(600), volume_ml=D(50)))
    assert _capped(pump, "B", basic("300"), steps=steps).value == D(600)
    heparin = InfusionProgram(entry_id="icu-heparin", dose=D(18), patient=WEIGHT, vtbi_ml=D(250))
    start(pump, "C", heparin)
    bolus = InfusionProgram(
        entry_id="icu-heparin", kind=ProgramKind.BOLUS, dose=D(80), patient=WEIGHT, duration_min=D(5)
    )
    with pytest.raises(PumpError) as bolus_refused:
        pump.bolus("C", bolus)
    assert bolus_refused.value.code == "pump.hard_stop" and "672" in bolus_refused.value.message
    assert "ders.device.rate_cap.hard_max" in bolus_refused.value.message
    piggyback = vancomycin("1200", minutes="30")  # 300 mL in 30 min: 600 mL/h
    with pytest.raises(PumpError) as piggyback_refused:
        pump.secondary("A", piggyback)
    assert piggyback_refused.value.code == "pump.hard_stop"
    assert "ders.device.rate_cap.hard_max" in piggyback_refused.value.message
    assert pump.events.of_type(EventType.BOLUS_STARTED) == []
    assert pump.events.of_type(EventType.SECONDARY_STARTED) == []


def test_the_rate_cap_applies_to_the_pca_dose_delivery_rate() -> None:
    pump, _ = _capped_pump("50", PumpModel.PCA)
    assert _refused(pump, "A", morphine_pca()).code == "pump.rate_cap"
    pump, _ = _capped_pump("60", PumpModel.PCA)
    start(pump, "A", morphine_pca())
    assert pump.pca_demand("A")


@settings(max_examples=60, deadline=None)
@given(
    cap=st.one_of(st.integers(1, 999).map(lambda n: D(n) / 10), st.integers(100, 998).map(D)),
)
def test_any_cap_is_inside_at_the_cap_and_outside_one_resolution_step_above(cap: Decimal) -> None:
    pump, _ = _capped_pump(str(cap))
    assert pump.program("A", basic(str(cap))).level is not VerdictLevel.HARD
    above = cap + LVP.resolution_at(cap)
    assert _capped(pump, "B", basic(str(above))).value == above


def test_require_verification_is_set_by_the_configuration() -> None:
    pump, _ = make_pump()
    pump.install_configuration(signed(version=1, require_verification=True), TRUST)
    pump.program("A", basic("100"))
    pump.confirm("A")
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.not_verified"
    strict, _ = make_pump(require_verification=True)
    strict.install_configuration(signed(version=1, require_verification=False), TRUST)
    start(strict, "A", basic("100"))
    assert strict.events.of_type(EventType.INFUSION_STARTED)


@pytest.mark.parametrize(("minutes", "lead_s"), [(None, 300), (10, 600), (1, 60)])
def test_the_near_end_alert_comes_the_configured_minutes_before_the_end(
    minutes: int | None, lead_s: int
) -> None:
    pump, clock = make_pump()
    if minutes is not None:
        pump.install_configuration(signed(version=1, near_end_alert_min=minutes), TRUST)
    start(pump, "A", basic("60", vtbi="20"))
    clock.advance(3600)
    pump.sync()
    near = pump.events.of_type(EventType.NEAR_END_REACHED)[0]
    done = pump.events.of_type(EventType.INFUSION_COMPLETED)[0]
    assert (done.ts - near.ts).total_seconds() == lead_s


def _pump_on(library: DrugLibrary) -> tuple[Pump, ManualClock]:
    clock = ManualClock()
    pump = Pump("pump-1", PumpModel.LVP, clock, library=library)
    pump.select_care_area("icu")
    return pump, clock


def test_the_kvo_rate_and_set_change_interval_apply_where_the_care_area_sets_none() -> None:
    settings_v1: dict[str, Any] = {"kvo_rate_ml_per_h": "5", "set_change_interval_h": 72}
    plain, clock = _pump_on(plain_library())
    assert plain.install_set("A", set_type="LVP primary", lot="L1").change_due_h == 96
    plain.install_configuration(signed(version=1, **settings_v1), TRUST)
    assert plain.install_set("A", set_type="LVP primary", lot="L2").change_due_h == 72
    start(plain, "A", basic("120", vtbi="10"))
    clock.advance(600)
    plain.sync()
    assert plain.events.of_type(EventType.KVO_STARTED)[0].data["rate_ml_per_h"] == D(5)
    icu, clock = make_pump()
    icu.install_configuration(signed(version=1, **settings_v1), TRUST)
    assert icu.install_set("A", set_type="LVP primary", lot="L1").change_due_h == 96
    start(icu, "A", basic("120", vtbi="10"))
    clock.advance(600)
    icu.sync()
    assert icu.events.of_type(EventType.KVO_STARTED)[0].data["rate_ml_per_h"] == D(1)


def test_a_pump_refuses_a_configuration_of_another_model_at_construction() -> None:
    with pytest.raises(PumpError) as refused:
        Pump("pump-1", PumpModel.SYRINGE, ManualClock(), configuration=configuration())
    assert refused.value.code == "pump.configuration_model"


# --- persistence across a restart (SAF-PWR-02, SAF-STO-01) ----------------------------------------------


def _power_cycle(pump: Pump, clock: ManualClock) -> tuple[Pump, ManualClock]:
    state = json.loads(json.dumps(pump.to_state()))
    new_clock = ManualClock(start=clock.now() + timedelta(seconds=60))
    return Pump.from_state(state, new_clock, pump_library()), new_clock


def test_the_active_and_pending_configurations_survive_a_restart() -> None:
    pump, clock = make_pump()
    pump.install_configuration(signed(version=2, max_rate_ml_per_h="500"), TRUST)
    start(pump, "A", basic("400"))
    pump.install_configuration(signed(version=3, max_rate_ml_per_h="450"), TRUST)
    restarted, _ = _power_cycle(pump, clock)
    assert restarted.configuration == configuration(version=2, max_rate_ml_per_h="500")
    assert restarted.pending_configuration == configuration(version=3, max_rate_ml_per_h="450")
    assert _capped(restarted, "B", basic("501")).limit == D(500)
    with pytest.raises(RollbackError):
        restarted.install_configuration(signed(version=3), TRUST)
    restarted.resume("A")
    restarted.stop("A")
    assert restarted.configuration_version == 3
    assert _capped(restarted, "B", basic("460")).limit == D(450)


def test_an_idle_restart_activates_a_pending_configuration_and_keeps_the_settings() -> None:
    pump, clock = make_pump()
    pump.program("A", basic("100"))
    pump.install_configuration(signed(version=4, near_end_alert_min=12, require_verification=True), TRUST)
    restarted, _ = _power_cycle(pump, clock)
    assert restarted.configuration_version == 4
    assert restarted.require_verification is True
    assert restarted.channel("A").near_end_s == D(720)
    assert restarted.events.of_type(EventType.CONFIGURATION_ACTIVATED)[0].data["previous_version"] == 0


def test_a_state_saved_before_configurations_existed_restarts_on_the_factory_default() -> None:
    pump, clock = make_pump()
    state = json.loads(json.dumps(pump.to_state()))
    del state["configuration"], state["pending_configuration"]
    restarted = Pump.from_state(state, clock, pump_library())
    assert restarted.configuration_version == 0 and restarted.settings == factory_settings(PumpModel.LVP)


def test_an_edited_configuration_in_storage_fails_the_seal_and_the_pump_falls_back_to_the_default() -> None:
    key = b"k" * 32
    pump, clock = make_pump()
    pump.install_configuration(signed(version=2, max_rate_ml_per_h="500"), TRUST)
    sealed = pump.to_sealed_state(key)
    assert b'"max_rate_ml_per_h":"500"' in sealed
    edited = sealed.replace(b'"max_rate_ml_per_h":"500"', b'"max_rate_ml_per_h":"999"')
    kept = Pump.power_on(
        sealed, key, pump_id="pump-1", model=PumpModel.LVP, clock=clock, library=pump_library()
    )
    assert kept.configuration_version == 2
    rejected = Pump.power_on(
        edited, key, pump_id="pump-1", model=PumpModel.LVP, clock=clock, library=pump_library()
    )
    assert rejected.configuration_version == 0
    assert rejected.events.of_type(EventType.PUMP_STATE_REJECTED)[0].data["code"] == "pump.state_integrity"


def test_an_invalid_configuration_in_a_persisted_state_is_refused() -> None:
    pump, clock = make_pump()
    pump.install_configuration(signed(version=2), TRUST)
    state = json.loads(json.dumps(pump.to_state()))
    state["configuration"]["settings"]["max_rate_ml_per_h"] = "5000"
    with pytest.raises(PumpError) as refused:
        Pump.from_state(state, clock, pump_library())
    assert refused.value.code == "pump.state_invalid"


def test_the_signed_document_is_base64_of_the_canonical_bytes() -> None:
    config = configuration(version=7, max_rate_ml_per_h="250")
    text = sign_configuration(config, PRIVATE, KEY_ID).to_json()
    body = json.loads(text)
    assert body["format"] == "smartpump.signed-configuration/1" and body["key_id"] == KEY_ID
    assert base64.b64decode(body["payload"]) == canonical_bytes(config)
