"""API response models stay in step with the service objects and rows they are built from: every
field of the source is either exposed by the model or declared hidden here with the reason, and
every field only the model has is declared here. A field added on one side only fails this test."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from smartpump.library.diff import Change, LibraryDiff
from smartpump.library.lint import Finding
from smartpump.library.search import SearchResult
from smartpump.server.api import schemas
from smartpump.server.audit import VerifyReport
from smartpump.server.db import models, models_fleet_ops
from smartpump.server.services.configurations import ConfigurationCurrency
from smartpump.server.services.events import EventView
from smartpump.server.services.fleet import FacilityCurrency
from smartpump.server.services.library_coverage import AreaCoverage, Coverage
from smartpump.server.services.library_lifecycle import OverdueReview
from smartpump.server.services.maintenance import DueItem
from smartpump.server.services.release_policy import Policy, Standing


@dataclasses.dataclass(frozen=True)
class Pair:
    """A response model, its source, the source fields it hides (with why) and its own fields."""

    model: type[BaseModel]
    source: type[Any]
    hidden: dict[str, str] = dataclasses.field(default_factory=dict)
    added: dict[str, str] = dataclasses.field(default_factory=dict)


PAIRS = (
    Pair(schemas.AreaCoverageOut, AreaCoverage),
    Pair(schemas.ChangeOut, Change),
    Pair(schemas.ConfigurationCurrencyOut, ConfigurationCurrency),
    Pair(schemas.DueOut, DueItem),
    Pair(schemas.EventOut, EventView),
    Pair(schemas.FindingOut, Finding),
    Pair(schemas.LibraryCurrencyOut, FacilityCurrency),
    Pair(schemas.OverdueReviewOut, OverdueReview),
    Pair(schemas.SearchOut, SearchResult),
    Pair(
        schemas.ChannelOut,
        models.ChannelState,
        hidden={"id": "internal key", "pump_id": "channels are listed under their pump"},
    ),
    Pair(schemas.AuditVerifyOut, VerifyReport, added={"ok": "the report's verdict as one boolean"}),
    Pair(schemas.DiffOut, LibraryDiff, added={"against_id": "the library version compared with"}),
    Pair(schemas.CoverageOut, Coverage, added={"library_id": "the version covered", "version": "its number"}),
    Pair(schemas.PolicyStandingOut, Standing, added={"satisfied": "the standing's verdict as one boolean"}),
    Pair(schemas.ReleasePolicyOut, Policy, added={"description": "the policy in words"}),
    Pair(schemas.ChangeRequestOut, models.ChangeRequest),
    Pair(schemas.FacilityOut, models.Facility),
    Pair(schemas.ScheduleOut, models.MaintenanceSchedule),
    Pair(schemas.AuditRecordOut, models.AuditRecord, hidden={"id": "records are addressed by seq"}),
    Pair(
        schemas.ApprovalOut,
        models.LibraryApproval,
        hidden={"id": "internal key", "library_version_id": "the library is the resource asked for"},
        added={"is_current": "whether the approval is for the version's current content"},
    ),
    Pair(
        schemas.ConfigurationOut,
        models_fleet_ops.ConfigurationVersion,
        hidden={"signed_document": "the signed package is its own download"},
    ),
    Pair(
        schemas.LibraryOut,
        models.LibraryVersion,
        hidden={
            "document": "the library document is its own resource (/document)",
            "signed_document": "the signed package is its own download",
            "released_by": "in the audit log and the approvals",
        },
    ),
    Pair(
        schemas.MaintenanceOut,
        models.MaintenanceRecord,
        hidden={"pump_id": "pumps are addressed by serial"},
        added={"serial": "the pump's serial"},
    ),
    Pair(
        schemas.FaultOut,
        models.FaultReport,
        hidden={"pump_id": "pumps are addressed by serial", "resolved_by": "in the audit log"},
        added={"serial": "the pump's serial"},
    ),
    Pair(
        schemas.PumpOut,
        models.Pump,
        hidden={"id": "pumps are addressed by serial", "created_at": "in the audit log"},
    ),
    Pair(
        schemas.UserOut,
        models.User,
        hidden={
            "password_hash": "a secret",
            "failed_logins": "login-throttle state, not shown to other users",
            "locked_until": "login-throttle state, not shown to other users",
            "must_change_password": "first-login state, answered by the login flow",
        },
        added={"grants": "the user's role grants, from their own rows"},
    ),
    Pair(
        schemas.GrantOut,
        models.RoleGrant,
        hidden={
            "user_id": "grants are listed under their user",
            "granted_by": "in the audit log",
            "confirmed_by": "in the audit log",
            "created_at": "in the audit log",
        },
    ),
)


def _source_fields(source: type[Any]) -> set[str]:
    if dataclasses.is_dataclass(source):
        return {f.name for f in dataclasses.fields(source) if not f.name.startswith("_")}
    return {column.key for column in source.__mapper__.column_attrs}


@pytest.mark.parametrize("pair", PAIRS, ids=[p.model.__name__ for p in PAIRS])
def test_the_response_model_matches_its_source(pair: Pair) -> None:
    exposed = set(pair.model.model_fields)
    source = _source_fields(pair.source)
    assert pair.hidden.keys() <= source, "a field declared hidden is not in the source"
    assert exposed - source == pair.added.keys(), "fields only the response model has"
    assert source - exposed == pair.hidden.keys(), "source fields the response model does not expose"
