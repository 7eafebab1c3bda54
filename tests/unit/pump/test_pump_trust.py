"""The pump's own trust list: provisioned keys only at first (a library signed by a rotated-in key is
refused), a signed trust list installs at once, even mid-infusion, and logs ``trust.installed``; a refused
one logs ``trust.rejected`` and changes nothing; the installed list survives a sealed restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartpump.clock import ManualClock
from smartpump.errors import SignatureError
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore, generate_keypair
from smartpump.library.signing import sign
from smartpump.library.trust_list import ListedKey, ListedStatus, TrustList, sign_trust_list
from smartpump.pump.capabilities import PumpModel
from smartpump.pump.device import Pump
from smartpump.pump.events import EventType
from tests.factories import HOSPITAL_ID
from tests.unit.pump.library import basic, make_pump, pump_library, start

ROOT = generate_keypair()
OLD_LIBRARY = generate_keypair()
NEW_LIBRARY = generate_keypair()
STATE_KEY = b"k" * 32
PROVISIONED = TrustStore(
    [
        TrustedKey(key_id="trust-1", purpose=KeyPurpose.TRUST, public_pem=ROOT[1]),
        TrustedKey(key_id="library-1", purpose=KeyPurpose.LIBRARY, public_pem=OLD_LIBRARY[1]),
    ]
)


def _list(version: int) -> TrustList:
    return TrustList(
        version=version,
        keys=(
            ListedKey(
                key_id="trust-1", purpose=KeyPurpose.TRUST, public_pem=ROOT[1], status=ListedStatus.ACTIVE
            ),
            ListedKey(
                key_id="library-1",
                purpose=KeyPurpose.LIBRARY,
                public_pem=OLD_LIBRARY[1],
                status=ListedStatus.RETIRED,
            ),
            ListedKey(
                key_id="library-2",
                purpose=KeyPurpose.LIBRARY,
                public_pem=NEW_LIBRARY[1],
                status=ListedStatus.ACTIVE,
            ),
        ),
    )


def _install_new_library(pump: Pump, version: int = 2) -> None:
    pump.install_library(
        sign(pump_library(version=version), NEW_LIBRARY[0], "library-2"), pump.trust, hospital_id=HOSPITAL_ID
    )


def test_a_trust_list_installs_mid_infusion_and_then_the_rotated_key_signs_for_the_pump() -> None:
    pump, _ = make_pump(trust=PROVISIONED)
    with pytest.raises(SignatureError) as before:
        _install_new_library(pump)
    assert before.value.code == "signature.unknown_key"
    start(pump, "A", basic("100"))
    pump.install_trust_list(sign_trust_list(_list(1), ROOT[0], "trust-1"))
    [installed] = pump.events.of_type(EventType.TRUST_INSTALLED)
    assert dict(installed.data) == {
        "version": 1,
        "previous_version": 0,
        "key_id": "trust-1",
        "key_ids": ["library:library-2", "trust:trust-1"],
        "revoked": ["library-1"],
    }
    assert pump.trust_version == 1 and pump.channel("A").therapy is not None
    _install_new_library(pump)
    assert pump.pending_library is not None and pump.pending_library.version == 2
    with pytest.raises(SignatureError) as old:
        pump.install_library(
            sign(pump_library(version=3), OLD_LIBRARY[0], "library-1"), pump.trust, hospital_id=HOSPITAL_ID
        )
    assert old.value.code == "signature.unknown_key"


@pytest.mark.parametrize(
    ("signer", "key_id", "version", "code"),
    [
        (generate_keypair(), "trust-1", 2, "signature.invalid"),
        (NEW_LIBRARY, "library-2", 2, "signature.wrong_purpose"),
        (ROOT, "trust-1", 1, "trust.rollback"),
    ],
)
def test_a_refused_list_is_logged_and_changes_nothing(
    signer: tuple[bytes, bytes], key_id: str, version: int, code: str
) -> None:
    pump, _ = make_pump(trust=PROVISIONED)
    pump.install_trust_list(sign_trust_list(_list(1), ROOT[0], "trust-1"))
    held = (pump.trust_version, pump.trust.keys)
    with pytest.raises(SignatureError) as refused:
        pump.install_trust_list(sign_trust_list(_list(version), signer[0], key_id))
    assert refused.value.code == code
    [rejected] = pump.events.of_type(EventType.TRUST_REJECTED)
    assert (rejected.data["code"], rejected.data["key_id"]) == (code, key_id)
    assert (pump.trust_version, pump.trust.keys) == held


def test_the_installed_trust_list_survives_a_sealed_restart() -> None:
    pump, clock = make_pump(trust=PROVISIONED)
    pump.install_trust_list(sign_trust_list(_list(1), ROOT[0], "trust-1"))
    later = ManualClock(start=clock.now() + timedelta(seconds=60))
    restarted = Pump.power_on(
        pump.to_sealed_state(STATE_KEY),
        STATE_KEY,
        pump_id="pump-1",
        model=PumpModel.LVP,
        clock=later,
        library=pump_library(),
        trust=PROVISIONED,
    )
    assert restarted.trust_version == 1
    assert [k.key_id for k in restarted.trust.keys] == ["library-2", "trust-1"]
    with pytest.raises(SignatureError) as replayed:
        restarted.install_trust_list(sign_trust_list(_list(1), ROOT[0], "trust-1"))
    assert replayed.value.code == "trust.rollback"
    _install_new_library(restarted)


def test_a_state_saved_before_trust_lists_keeps_the_provisioned_keys() -> None:
    pump, clock = make_pump(trust=PROVISIONED)
    state = pump.to_state()
    del state["trust"]
    restored = Pump.from_state(state, ManualClock(start=clock.now()), pump_library(), trust=PROVISIONED)
    assert restored.trust_version == 0 and restored.trust.keys == PROVISIONED.keys
