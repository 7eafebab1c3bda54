"""Pump configurations (commercial req. 55, SEC-CFG-01..05): biomedical engineering drafts a version of a
facility's service configuration for one pump model, a second biomed releases (signs) it, and deployments
offer it to pumps, which activate it only when every channel is idle.

A draft is validated by the core schema (``smartpump.pump.configuration``) and numbered above every
earlier version of its (facility, model); a released version is signed and immutable. The author of a draft
may not release it (the refusal is audited). "Restore defaults" is a new draft holding the model's factory
settings: versions never go backwards, so pumps accept it like any newer configuration.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.errors import ConfigurationError
from smartpump.library.keys import KeyPurpose
from smartpump.pump.configuration import (
    FORMAT,
    PumpConfiguration,
    content_sha256,
    sign_configuration,
)
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models_fleet_ops import ConfigurationVersion
from smartpump.server.db.repositories import configurations as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import in_own_transaction
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.keys import Keyring
from smartpump.server.vocabulary import ConfigurationStatus

DEFAULTS_NAME: Final = "Factory defaults"


def settings_of(row: ConfigurationVersion) -> dict[str, Any]:
    """The stored settings of a version (decimals as exact strings)."""
    settings: dict[str, Any] = json.loads(row.settings)
    return settings


def get_version(session: Session, access: Access, configuration_id: int) -> ConfigurationVersion:
    """A configuration version the caller may see (404 otherwise)."""
    row = repo.version_by_id(session, configuration_id)
    if row is None or not access.allows(row.facility_id):
        raise NotFoundError(f"no configuration {configuration_id}", code="configuration.not_found")
    return row


def list_versions(
    session: Session,
    access: Access,
    *,
    facility_id: int | None,
    model: str | None,
    status: ConfigurationStatus | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ConfigurationVersion], int]:
    """Versions of the caller's facilities, per facility and model, newest first."""
    return repo.list_versions(
        session,
        facility_ids=access.scope,
        facility_id=facility_id,
        model=model,
        status=None if status is None else status.value,
        limit=limit,
        offset=offset,
    )


def create_draft(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    facility_id: int,
    model: str,
    name: str,
    settings: Mapping[str, Any],
) -> ConfigurationVersion:
    """A new draft for a model of a facility: validated (settings left out take the model's factory
    values), numbered above every earlier version.

    Raises:
        AccessDeniedError: ``configuration.forbidden`` outside the caller's facilities.
        InvalidInputError: ``facility.not_found``; ``configuration.invalid`` with one
            ``{field, message}`` per problem in ``details``.
    """
    return _draft(session, clock, access, facility_id, model, name, settings, restore_defaults=False)


def restore_defaults(
    session: Session, clock: Clock, access: Access, *, facility_id: int, model: str, name: str | None
) -> ConfigurationVersion:
    """SEC-CFG-05: a new draft holding the model's factory settings (release and deploy it to bring pumps
    back to the trusted baseline; versions never go backwards, so pumps accept it)."""
    return _draft(
        session, clock, access, facility_id, model, name or DEFAULTS_NAME, {}, restore_defaults=True
    )


def _draft(
    session: Session,
    clock: Clock,
    access: Access,
    facility_id: int,
    model: str,
    name: str,
    settings: Mapping[str, Any],
    *,
    restore_defaults: bool,
) -> ConfigurationVersion:
    if not access.allows(facility_id):
        raise AccessDeniedError(
            "you cannot author configurations in this facility", code="configuration.forbidden"
        )
    facility = users_repo.facility_by_id(session, facility_id)
    if facility is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    version = repo.highest_version(session, facility_id, model) + 1
    configuration = _validated(
        {
            "format": FORMAT,
            "hospital_id": facility.code,
            "model": model,
            "version": version,
            "name": name,
            "settings": dict(settings),
        }
    )
    row = ConfigurationVersion(
        facility_id=facility_id,
        model=configuration.model.value,
        version=version,
        name=configuration.name,
        settings=json.dumps(configuration.settings.to_dict(), sort_keys=True),
        status=ConfigurationStatus.DRAFT.value,
        content_sha256=content_sha256(configuration),
        created_by=access.principal.user_id,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="configuration.draft_created",
        object_type="configuration",
        object_id=row.id,
        facility_id=facility_id,
        details={
            "model": row.model,
            "version": version,
            "content_sha256": row.content_sha256,
            "restore_defaults": restore_defaults,
            "settings": configuration.settings.to_dict(),
        },
    )
    return row


def _validated(document: Mapping[str, Any]) -> PumpConfiguration:
    try:
        return PumpConfiguration.from_dict(document)
    except ConfigurationError as error:
        raise InvalidInputError(
            error.message,
            code=error.code,
            details=tuple({"field": field, "message": reason} for field, reason in error.problems),
        ) from None


def _configuration_of(session: Session, row: ConfigurationVersion) -> PumpConfiguration:
    """The domain configuration a stored version holds, refused when it no longer matches its hash."""
    facility = users_repo.facility_by_id(session, row.facility_id)
    assert facility is not None
    try:
        configuration = PumpConfiguration.from_dict(
            {
                "format": FORMAT,
                "hospital_id": facility.code,
                "model": row.model,
                "version": row.version,
                "name": row.name,
                "settings": settings_of(row),
            }
        )
    except ValueError:
        configuration = None
    if configuration is None or content_sha256(configuration) != row.content_sha256:
        raise ConflictError(
            "stored configuration does not match its recorded hash", code="configuration.integrity"
        )
    return configuration


def release(
    session: Session, clock: Clock, keys: Keyring, access: Access, configuration_id: int
) -> ConfigurationVersion:
    """Sign a draft with the server key; it is then immutable and may be deployed.

    Raises:
        ConflictError: ``configuration.state`` (not a draft), ``configuration.integrity``,
            ``configuration.superseded`` (a newer version of the model is released).
        AccessDeniedError: ``configuration.separation_of_duties`` for the draft's author.
    """
    row = get_version(session, access, configuration_id)
    if row.status != ConfigurationStatus.DRAFT.value:
        raise ConflictError(
            f"configuration v{row.version} is {row.status} and cannot change; create a new draft",
            code="configuration.state",
        )
    if row.created_by == access.principal.user_id:
        with in_own_transaction(session):
            _audit_release(session, clock, access, row, outcome="denied", reason="author of this draft")
        raise AccessDeniedError(
            "the author of a configuration cannot release it; a second biomedical engineer must",
            code="configuration.separation_of_duties",
        )
    configuration = _configuration_of(session, row)
    newest = repo.latest_released(session, facility_ids=frozenset({row.facility_id})).get(
        (row.facility_id, row.model)
    )
    if newest is not None and newest.version > row.version:
        raise ConflictError(
            f"v{newest.version} of {row.model} is released already; pumps would refuse v{row.version}",
            code="configuration.superseded",
        )
    signer = keys.signer(KeyPurpose.CONFIGURATION)
    signed = sign_configuration(configuration, signer.private_pem, signer.key_id)
    row.status = ConfigurationStatus.RELEASED
    row.released_by = access.principal.user_id
    row.released_at = clock.now()
    row.signed_document = signed.to_json()
    row.key_id = signer.key_id
    _audit_release(session, clock, access, row, outcome="success", reason=None)
    session.flush()
    return row


def _audit_release(
    session: Session,
    clock: Clock,
    access: Access,
    row: ConfigurationVersion,
    *,
    outcome: str,
    reason: str | None,
) -> None:
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="configuration.released",
        object_type="configuration",
        object_id=row.id,
        facility_id=row.facility_id,
        outcome=outcome,
        details={
            "model": row.model,
            "version": row.version,
            "content_sha256": row.content_sha256,
            "key_id": row.key_id,
            "reason": reason,
        },
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigurationCurrency:
    """Per facility and model: the newest released version, pumps per active version, pumps not on it."""

    facility_id: int
    model: str
    released_version: int | None
    pumps_by_version: dict[str, int]
    current: int
    outdated_serials: tuple[str, ...]


def configuration_currency(session: Session, access: Access) -> list[ConfigurationCurrency]:
    """Which configuration version each pump runs (0: the factory default) against the newest release."""
    released = repo.latest_released(session, facility_ids=access.scope)
    pumps: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for pump in fleet_repo.all_pumps(session, facility_ids=access.scope):
        pumps.setdefault((pump.facility_id, pump.model), []).append(
            (pump.serial, pump.configuration_version or 0)
        )
    result = []
    for key in sorted(set(pumps) | set(released)):
        members = sorted(pumps.get(key, []))
        newest = released.get(key)
        expected = 0 if newest is None else newest.version
        outdated = tuple(serial for serial, version in members if version != expected)
        counts = Counter(str(version) for _, version in members)
        result.append(
            ConfigurationCurrency(
                facility_id=key[0],
                model=key[1],
                released_version=None if newest is None else newest.version,
                pumps_by_version=dict(sorted(counts.items())),
                current=len(members) - len(outdated),
                outdated_serials=outdated,
            )
        )
    return result
