"""The published signing keys: each public key with its id, purpose and status (what pumps trust, each key
for its one purpose), the active library-signing key, and the signed trust list sent to the pumps
(publish, and where each pump of a facility stands)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from smartpump.errors import SigningKeyError
from smartpump.library.keys import KeyPurpose
from smartpump.server import audit, keys
from smartpump.server.api.deps import MAX_ID, SessionDep, StateDep, require_roles
from smartpump.server.api.schemas import PublicKeyOut, PublishedKeysOut, Request, Response
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.errors import AccessDeniedError, ConflictError
from smartpump.server.keys import SigningKey
from smartpump.server.services import trust_lists
from smartpump.server.vocabulary import CommandStatus

router = APIRouter(prefix="/keys", tags=["keys"])
Admin = Annotated[Access, require_roles(Role.ADMIN)]
TrustReader = Annotated[Access, require_roles(Role.ADMIN, Role.BIOMED, Role.AUDITOR)]


class TrustPublish(Request):
    """Publish the keyring's trust list to every pump of one facility."""

    facility_id: int = Field(ge=1, le=MAX_ID)


class PumpTrustOut(Response):
    """One pump and the last trust list sent to it: its version and the command's status (``accepted`` once
    the pump installed it, ``refused`` with the pump's code)."""

    serial: str
    version: int | None
    status: CommandStatus | None
    result_code: str | None


class TrustPublicationOut(Response):
    """A published trust list: version, signing trust-root key, trusted keys (``purpose:key_id``) and the
    pumps it was sent to."""

    version: int
    signed_by: str
    key_ids: list[str]
    pumps: list[PumpTrustOut]


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


@router.post("/publish", status_code=status.HTTP_201_CREATED)
def publish_trust_list(
    body: TrustPublish, access: Admin, session: SessionDep, state: StateDep
) -> TrustPublicationOut:
    """Sign the keyring's current trust list (read from the keyring directory, next version) with the
    trust-root key and send it to every pump of the facility as a ``trust.install`` command."""
    if Role.ADMIN not in access.principal.roles_in(body.facility_id):
        audit.append(
            session,
            state.clock,
            actor=access.principal.username,
            action="trust_list.published",
            object_type="trust_list",
            object_id=None,
            facility_id=body.facility_id,
            outcome="denied",
            details={"reason": "admin role in the facility required"},
        )
        session.commit()
        raise AccessDeniedError(
            "only the facility's admin publishes keys to its pumps", code="key.publish_role"
        )
    settings = state.settings
    try:
        keyring = keys.load(
            settings.signing_keys_dir, create_missing=not settings.is_production, now=datetime.now(UTC)
        )
        signed = trust_lists.sign_current(keyring, settings.signing_keys_dir)
    except SigningKeyError as error:
        raise ConflictError(error.message, code=error.code) from None
    publication = trust_lists.publish(
        session, state, signed, facility_ids=[body.facility_id], actor=access.principal.username
    )
    return TrustPublicationOut(
        version=publication.version,
        signed_by=publication.signed_by,
        key_ids=list(publication.key_ids),
        pumps=[
            PumpTrustOut(
                serial=c.pump, version=publication.version, status=CommandStatus(c.status), result_code=None
            )
            for c in publication.commands
        ],
    )


@router.get("/trust-list")
def trust_list_status(
    access: TrustReader,
    session: SessionDep,
    facility_id: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> list[PumpTrustOut]:
    """Every pump of a facility with the version and status of the last trust list sent to it."""
    if not access.principal.roles_in(facility_id) & {Role.ADMIN, Role.BIOMED, Role.AUDITOR}:
        raise AccessDeniedError("no access to this facility's pumps", code="facility.forbidden")
    return [PumpTrustOut.model_validate(p) for p in trust_lists.pump_trust(session, facility_id)]
