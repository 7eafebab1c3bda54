"""API schemas (the HTTP contract): neither database rows nor domain objects.

Request models forbid unknown fields and bound every string; responses are built from rows in the
routes' ``from_row`` helpers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from smartpump.library.keys import KeyPurpose
from smartpump.library.model import LibraryStatus
from smartpump.server.auth import Role
from smartpump.server.keys import KeyStatus
from smartpump.server.vocabulary import (
    ChangeRequestSeverity,
    ChangeRequestStatus,
    ConfigurationStatus,
    FaultCategory,
    FaultStatus,
    MaintenanceKind,
    MaintenanceResult,
    PumpStatus,
)

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Text = Annotated[str, StringConstraints(max_length=4000)]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=4000)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Request(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    """The error envelope's content."""

    code: str
    message: str
    details: list[Any] = []


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    error: ErrorDetail


class Health(Response):
    """Liveness, database reachability and each background service's state (``ok`` or what is wrong)."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str
    services: dict[str, str] = {}


class Token(Response):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class PasswordChange(Request):
    """Change one's own password."""

    current_password: Password
    new_password: Password


class GrantOut(Response):
    """A role grant; ``facility_id`` null means every facility."""

    id: int
    role: Role
    facility_id: int | None
    status: Literal["active", "pending"]


class UserOut(Response):
    """A user account (never its password hash)."""

    id: int
    username: str
    full_name: str
    is_active: bool
    created_at: datetime
    grants: list[GrantOut] = []


class Me(Response):
    """The caller: username, roles per facility, and whether the password must be changed first."""

    user_id: int
    username: str
    global_roles: list[Role]
    facility_roles: dict[str, list[Role]]
    must_change_password: bool = False


class UserCreate(Request):
    """A new user; grants are added separately."""

    username: Code
    password: Password
    full_name: Annotated[str, StringConstraints(max_length=255)] = ""


class GrantCreate(Request):
    """Grant a role in one facility, or in all when ``facility_id`` is null."""

    role: Role
    facility_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class FacilityOut(Response):
    """A facility (hospital)."""

    id: int
    code: str
    name: str
    created_at: datetime


class FacilityCreate(Request):
    """A new facility."""

    code: Code
    name: Name


class AuditRecordOut(Response):
    """One audit record with its chain hashes."""

    seq: int
    ts: datetime
    actor: str | None
    action: str
    object_type: str
    object_id: str | None
    facility_id: int | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerifyOut(Response):
    """Result of recomputing the audit chain."""

    ok: bool
    records_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None
    problem: str | None


class PublicKeyOut(Response):
    """A published signing key: pumps trust it for its ``purpose`` only; ``active`` signs, ``published``
    is trusted ahead of a rotation."""

    key_id: str
    purpose: KeyPurpose
    status: KeyStatus
    created_at: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key_pem: str


class PublishedKeysOut(Response):
    """Every published key (the pumps' trust list, read by ``TrustStore.from_document``)."""

    keys: list[PublicKeyOut]


class PumpCreate(Request):
    """Register a pump in a facility."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    serial: Code
    model: Code
    firmware: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    care_area: Code | None = None
    location: Annotated[str, StringConstraints(max_length=128)] | None = None


class PumpUpdate(Request):
    """Change a pump's location, care area or status (in_service clears an inspection flag)."""

    location: Annotated[str, StringConstraints(max_length=128)] | None = None
    care_area: Code | None = None
    status: PumpStatus | None = None


class PumpOut(Response):
    """A pump of the fleet registry."""

    serial: str
    facility_id: int
    model: str
    firmware: str
    installed_library_version: int | None
    library_sha256: str | None
    configuration_version: int | None
    care_area: str | None
    location: str | None
    last_seen: datetime | None
    battery_percent: int | None
    battery_health_percent: int | None
    status: PumpStatus
    inspection_reason: str | None


class ChannelOut(Response):
    """A channel's latest state; volume and time left as the pump's last heartbeat reported them at
    ``reported_at`` (None since an event changed the channel)."""

    channel: str
    state: str
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_per_h: Decimal | None
    volume_infused_ml: Decimal | None
    vtbi_ml: Decimal | None
    remaining_ml: Decimal | None = None
    remaining_min: Decimal | None = None
    reported_at: datetime | None = None
    updated_at: datetime


class EhrOrderOut(Response):
    """An EHR order of a pump and its outcome: offered, rejected, started (applied, delivering), stopped,
    completed, declined (by the nurse), refused (by the pump) or expired; PIV code and reason when it
    did not start, the pump's code, and when the EHR was told; the prescriber (ORC-12, FHIR requester)."""

    order_id: str
    parent_order_id: str
    source: str
    channel: str
    patient_id: str
    prescriber_id: str
    prescriber_name: str
    drug: str
    status: str
    piv_code: int | None
    reason: str
    outcome_code: str
    received_at: datetime
    expires_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome_at: datetime | None
    outcome_reported_at: datetime | None


class LibraryCurrencyOut(Response):
    """Which libraries a facility's pumps run, against the released one (current: same content hash)."""

    facility_id: int
    released_version: int | None
    released_sha256: str | None
    pumps_by_version: dict[str, int]
    current: int
    outdated_serials: list[str]
    same_version_other_content: list[str]


class EventOut(Response):
    """A stored infusion event (PHI redacted for roles without clinical access)."""

    pump: str
    seq: int
    ts: datetime
    received_at: datetime
    v: int
    channel: str | None
    type: str
    patient_id: str | None
    order_id: str | None
    data: dict[str, Any]


class ScheduleSet(Request):
    """A preventive-maintenance interval for a model in a facility."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    model: Code
    kind: MaintenanceKind
    interval_days: int = Field(ge=1, le=3650)


class ScheduleOut(Response):
    """A preventive-maintenance interval."""

    id: int
    facility_id: int
    model: str
    kind: MaintenanceKind
    interval_days: int


class MaintenanceCreate(Request):
    """Work done on a pump."""

    serial: Code
    kind: MaintenanceKind
    result: MaintenanceResult = MaintenanceResult.PASS
    performed_at: datetime | None = None
    battery_health_percent: int | None = Field(default=None, ge=0, le=100)
    from_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    to_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    notes: Text = ""


class MaintenanceOut(Response):
    """A maintenance record."""

    id: int
    serial: str
    kind: MaintenanceKind
    performed_at: datetime
    performed_by: int | None
    result: MaintenanceResult
    battery_health_percent: int | None
    from_version: str | None
    to_version: str | None
    notes: str


class DueOut(Response):
    """Preventive work that is due or overdue."""

    serial: str
    model: str
    facility_id: int
    kind: MaintenanceKind
    last_done: datetime | None
    due_at: datetime
    is_overdue: bool


class FaultCreate(Request):
    """A fault or damage report."""

    serial: Code
    category: FaultCategory
    description: Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class FaultResolve(Request):
    """How a fault was resolved."""

    resolution: Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class FaultOut(Response):
    """A fault report."""

    id: int
    serial: str
    category: FaultCategory
    description: str
    status: FaultStatus
    reported_by: int | None
    reported_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class RecallCreate(Request):
    """A manufacturer recall or field action."""

    reference: Code
    title: Name
    model: Code
    firmware: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    description: Text = ""
    issued_at: datetime | None = None


class RecallComplete(Request):
    """Notes on a completed recall action."""

    notes: Text = ""


class RecallOut(Response):
    """A recall and its progress in the caller's facilities."""

    id: int
    reference: str
    title: str
    model: str
    firmware: str | None
    description: str
    issued_at: datetime
    affected_serials: list[str]
    completed_serials: list[str]


class FlagsOut(Response):
    """Pumps newly flagged for inspection."""

    flagged_serials: list[str]


class LibraryCreate(Request):
    """Start a draft: from a library document, from a version, or (neither) from the released one."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    document: dict[str, Any] | None = None
    based_on_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ApprovalOut(Response):
    """An approval and whether it still covers the current content."""

    approver_id: int
    content_hash: str
    approved_at: datetime
    is_emergency: bool
    comment: str
    is_current: bool
    role: Role


class LibraryOut(Response):
    """A library version's lifecycle record (the document is at ``/document``)."""

    id: int
    facility_id: int
    name: str
    version: int
    status: LibraryStatus
    content_hash: str
    author_id: int
    based_on_id: int | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    released_at: datetime | None
    retired_at: datetime | None
    key_id: str | None
    is_emergency: bool
    emergency_reason: str | None


class ApprovalCreate(Request):
    """Approve the current content; ``emergency`` approvals may precede review (emergency path)."""

    comment: Text = ""
    emergency: bool = False
    role: Role | None = Field(
        default=None, description="the role the approval is given in (default: one the policy still needs)"
    )


class EmergencyRelease(Request):
    """Why a library must be released outside the review queue."""

    reason: Reason


class FindingOut(Response):
    """A lint finding."""

    rule: str
    severity: Literal["error", "warning", "info"]
    where: str
    message: str


class ChangeOut(Response):
    """One difference between two versions."""

    kind: Literal["added", "removed", "changed"]
    section: str
    where: str
    parameter: str
    old: str | None
    new: str | None
    factor: Decimal | None
    flagged: bool


class DiffOut(Response):
    """Differences from ``old_version`` to ``new_version`` (null against when nothing was released)."""

    against_id: int | None
    old_version: int | None
    new_version: int
    changes: list[ChangeOut]


class OverdueReviewOut(Response):
    """An entry whose periodic review is overdue."""

    library_id: int
    facility_id: int
    version: int
    entry_id: str
    drug_id: str
    care_area_id: str
    last_reviewed: str | None
    due: str | None


class AreaCoverageOut(Response):
    """One care area's coverage: entries, drugs, unprotected high-alert entries, common classes it lacks."""

    care_area_id: str
    name: str
    entries: int
    drugs: int
    high_alert_without_hard_max: list[str]
    missing_common_classes: list[str]


class SearchMatchOut(Response):
    """An entry found by a drug name: the name matched and the drug's shown (Tall Man) name."""

    entry_id: str
    care_area_id: str
    drug_id: str
    drug: str
    matched: str


class SearchOut(Response):
    """Entries whose drug answers to the query; ``did_you_mean`` when there are none."""

    query: str
    matches: list[SearchMatchOut]
    did_you_mean: list[str]


class CoverageOut(Response):
    """A library's care-area coverage (a class is common when more than half the care areas carry it)."""

    library_id: int
    version: int
    common_classes: list[str]
    areas: list[AreaCoverageOut]


class ChangeRequestCreate(Request):
    """Ask for a library change, with the reason."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    library_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    title: Name
    reason: Reason
    severity: ChangeRequestSeverity = ChangeRequestSeverity.MEDIUM


class ChangeRequestLink(Request):
    """The draft that resolves a change request."""

    library_id: int = Field(ge=1, le=2**31 - 1)


class ChangeRequestDecision(Request):
    """Accept, reject or close a change request."""

    status: Literal["accepted", "rejected", "done"]
    note: Text = ""


class ChangeRequestOut(Response):
    """A change request."""

    id: int
    facility_id: int
    library_version_id: int | None
    title: str
    reason: str
    status: ChangeRequestStatus
    requested_by: int | None
    created_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None
    severity: ChangeRequestSeverity
    resolved_by_id: int | None


class ReleasePolicyIn(Request):
    """A facility's release policy: at least ``min_approvers`` distinct approvers, with each listed role
    among them (a role listed twice needs two); a pharmacy approver is always required."""

    min_approvers: int = Field(ge=2, le=6)
    required_roles: list[Role] = Field(min_length=1, max_length=6)


class ReleasePolicyOut(Response):
    """A facility's release policy (``is_default``: none stored, the default applies)."""

    facility_id: int
    min_approvers: int
    required_roles: list[Role]
    is_default: bool
    description: str


class PolicyStandingOut(Response):
    """How a version's current approvals stand against its facility's release policy."""

    policy: ReleasePolicyOut
    approvals: list[dict[str, Any]]
    missing: list[str]
    satisfied: bool


class ConfigurationCreate(Request):
    """A configuration draft for one pump model of a facility; settings left out take the model's factory
    values (decimals such as ``max_rate_ml_per_h`` are read exactly; text like ``"500"`` is accepted)."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    model: Code
    name: Name
    settings: dict[str, Any] = Field(default_factory=dict)


class ConfigurationDefaults(Request):
    """Restore the trusted default: a new draft holding the model's factory settings."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    model: Code
    name: Name | None = None


class ConfigurationOut(Response):
    """A configuration version: its settings, lifecycle and who created and released it."""

    id: int
    facility_id: int
    model: str
    version: int
    name: str
    status: ConfigurationStatus
    settings: dict[str, Any]
    content_sha256: str
    created_by: int
    created_at: datetime
    released_by: int | None
    released_at: datetime | None
    key_id: str | None


class ConfigurationCurrencyOut(Response):
    """Per facility and model: the newest released configuration, pumps per active version (0: factory
    default), pumps not on it."""

    facility_id: int
    model: str
    released_version: int | None
    pumps_by_version: dict[str, int]
    current: int
    outdated_serials: list[str]


class PatientAssociate(Request):
    """Associate a patient with a pump: PID-3 identifier, assigning authority and type, PID-5 legal name."""

    patient_id: str = Field(min_length=1, max_length=64)
    authority: str = Field(default="", max_length=64)
    id_type: str = Field(default="MR", max_length=8)
    family_name: str = Field(default="", max_length=64)
    given_name: str = Field(default="", max_length=64)


class PatientOut(Response):
    """A pump's current patient and where the association came from (scan, entry, server, order)."""

    pump: str
    patient_id: str
    authority: str
    id_type: str
    family_name: str
    given_name: str
    source: str
    actor: str
    recorded_at: datetime
