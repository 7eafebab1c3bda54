"""The signed trust list: a pump installs a newer list signed by a trust-root key it holds, and refuses
(with its code) an unknown or wrong-purpose signer, any tampering, a malformed payload, a rollback, a list
that revives a revoked key or leaves a purpose without a key."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.errors import RollbackError, SignatureError
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore, generate_keypair, private_key_from_pem
from smartpump.library.trust_list import (
    ListedKey,
    ListedStatus,
    SignedTrustList,
    TrustList,
    TrustState,
    sign_trust_list,
    verify_trust_list,
)

PURPOSES = (
    KeyPurpose.LIBRARY,
    KeyPurpose.CONFIGURATION,
    KeyPurpose.SOFTWARE,
    KeyPurpose.COMMAND,
    KeyPurpose.TRUST,
)
OLD = {p: generate_keypair() for p in PURPOSES}
NEW_LIBRARY = generate_keypair()
NEW_ROOT = generate_keypair()


def _listed(purpose: KeyPurpose, pair: tuple[bytes, bytes], key_id: str, status: ListedStatus) -> ListedKey:
    return ListedKey(key_id=key_id, purpose=purpose, public_pem=pair[1], status=status)


def _old(status: ListedStatus = ListedStatus.ACTIVE) -> list[ListedKey]:
    return [_listed(p, OLD[p], f"{p.value}-1", status) for p in PURPOSES]


def _held() -> TrustState:
    return TrustState.provisioned(
        TrustStore(TrustedKey(key_id=f"{p.value}-1", purpose=p, public_pem=OLD[p][1]) for p in PURPOSES)
    )


def _sign(
    trust_list: TrustList, pair: tuple[bytes, bytes] = OLD[KeyPurpose.TRUST], key_id: str = "trust-1"
) -> SignedTrustList:
    return sign_trust_list(trust_list, pair[0], key_id)


def _rotated(version: int = 1) -> TrustList:
    """The old keys plus a published successor of the library key."""
    return TrustList(
        version=version,
        keys=(*_old(), _listed(KeyPurpose.LIBRARY, NEW_LIBRARY, "library-2", ListedStatus.PUBLISHED)),
    )


def test_a_newer_list_signed_by_the_held_root_adds_the_successor_key_for_its_purpose_only() -> None:
    trust_list, state = verify_trust_list(_sign(_rotated()), _held())
    assert state.version == 1 and trust_list.version == 1
    assert state.store.key_for("library-2", KeyPurpose.LIBRARY) == NEW_LIBRARY[1]
    with pytest.raises(SignatureError) as wrong:
        state.store.key_for("library-2", KeyPurpose.COMMAND)
    assert wrong.value.code == "signature.wrong_purpose"


def test_a_retired_key_is_dropped_and_can_never_come_back() -> None:
    _, first = verify_trust_list(_sign(_rotated()), _held())
    retiring = TrustList(
        version=2,
        keys=tuple(
            replace(k, status=ListedStatus.RETIRED) if k.key_id == "library-1" else k for k in _rotated().keys
        ),
    )
    _, second = verify_trust_list(_sign(retiring), first)
    assert "library-1" in second.revoked
    with pytest.raises(SignatureError) as gone:
        second.store.key_for("library-1", KeyPurpose.LIBRARY)
    assert gone.value.code == "signature.unknown_key"
    with pytest.raises(SignatureError) as revived:
        verify_trust_list(_sign(_rotated(version=3)), second)
    assert revived.value.code == "trust.revoked_key"


def test_the_root_rotates_through_a_list_the_old_root_signed() -> None:
    handover = TrustList(
        version=1, keys=(*_old(), _listed(KeyPurpose.TRUST, NEW_ROOT, "trust-2", ListedStatus.PUBLISHED))
    )
    _, state = verify_trust_list(_sign(handover), _held())
    after = TrustList(
        version=2,
        keys=tuple(
            replace(k, status=ListedStatus.RETIRED) if k.key_id == "trust-1" else k for k in handover.keys
        ),
    )
    _, rotated = verify_trust_list(_sign(after, NEW_ROOT, "trust-2"), state)
    assert [k.key_id for k in rotated.store.keys if k.purpose is KeyPurpose.TRUST] == ["trust-2"]
    with pytest.raises(SignatureError) as old_root:
        verify_trust_list(_sign(replace(after, version=3)), rotated)
    assert old_root.value.code == "signature.unknown_key"


@pytest.mark.parametrize(
    ("signer", "key_id", "code"),
    [
        (OLD[KeyPurpose.LIBRARY], "library-1", "signature.wrong_purpose"),
        (NEW_ROOT, "trust-9", "signature.unknown_key"),
        (NEW_ROOT, "trust-1", "signature.invalid"),
    ],
)
def test_a_list_not_signed_by_a_held_root_is_refused(
    signer: tuple[bytes, bytes], key_id: str, code: str
) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_trust_list(_sign(_rotated(), signer, key_id), _held())
    assert refused.value.code == code


@pytest.mark.parametrize("version", [1, 2])
def test_a_list_not_newer_than_the_installed_one_is_a_rollback(version: int) -> None:
    with pytest.raises(RollbackError) as refused:
        verify_trust_list(_sign(_rotated(version=version)), replace(_held(), version=2))
    assert refused.value.code == "trust.rollback"


def test_a_list_leaving_a_purpose_without_a_key_is_refused() -> None:
    no_commands = TrustList(version=1, keys=tuple(k for k in _old() if k.purpose is not KeyPurpose.COMMAND))
    with pytest.raises(SignatureError) as refused:
        verify_trust_list(_sign(no_commands), _held())
    assert refused.value.code == "trust.purpose_empty"
    all_retired = TrustList(version=1, keys=tuple(_old(ListedStatus.RETIRED)))
    with pytest.raises(SignatureError) as emptied:
        verify_trust_list(_sign(all_retired), _held())
    assert emptied.value.code == "trust.purpose_empty"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"format":"smartpump.trust-list/1","version":1}',
        b'{"format":"other","keys":[],"version":1}',
        b'{"format":"smartpump.trust-list/1","keys":[{"key_id":"x"}],"version":1}',
        b'{"format": "smartpump.trust-list/1", "keys": [], "version": 1}',
        b'{"format":"smartpump.trust-list/1","keys":[],"version":0}',
    ],
)
def test_signed_bytes_that_are_no_canonical_trust_list_are_malformed(payload: bytes) -> None:
    root = OLD[KeyPurpose.TRUST]
    signed = SignedTrustList(
        payload=payload,
        key_id="trust-1",
        algorithm="Ed25519",
        signature=private_key_from_pem(root[0]).sign(payload),
    )
    with pytest.raises(SignatureError) as refused:
        verify_trust_list(signed, _held())
    assert refused.value.code == "trust.malformed"


def test_one_key_listed_under_two_purposes_is_malformed() -> None:
    twice = TrustList(
        version=1,
        keys=(
            *_old(),
            _listed(KeyPurpose.COMMAND, OLD[KeyPurpose.LIBRARY], "command-2", ListedStatus.PUBLISHED),
        ),
    )
    with pytest.raises(SignatureError) as refused:
        verify_trust_list(_sign(twice), _held())
    assert refused.value.code == "trust.malformed"


def test_the_state_round_trips_through_its_persisted_form() -> None:
    _, state = verify_trust_list(_sign(_rotated()), _held())
    back = TrustState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back.version == state.version and back.revoked == state.revoked
    assert back.store.keys == state.store.keys
    with pytest.raises(SignatureError) as bad:
        TrustState.from_dict({**state.to_dict(), "version": -1})
    assert bad.value.code == "trust.malformed"


def test_the_signed_document_travels_as_json_byte_for_byte() -> None:
    signed = _sign(_rotated())
    assert SignedTrustList.from_json(signed.to_json()) == signed


SIGNED = _sign(_rotated())


@given(
    part=st.sampled_from(["payload", "signature"]),
    index=st.integers(min_value=0, max_value=10_000),
    flip=st.integers(min_value=1, max_value=255),
)
def test_verification_never_accepts_a_tampered_list(part: str, index: int, flip: int) -> None:
    original: bytes = getattr(SIGNED, part)
    tampered = bytearray(original)
    tampered[index % len(original)] ^= flip
    forged = (
        replace(SIGNED, payload=bytes(tampered))
        if part == "payload"
        else replace(SIGNED, signature=bytes(tampered))
    )
    with pytest.raises(SignatureError):
        verify_trust_list(forged, _held())


@given(held_version=st.integers(min_value=0, max_value=50), version=st.integers(min_value=1, max_value=50))
def test_only_a_strictly_newer_version_installs(held_version: int, version: int) -> None:
    held = replace(_held(), version=held_version)
    signed = _sign(_rotated(version=version))
    if version > held_version:
        assert verify_trust_list(signed, held)[1].version == version
    else:
        with pytest.raises(RollbackError):
            verify_trust_list(signed, held)
