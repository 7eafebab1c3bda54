"""The published signing keys: each public key with its id, purpose and status (what pumps trust, each key
for its one purpose), and the active library-signing key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from smartpump.library.keys import KeyPurpose
from smartpump.server.api.deps import StateDep, require_roles
from smartpump.server.api.schemas import PublicKeyOut, PublishedKeysOut
from smartpump.server.auth import ALL_ROLES, Access
from smartpump.server.keys import SigningKey

router = APIRouter(prefix="/keys", tags=["keys"])


def _out(key: SigningKey) -> PublicKeyOut:
    return PublicKeyOut(
        key_id=key.key_id,
        purpose=key.purpose,
        status=key.status,
        created_at=key.created_at,
        public_key_pem=key.public_pem.decode("ascii"),
    )


@router.get("")
def published_keys(access: Annotated[Access, require_roles(*ALL_ROLES)], state: StateDep) -> PublishedKeysOut:
    """Every published public key (active and published, never retired), each with its purpose."""
    return PublishedKeysOut(keys=[_out(key) for key in state.keys.published()])


@router.get("/library-signing")
def library_signing_key(
    access: Annotated[Access, require_roles(*ALL_ROLES)], state: StateDep
) -> PublicKeyOut:
    """The active library-signing public key and its id."""
    return _out(state.keys.signer(KeyPurpose.LIBRARY))
