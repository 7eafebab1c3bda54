"""The library-signing public key (what pumps verify released libraries against)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from smartpump.server.api.deps import StateDep, require_roles
from smartpump.server.api.schemas import PublicKeyOut
from smartpump.server.auth import ALL_ROLES, Access

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("/library-signing")
def library_signing_key(
    access: Annotated[Access, require_roles(*ALL_ROLES)], state: StateDep
) -> PublicKeyOut:
    """The server's Ed25519 public key and its id."""
    return PublicKeyOut(key_id=state.keys.key_id, public_key_pem=state.keys.public_pem.decode("ascii"))
