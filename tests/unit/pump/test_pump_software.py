"""Signed software packages on the pump: format, verification (forged, wrong model, downgrade against the
running and the pending version, malformed) and the slot that activates a verified version."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.errors import PumpError, SignatureError
from smartpump.library.signing import generate_keypair
from smartpump.pump.software import (
    FACTORY_VERSION,
    SignedPackage,
    SoftwareSlot,
    package_payload,
    sign_package,
    verify_package,
    version_key,
)

PRIVATE, PUBLIC = generate_keypair()
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


def test_an_unusable_key_is_refused_as_a_bad_key() -> None:
    assert _code(_package("1.2.0"), key=b"not a pem key") == "signature.bad_key"


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
