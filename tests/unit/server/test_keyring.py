"""The server keyring: one key per purpose with its id, made only in development, rotated by adding a
published key, activating it and retiring the old one."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartpump.errors import SigningKeyError
from smartpump.library.keys import KeyPurpose, key_fingerprint
from smartpump.server import keys
from smartpump.server.keys import KeyStatus

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _code(action: object) -> str:
    assert callable(action)
    with pytest.raises(SigningKeyError) as error:
        action()
    return error.value.code


def test_development_makes_one_distinct_active_key_per_purpose_and_keeps_them(tmp_path: Path) -> None:
    ring = keys.load(tmp_path, create_missing=True, now=NOW)
    signers = {purpose: ring.signer(purpose) for purpose in KeyPurpose}
    assert len({k.key_id for k in signers.values()}) == len(KeyPurpose)
    assert len({k.private_pem for k in signers.values()}) == len(KeyPurpose)
    for purpose, key in signers.items():
        assert key.purpose is purpose and key.status is KeyStatus.ACTIVE
        assert key.key_id == key_fingerprint(key.public_pem)
        assert (tmp_path / f"{purpose.value}-{key.key_id}.key.pem").stat().st_mode & 0o777 == 0o600
    again = keys.load(tmp_path, create_missing=False, now=NOW)
    assert [k.key_id for k in again.keys] == [k.key_id for k in ring.keys]


def test_production_refuses_to_start_without_keys_and_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError) as error:
        keys.load(tmp_path, create_missing=False, now=NOW)
    assert error.value.code == "key.missing"
    assert "smartpump keys add --purpose" in error.value.message
    assert not (tmp_path / keys.KEYRING_FILE).exists()


def test_a_keyring_missing_one_purpose_names_it(tmp_path: Path) -> None:
    for purpose in KeyPurpose:
        if purpose is not KeyPurpose.SOFTWARE:
            keys.add_key(tmp_path, purpose, NOW)
    with pytest.raises(SigningKeyError) as error:
        keys.load(tmp_path, create_missing=False, now=NOW)
    assert error.value.code == "key.missing" and "software" in error.value.message


def test_the_trust_store_holds_the_pump_purposes_only(tmp_path: Path) -> None:
    ring = keys.load(tmp_path, create_missing=True, now=NOW)
    trusted = {key.purpose for key in ring.trust_store().keys}
    assert trusted == set(keys.PUMP_PURPOSES) and KeyPurpose.AUDIT not in trusted


def test_rotation_publishes_then_activates_then_retires(tmp_path: Path) -> None:
    old = keys.load(tmp_path, create_missing=True, now=NOW).signer(KeyPurpose.LIBRARY)
    new = keys.add_key(tmp_path, KeyPurpose.LIBRARY, NOW)
    assert new.status is KeyStatus.PUBLISHED
    ring = keys.load(tmp_path, create_missing=False, now=NOW)
    assert ring.signer(KeyPurpose.LIBRARY).key_id == old.key_id
    assert {old.key_id, new.key_id} <= {k.key_id for k in ring.trust_store().keys}

    assert _code(lambda: keys.retire(tmp_path, old.key_id)) == "key.active"
    keys.activate(tmp_path, new.key_id)
    ring = keys.load(tmp_path, create_missing=False, now=NOW)
    assert ring.signer(KeyPurpose.LIBRARY).key_id == new.key_id
    assert ring.key(old.key_id).status is KeyStatus.PUBLISHED

    keys.retire(tmp_path, old.key_id)
    ring = keys.load(tmp_path, create_missing=False, now=NOW)
    assert old.key_id not in {k.key_id for k in ring.published()}
    assert ring.key(old.key_id).status is KeyStatus.RETIRED and ring.key(old.key_id).private_pem == b""
    assert _code(lambda: keys.activate(tmp_path, old.key_id)) == "key.retired"
    assert _code(lambda: keys.retire(tmp_path, "nope")) == "key.unknown"


def test_a_key_file_opened_to_others_stops_the_keyring(tmp_path: Path) -> None:
    key = keys.load(tmp_path, create_missing=True, now=NOW).signer(KeyPurpose.COMMAND)
    os.chmod(tmp_path / f"command-{key.key_id}.key.pem", 0o644)
    assert _code(lambda: keys.load(tmp_path, create_missing=True, now=NOW)) == "key.permissions"


def test_a_key_file_swapped_for_another_key_is_refused(tmp_path: Path) -> None:
    ring = keys.load(tmp_path, create_missing=True, now=NOW)
    library, command = ring.signer(KeyPurpose.LIBRARY), ring.signer(KeyPurpose.COMMAND)
    target = tmp_path / f"library-{library.key_id}.key.pem"
    os.chmod(target, 0o600)
    target.write_bytes(command.private_pem)
    assert _code(lambda: keys.load(tmp_path, create_missing=True, now=NOW)) == "key.malformed"


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"format": "other"}', '{"format": "smartpump.keyring/1"}']
)
def test_a_keyring_file_that_is_no_keyring_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / keys.KEYRING_FILE).write_text(text)
    assert _code(lambda: keys.load(tmp_path, create_missing=True, now=NOW)) == "key.malformed"


def test_the_manifest_lists_keys_without_reading_them(tmp_path: Path) -> None:
    keys.load(tmp_path, create_missing=True, now=NOW)
    rows = keys.manifest(tmp_path)
    assert sorted(r["purpose"] for r in rows) == sorted(p.value for p in KeyPurpose)
    assert json.loads((tmp_path / keys.KEYRING_FILE).read_text())["format"] == keys.KEYRING_FORMAT


def test_trust_list_versions_only_grow_and_are_never_given_twice(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda _: keys.next_trust_list_version(tmp_path), range(40)))
    assert sorted(taken) == list(range(1, 41))
    for text in ('{"format": "other", "version": 3}', "[41]", "{"):
        (tmp_path / keys.TRUST_LIST_FILE).write_text(text)
        with pytest.raises(SigningKeyError) as broken:
            keys.next_trust_list_version(tmp_path)
        assert broken.value.code == "key.malformed"
