"""The pump's trusted-key list, updated over the air: a versioned list of (key id, purpose, public key,
status) signed by a trust-root key (``KeyPurpose.TRUST``) the pump already holds.

The trust root signs nothing but these lists, so a stolen library, configuration, software or command key
cannot make a pump trust another key; the root itself rotates like any key (a list signed by the current
root names its successor, and later lists are signed by it). ``verify_trust_list`` refuses, in this order:
a root the pump does not hold for trust lists (``signature.unknown_key``, ``signature.wrong_purpose``), a
bad signature (``signature.algorithm``, ``signature.invalid``), a payload that is not a canonical trust
list (``trust.malformed``), a version not above the installed one (``trust.rollback``), a list naming as
trusted a key the pump saw revoked (``trust.revoked_key``) and a list that would leave a purpose the pump
trusts today with no key (``trust.purpose_empty``). Keys listed as ``retired`` are dropped and remembered
as revoked, so a later list cannot bring them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final

from smartpump.errors import RollbackError, SignatureError, SigningKeyError
from smartpump.library.keys import ALGORITHM, KeyPurpose, TrustedKey, TrustStore, private_key_from_pem
from smartpump.library.signing import SignedDocument, verify_signature

TRUST_LIST_FORMAT: Final = "smartpump.signed-trust-list/1"
PAYLOAD_FORMAT: Final = "smartpump.trust-list/1"


class ListedStatus(StrEnum):
    """A listed key's status: trusted (``active`` signs now, ``published`` is trusted ahead of its
    activation) or ``retired`` (revoked: the pump drops it for good)."""

    ACTIVE = "active"
    PUBLISHED = "published"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedKey:
    """One entry of a trust list."""

    key_id: str
    purpose: KeyPurpose
    public_pem: bytes
    status: ListedStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustList:
    """Every key of the deployment the pumps must know of, with a version that only grows."""

    version: int
    keys: tuple[ListedKey, ...]

    def canonical_bytes(self) -> bytes:
        """The exact signed bytes: sorted keys, no whitespace, UTF-8, entries in key-id order."""
        document = {
            "format": PAYLOAD_FORMAT,
            "version": self.version,
            "keys": [
                {
                    "key_id": key.key_id,
                    "purpose": key.purpose.value,
                    "algorithm": ALGORITHM,
                    "public_key_pem": key.public_pem.decode("ascii"),
                    "status": key.status.value,
                }
                for key in sorted(self.keys, key=lambda k: k.key_id)
            ],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def trusted(self) -> tuple[TrustedKey, ...]:
        """The keys a pump trusts under this list: every one not retired."""
        return tuple(
            TrustedKey(key_id=k.key_id, purpose=k.purpose, public_pem=k.public_pem)
            for k in self.keys
            if k.status is not ListedStatus.RETIRED
        )

    def retired(self) -> frozenset[str]:
        """The ids of the keys this list revokes."""
        return frozenset(k.key_id for k in self.keys if k.status is ListedStatus.RETIRED)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedTrustList(SignedDocument):
    """A trust list's canonical bytes with the trust-root key id and its Ed25519 signature."""

    FORMAT: ClassVar[str] = TRUST_LIST_FORMAT
    WHAT: ClassVar[str] = "signed trust list"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustState:
    """What a pump holds: the installed list's version (0: as provisioned), the keys it trusts and the ids
    it saw revoked."""

    version: int
    store: TrustStore
    revoked: frozenset[str]

    @classmethod
    def provisioned(cls, store: TrustStore) -> TrustState:
        """The state of a pump fresh from provisioning: these keys, version 0, nothing revoked."""
        return cls(version=0, store=store, revoked=frozenset())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form the pump persists."""
        return {
            "version": self.version,
            "keys": self.store.to_document()["keys"],
            "revoked": sorted(self.revoked),
        }

    @classmethod
    def from_dict(cls, raw: object) -> TrustState:
        """Read ``to_dict``'s form.

        Raises:
            SignatureError: ``trust.malformed`` naming what is wrong.
        """
        if not isinstance(raw, Mapping):
            raise SignatureError("a trust state is an object", code="trust.malformed")
        version, revoked = raw.get("version"), raw.get("revoked")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise SignatureError("a trust state's version is an integer >= 0", code="trust.malformed")
        if not isinstance(revoked, list) or not all(isinstance(k, str) for k in revoked):
            raise SignatureError("a trust state's revoked ids are a list of texts", code="trust.malformed")
        try:
            store = TrustStore.from_document({"keys": raw.get("keys")})
        except SigningKeyError as error:
            raise SignatureError(f"a trust state's keys: {error.message}", code="trust.malformed") from None
        return cls(version=version, store=store, revoked=frozenset(revoked))


def sign_trust_list(trust_list: TrustList, private_key_pem: bytes, key_id: str) -> SignedTrustList:
    """Sign a trust list with the trust-root private key (PEM).

    Raises:
        SignatureError: ``signature.key_id`` for an empty key id; ``key.malformed`` / ``key.wrong_type``.
    """
    if not key_id.strip():
        raise SignatureError("a key id is needed to sign", code="signature.key_id")
    payload = trust_list.canonical_bytes()
    return SignedTrustList(
        payload=payload,
        key_id=key_id,
        algorithm=ALGORITHM,
        signature=private_key_from_pem(private_key_pem).sign(payload),
    )


def verify_trust_list(signed: SignedTrustList, held: TrustState) -> tuple[TrustList, TrustState]:
    """The list and the pump's next trust state, once the list verifies against what the pump holds.

    Raises:
        SignatureError: ``signature.unknown_key``, ``signature.wrong_purpose``, ``signature.algorithm``,
            ``key.malformed``, ``signature.invalid``, ``trust.malformed``, ``trust.revoked_key``,
            ``trust.purpose_empty`` (see the module docstring for the order).
        RollbackError: ``trust.rollback`` for a version not above the installed one.
    """
    verify_signature(signed, held.store.key_for(signed.key_id, KeyPurpose.TRUST))
    trust_list = read_payload(signed.payload)
    if trust_list.version <= held.version:
        raise RollbackError(
            f"trust list version {trust_list.version} is not newer than installed version {held.version}",
            code="trust.rollback",
        )
    trusted = trust_list.trusted()
    back = sorted({k.key_id for k in trusted} & held.revoked)
    if back:
        raise SignatureError(
            f"the list trusts key(s) {', '.join(back)} that were revoked", code="trust.revoked_key"
        )
    kept = {k.purpose for k in trusted}
    emptied = sorted({k.purpose.value for k in held.store.keys} - {p.value for p in kept})
    if emptied:
        raise SignatureError(
            f"the list would leave no key for {', '.join(emptied)}", code="trust.purpose_empty"
        )
    try:
        store = TrustStore(trusted)
    except SigningKeyError as error:
        raise SignatureError(f"the list's keys: {error.message}", code="trust.malformed") from None
    state = TrustState(
        version=trust_list.version,
        store=store,
        revoked=held.revoked | trust_list.retired() | _dropped(held.store, store),
    )
    return trust_list, state


def _dropped(before: TrustStore, after: TrustStore) -> frozenset[str]:
    """Ids trusted before and left off the new list: revoked too (a full list names every key it keeps)."""
    kept = {k.key_id for k in after.keys}
    return frozenset(k.key_id for k in before.keys if k.key_id not in kept)


def read_payload(payload: bytes) -> TrustList:
    """The trust list in signed bytes, refused unless they are exactly its canonical form.

    Raises:
        SignatureError: ``trust.malformed`` naming what is wrong.
    """
    try:
        document = json.loads(payload.decode("ascii"))
        if not isinstance(document, dict) or set(document) != {"format", "version", "keys"}:
            raise ValueError("a trust list holds exactly format, version and keys")
        if document["format"] != PAYLOAD_FORMAT:
            raise ValueError(f"format must be {PAYLOAD_FORMAT!r}")
        version = document["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError("version must be an integer >= 1")
        if not isinstance(document["keys"], list):
            raise ValueError("keys must be a list")
        trust_list = TrustList(version=version, keys=tuple(_listed(raw) for raw in document["keys"]))
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise SignatureError(f"not a trust list: {error}", code="trust.malformed") from None
    if trust_list.canonical_bytes() != payload:
        raise SignatureError("the signed trust list is not in canonical form", code="trust.malformed")
    return trust_list


def _listed(raw: object) -> ListedKey:
    if not isinstance(raw, dict) or set(raw) != {
        "key_id",
        "purpose",
        "algorithm",
        "public_key_pem",
        "status",
    }:
        raise ValueError("each key holds exactly key_id, purpose, algorithm, public_key_pem and status")
    if raw["algorithm"] != ALGORITHM:
        raise ValueError(f"key {raw['key_id']!r} is not an {ALGORITHM} key")
    key_id, pem = raw["key_id"], raw["public_key_pem"]
    if not isinstance(key_id, str) or not key_id.strip() or not isinstance(pem, str):
        raise ValueError("key_id and public_key_pem must be texts")
    return ListedKey(
        key_id=key_id,
        purpose=KeyPurpose(raw["purpose"]),
        public_pem=pem.encode("ascii"),
        status=ListedStatus(raw["status"]),
    )
