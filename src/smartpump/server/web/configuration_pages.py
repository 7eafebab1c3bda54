"""Pump configuration pages: versions per facility and model with the fleet's configuration currency, one
version's settings beside the factory defaults and the deployments that carried it, and for biomedical
engineering the new-draft, restore-defaults, release and deploy forms.

Every action goes through the service the API uses (``services.configurations``,
``services.deployment``); a refusal is shown on the page next to its form with the service's message and
code, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from smartpump.errors import SmartpumpError
from smartpump.pump.capabilities import PumpModel
from smartpump.pump.configuration import factory_settings
from smartpump.pump.configuration_guide import SETTING_GUIDE, accepted_values, shown_value
from smartpump.server.api.deps import ClockDep, SessionDep, StateDep, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import Access, Role
from smartpump.server.db.models_fleet_ops import ConfigurationVersion
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import InvalidInputError
from smartpump.server.services import configurations as service
from smartpump.server.services import deployment
from smartpump.server.services import users as users_service
from smartpump.server.services.deployment import DeploymentKind, TargetKind
from smartpump.server.vocabulary import ConfigurationStatus
from smartpump.server.web import configuration_form
from smartpump.server.web.configuration_form import FIELD_CHARS, Errors
from smartpump.server.web.render import CONFIGURATION_READERS, render
from smartpump.server.web.session import CsrfChecked

router = APIRouter(include_in_schema=False)
Reader = Annotated[Access, require_roles(*CONFIGURATION_READERS)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
ConfigurationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
FacilityField = Annotated[int, Form(ge=1, le=2**31 - 1)]
ModelField = Annotated[str, Form(max_length=64)]
SettingField = Annotated[str, Form(max_length=FIELD_CHARS)]
MAX_VERSIONS: Final = 500
BIOMED_ROLES: Final = frozenset({Role.BIOMED})
DEFAULT_WAVES: Final = "100"
DEFAULT_PAUSE_S: Final = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A refused action as the page shows it above its form: which form, the service's message, the code."""

    form: str
    message: str
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionGroup:
    """The versions of one pump model in one facility, newest first."""

    facility_id: int
    model: str
    versions: list[ConfigurationVersion]


def _reader(access: Access) -> Access:
    """The caller as a reader: what a page shows does not depend on the form's role."""
    return Access(principal=access.principal, roles=CONFIGURATION_READERS)


def _usernames(session: Session, user_ids: set[int]) -> dict[int, str]:
    users = {user_id: users_repo.user_by_id(session, user_id) for user_id in user_ids}
    return {user_id: "?" if user is None else user.username for user_id, user in users.items()}


def _groups(versions: Sequence[ConfigurationVersion]) -> list[VersionGroup]:
    groups: dict[tuple[int, str], VersionGroup] = {}
    for row in versions:
        key = (row.facility_id, row.model)
        groups.setdefault(key, VersionGroup(facility_id=row.facility_id, model=row.model, versions=[]))
        groups[key].versions.append(row)
    return list(groups.values())


def _list_page(
    request: Request,
    access: Access,
    session: Session,
    *,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
    refusal: Refusal | None = None,
    status_code: int = 200,
) -> Response:
    reader = _reader(access)
    versions, total = service.list_versions(
        session, reader, facility_id=None, model=None, status=None, limit=MAX_VERSIONS, offset=0
    )
    facilities = users_service.list_facilities(session, reader)
    authoring = (
        users_service.list_facilities(session, Access(principal=access.principal, roles=BIOMED_ROLES))
        if access.principal.has_any_role(BIOMED_ROLES)
        else []
    )
    people = {v.created_by for v in versions} | {v.released_by for v in versions if v.released_by}
    models = [m.value for m in PumpModel]
    return render(
        request,
        "configurations.html",
        principal=access.principal,
        active="configurations",
        groups=_groups(versions),
        shown=len(versions),
        total=total,
        currency=service.configuration_currency(session, reader),
        facility_names={f.id: f"{f.name} ({f.code})" for f in facilities},
        usernames=_usernames(session, people),
        authoring=authoring,
        models=models,
        guide=SETTING_GUIDE,
        factory={m: factory_settings(m).to_dict() for m in models},
        accepted={m: {g.key: accepted_values(g.key, m) for g in SETTING_GUIDE} for m in models},
        shown_value=shown_value,
        values=values or {},
        errors=errors or {},
        refusal=refusal,
        status_code=status_code,
    )


@router.get("/ui/configurations")
def configurations_page(request: Request, access: Reader, session: SessionDep) -> Response:
    """Configuration versions per facility and model, configuration currency, and (biomed) the forms."""
    return _list_page(request, access, session)


@router.post("/ui/configurations")
def new_draft(
    request: Request,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    facility_id: FacilityField,
    model: ModelField,
    name: Annotated[str, Form(max_length=1000)] = "",
    max_rate_ml_per_h: SettingField = "",
    require_verification: SettingField = "",
    near_end_alert_min: SettingField = "",
    kvo_rate_ml_per_h: SettingField = "",
    set_change_interval_h: SettingField = "",
) -> Response:
    """Draft a configuration; each refused setting is shown next to its field and nothing is stored."""
    values = {
        "facility_id": str(facility_id),
        "model": model,
        "name": name,
        "max_rate_ml_per_h": max_rate_ml_per_h,
        "require_verification": require_verification,
        "near_end_alert_min": near_end_alert_min,
        "kvo_rate_ml_per_h": kvo_rate_ml_per_h,
        "set_change_interval_h": set_change_interval_h,
    }
    try:
        row = service.create_draft(
            session,
            clock,
            access,
            facility_id=facility_id,
            model=model,
            name=name,
            settings=configuration_form.settings_of(values),
        )
    except SmartpumpError as error:
        session.rollback()
        errors, general = configuration_form.field_errors(error)
        message = "; ".join(general) or (
            "Nothing was saved: correct the fields marked below." if errors else error.message
        )
        return _list_page(
            request,
            access,
            session,
            values=values,
            errors=errors,
            refusal=Refusal(form="draft", message=message, code=error.code),
            status_code=status_for(error),
        )
    return RedirectResponse(f"/ui/configurations/{row.id}", status_code=303)


@router.post("/ui/configurations/restore-defaults")
def restore_defaults(
    request: Request,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    facility_id: FacilityField,
    model: ModelField,
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Draft the model's factory settings as the next version (release and deploy it as usual)."""
    try:
        row = service.restore_defaults(
            session, clock, access, facility_id=facility_id, model=model, name=name.strip() or None
        )
    except SmartpumpError as error:
        session.rollback()
        errors, general = configuration_form.field_errors(error)
        problems = general + [f"{field}: {message}" for field, message in errors.items()]
        return _list_page(
            request,
            access,
            session,
            refusal=Refusal(
                form="defaults", message="; ".join(problems) if problems else error.message, code=error.code
            ),
            status_code=status_for(error),
        )
    return RedirectResponse(f"/ui/configurations/{row.id}", status_code=303)


def _detail_page(
    request: Request,
    access: Access,
    session: Session,
    configuration_id: int,
    *,
    refusal: Refusal | None = None,
    deploy_values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    reader = _reader(access)
    row = service.get_version(session, reader, configuration_id)
    settings = service.settings_of(row)
    factory = factory_settings(row.model).to_dict()
    facility = users_repo.facility_by_id(session, row.facility_id)
    biomed_here = Role.BIOMED in access.principal.roles_in(row.facility_id)
    status = ConfigurationStatus(row.status)
    people = {row.created_by} | ({row.released_by} if row.released_by else set())
    rows: list[dict[str, Any]] = [
        {
            "guide": g,
            "value": shown_value(settings.get(g.key)),
            "factory": shown_value(factory[g.key]),
            "accepted": accepted_values(g.key, row.model),
            "changed": settings.get(g.key) != factory[g.key],
        }
        for g in SETTING_GUIDE
    ]
    return render(
        request,
        "configuration.html",
        principal=access.principal,
        active="configurations",
        row=row,
        facility_name="?" if facility is None else f"{facility.name} ({facility.code})",
        settings=rows,
        usernames=_usernames(session, people),
        deployments=deployment.list_deployments(session, reader, configuration_id=row.id),
        can_release=biomed_here and status is ConfigurationStatus.DRAFT,
        can_deploy=biomed_here and status is ConfigurationStatus.RELEASED,
        target_kinds=[k.value for k in TargetKind],
        deploy=deploy_values
        or {"target_kind": TargetKind.ALL.value, "waves": DEFAULT_WAVES, "pause_s": str(DEFAULT_PAUSE_S)},
        refusal=refusal,
        status_code=status_code,
    )


@router.get("/ui/configurations/{configuration_id}")
def configuration_page(
    request: Request, configuration_id: ConfigurationId, access: Reader, session: SessionDep
) -> Response:
    """One version: each setting with its meaning and unit beside the factory default, and its deployments."""
    return _detail_page(request, access, session, configuration_id)


@router.post("/ui/configurations/{configuration_id}/release")
def release(
    request: Request,
    configuration_id: ConfigurationId,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
) -> Response:
    """Sign a draft with the server key (never by its author: a second biomedical engineer releases it)."""
    try:
        service.release(session, state.clock, state.keys, access, configuration_id)
    except SmartpumpError as error:
        session.rollback()
        return _detail_page(
            request,
            access,
            session,
            configuration_id,
            refusal=Refusal(form="release", message=error.message, code=error.code),
            status_code=status_for(error),
        )
    return RedirectResponse(f"/ui/configurations/{configuration_id}", status_code=303)


@router.post("/ui/configurations/{configuration_id}/deploy")
def deploy(
    request: Request,
    configuration_id: ConfigurationId,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    target_kind: Annotated[str, Form(max_length=16)],
    target_value: Annotated[str, Form(max_length=64)] = "",
    waves: Annotated[str, Form(max_length=64)] = DEFAULT_WAVES,
    pause_s: Annotated[int, Form(ge=0, le=7 * 24 * 3600)] = DEFAULT_PAUSE_S,
) -> Response:
    """Offer a released configuration to a pump, a care area, the model or all pumps, in waves, through
    the deployment service the API uses (it goes only to pumps of the configuration's model)."""
    try:
        row = service.get_version(session, access, configuration_id)
        try:
            kind = TargetKind(target_kind)
        except ValueError:
            raise InvalidInputError(
                f"the target is one of {', '.join(k.value for k in TargetKind)}", code="deployment.target"
            ) from None
        deployment.create_deployment(
            session,
            state,
            access,
            facility_id=row.facility_id,
            kind=DeploymentKind.CONFIGURATION,
            library_id=None,
            package_id=None,
            target_kind=kind,
            target_value=target_value.strip() or None,
            waves=configuration_form.waves_of(waves),
            pause_s=pause_s,
            configuration_id=row.id,
        )
    except SmartpumpError as error:
        session.rollback()
        return _detail_page(
            request,
            access,
            session,
            configuration_id,
            refusal=Refusal(form="deploy", message=error.message, code=error.code),
            deploy_values={
                "target_kind": target_kind,
                "target_value": target_value,
                "waves": waves,
                "pause_s": str(pause_s),
            },
            status_code=status_for(error),
        )
    return RedirectResponse(f"/ui/configurations/{configuration_id}#deployments", status_code=303)
