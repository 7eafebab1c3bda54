"""Bedside verification, duplicate-therapy detection and signed library installation on the pump."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from smartpump.errors import PumpError, RollbackError, SignatureError
from smartpump.library.formats.json_format import canonical_bytes
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.library.model import DrugLibrary, Route
from smartpump.library.signing import SignedLibrary, generate_keypair, sign
from smartpump.pump import AlarmId, BedsideScan, EventType, Pump
from smartpump.pump.installation import library_sha256
from smartpump.units import Concentration
from tests.unit.pump.library import dopamine, make_pump, pump_library, start

GOOD = BedsideScan(
    patient_id="MRN-1",
    drug="dopamine",
    concentration=Concentration.parse("400 mg/250 mL"),
    route=Route.IV,
    line_label="central 1",
)


def _verifying_pump() -> Pump:
    pump, _ = make_pump(require_verification=True)
    pump.set_patient("MRN-1")
    pump.install_set("A", set_type="LVP primary", lot="L1", line_label="central 1")
    pump.program("A", dopamine("5"))
    pump.confirm("A")
    return pump


def test_a_full_match_passes_and_the_start_proceeds() -> None:
    pump = _verifying_pump()
    assert pump.verify_bedside("A", GOOD) == ()
    pump.start("A")
    assert pump.events.of_type(EventType.VERIFICATION_PASSED)[0].data["patient_id"] == "MRN-1"
    assert pump.events.of_type(EventType.INFUSION_STARTED)


@pytest.mark.parametrize(
    ("scan", "reason"),
    [
        (replace(GOOD, patient_id="MRN-2"), "patient.mismatch"),
        (replace(GOOD, drug="heparin"), "drug.mismatch"),
        (replace(GOOD, concentration=Concentration.parse("800 mg/250 mL")), "concentration.mismatch"),
        (replace(GOOD, concentration=None), "concentration.missing"),
        (replace(GOOD, route=Route.EPIDURAL), "route.mismatch"),
        (replace(GOOD, line_label="peripheral 2"), "line.mismatch"),
    ],
)
def test_each_mismatch_refuses_the_start_with_its_reason(scan: BedsideScan, reason: str) -> None:
    pump = _verifying_pump()
    reasons = pump.verify_bedside("A", scan)
    assert len(reasons) == 1 and reasons[0].startswith(reason)
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.not_verified" and reason in refused.value.message
    assert pump.events.of_type(EventType.VERIFICATION_FAILED)[0].data["reasons"] == list(reasons)
    assert pump.events.of_type(EventType.START_REFUSED)[-1].data["code"] == "pump.not_verified"


def test_a_pump_without_a_patient_fails_verification() -> None:
    pump, _ = make_pump(require_verification=True)
    pump.program("A", dopamine("5"))
    reasons = pump.verify_bedside("A", GOOD)
    assert reasons[0].startswith("patient.not_associated")


def test_unverified_start_is_refused_when_verification_is_required() -> None:
    pump = _verifying_pump()
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.not_verified"


def test_same_drug_on_two_channels_raises_a_duplicate_therapy_alert() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    assert not pump.events.of_type(EventType.DUPLICATE_THERAPY_DETECTED)
    start(pump, "B", dopamine("6"))
    detected = pump.events.of_type(EventType.DUPLICATE_THERAPY_DETECTED)[0]
    assert detected.channel == "B" and detected.data["channels"] == ["A", "B"]
    assert pump.alarms.is_active(AlarmId.DUPLICATE_THERAPY, "B")


def test_stopping_the_duplicate_clears_its_alert() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    start(pump, "B", dopamine("6"))
    pump.stop("B")
    assert not pump.alarms.is_active(AlarmId.DUPLICATE_THERAPY, "B")


# ----------------------------------------------------------------- library installation

KEYS = generate_keypair()
OTHER_KEYS = generate_keypair()
TRUST = TrustStore([TrustedKey(key_id="pharmacy-2026", purpose=KeyPurpose.LIBRARY, public_pem=KEYS[1])])


def _signed(library: DrugLibrary, private: bytes = KEYS[0]) -> SignedLibrary:
    return sign(library, private, "pharmacy-2026")


def test_a_verified_newer_library_installs_and_activates_on_an_idle_pump() -> None:
    pump, _ = make_pump()
    pump.install_library(_signed(pump_library(version=2)), TRUST, hospital_id="hospital-example")
    assert pump.library is not None and pump.library.version == 2
    assert pump.status().library_version == 2
    activated = pump.events.of_type(EventType.LIBRARY_ACTIVATED)[0]
    assert (activated.data["version"], activated.data["previous_version"]) == (2, 1)


def test_activation_waits_until_every_channel_is_idle() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    pump.install_library(_signed(pump_library(version=2)), TRUST)
    assert pump.events.of_type(EventType.LIBRARY_INSTALLED)[0].data["pending"] is True
    status = pump.status()
    assert (status.library_version, status.library_pending) == (1, 2)
    pump.stop("A")
    assert pump.status().library_version == 2
    assert pump.care_area is not None and pump.library is not None
    assert pump.care_area == pump.library.care_area("icu")


def _refused(pump: Pump, signed: SignedLibrary, key: TrustStore, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as refused:
        pump.install_library(signed, key, hospital_id="hospital-example")
    assert getattr(refused.value, "code", None) == code
    rejected = pump.events.of_type(EventType.LIBRARY_REJECTED)[-1]
    assert rejected.data["code"] == code
    assert pump.library is not None and pump.library.version == 1 and pump.pending_library is None


def test_a_tampered_library_is_refused_and_the_previous_one_stays() -> None:
    pump, _ = make_pump()
    signed = _signed(pump_library(version=2))
    tampered = replace(signed, payload=signed.payload.replace(b'"hard_max":30', b'"hard_max":300'))
    assert tampered.payload != signed.payload
    _refused(pump, tampered, TRUST, SignatureError, "signature.invalid")


def test_a_library_signed_with_a_foreign_key_is_refused() -> None:
    pump, _ = make_pump()
    _refused(
        pump, _signed(pump_library(version=2), OTHER_KEYS[0]), TRUST, SignatureError, "signature.invalid"
    )


def test_a_library_for_another_hospital_is_refused() -> None:
    pump, _ = make_pump()
    foreign = replace(pump_library(version=2), hospital_id="hospital-elsewhere")
    _refused(pump, _signed(foreign), TRUST, SignatureError, "signature.wrong_hospital")


def test_a_rolled_back_library_is_refused() -> None:
    pump, _ = make_pump()
    _refused(pump, _signed(pump_library(version=1)), TRUST, RollbackError, "signature.rollback")


def test_the_pump_reports_its_library_by_content_hash_in_start_install_activation_and_status() -> None:
    pump, _ = make_pump()
    factory = pump.library
    assert factory is not None
    factory_hash = hashlib.sha256(canonical_bytes(factory)).hexdigest()
    assert pump.events.of_type(EventType.PUMP_STARTED)[0].data["library_sha256"] == factory_hash
    assert pump.status().library_sha256 == factory_hash
    signed = _signed(pump_library(version=2))
    pump.install_library(signed, TRUST, hospital_id="hospital-example")
    released_hash = hashlib.sha256(signed.payload).hexdigest()
    assert released_hash != factory_hash
    installed = pump.events.of_type(EventType.LIBRARY_INSTALLED)[0].data
    assert (installed["sha256"], installed["key_id"]) == (released_hash, "pharmacy-2026")
    assert pump.events.of_type(EventType.LIBRARY_ACTIVATED)[0].data["sha256"] == released_hash
    assert pump.status().library_sha256 == released_hash
    assert pump.status().to_dict()["library_sha256"] == released_hash


def test_two_libraries_with_one_version_number_have_different_hashes() -> None:
    first = pump_library(version=1)
    corrected = replace(first, name=f"{first.name} (corrected)")
    assert library_sha256(first) != library_sha256(corrected)
    assert library_sha256(corrected) == hashlib.sha256(canonical_bytes(corrected)).hexdigest()
