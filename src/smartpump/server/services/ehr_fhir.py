"""FHIR R4 views of the server's records (Device, DeviceMetric, MedicationAdministration, Observation) and
MedicationRequest intake through the same path as PCD-03.

Resources come from ``interop.fhir.mappers`` (each validated with fhir.resources R4B); searches answer a
``searchset`` Bundle. Administrations and readings name a patient, so they are PHI: only clinical roles
read them, within their facilities, and every such read is audited (``phi.fhir_read``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Final, cast

from sqlalchemy.orm import Session

from smartpump.errors import UnitError
from smartpump.interop.fhir.mappers import (
    FhirMappingError,
    JsonValue,
    Resource,
    authored_on_date,
    device,
    device_metrics,
    medication_administration,
    medication_request,
    medication_request_to_order,
    observation,
)
from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.pcd03 import DEFAULT_MAX_ORDER_AGE, OrderRejected
from smartpump.interop.hl7v2.reports import DeliveryStatus, SourceChannel
from smartpump.pump.events import EventType
from smartpump.server import audit
from smartpump.server.auth import PHI_ROLES, Access
from smartpump.server.db.models import Event, Pump
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.repositories import ehr as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services.context import ClockContext, OrderContext
from smartpump.server.services.ehr import (
    SOURCE_FHIR,
    device_identity,
    event_data,
    link_orders,
    submit_order,
)
from smartpump.server.services.ehr_outcomes import settle_offers
from smartpump.units import DoseUnit

PIV_SYSTEM: Final = "urn:oid:1.3.6.1.4.1.19376.1.6.1.3.1"
ERROR_SYSTEM: Final = "urn:smartpump:error-code"
"""CodeSystem of the API's stable error codes, as carried in an OperationOutcome issue's ``details``."""
READING_TYPES: Final = (
    EventType.INFUSION_STARTED,
    EventType.RATE_CHANGED,
    EventType.INFUSION_STOPPED,
    EventType.INFUSION_COMPLETED,
)


def operation_outcome(
    *,
    code: str,
    text: str,
    severity: str = "error",
    piv_code: int | None = None,
    error_code: str | None = None,
) -> Resource:
    """An OperationOutcome with one issue; a PIV refusal carries its code in ``details``, an API error its
    stable error code (``pump.not_found``...) under ``ERROR_SYSTEM``."""
    issue: dict[str, JsonValue] = {"severity": severity, "code": code, "diagnostics": text}
    if error_code is not None:
        issue["details"] = {"coding": [{"system": ERROR_SYSTEM, "code": error_code}], "text": text}
    if piv_code is not None:
        issue["details"] = {
            "coding": [
                {"system": PIV_SYSTEM, "code": str(piv_code), "display": codes.PIV_ERRORS.get(piv_code, "")}
            ],
            "text": text,
        }
    return _validated({"resourceType": "OperationOutcome", "issue": [issue]})


def _validated(resource: Resource) -> Resource:
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(str(resource["resourceType"])).model_validate(resource)
    return cast(Resource, model.model_dump(mode="json", exclude_none=True))


def bundle(resources: Sequence[tuple[Resource, str]], total: int, *, base_url: str) -> Resource:
    """A searchset Bundle of (resource, search mode) pairs; ``fullUrl`` is absolute under ``base_url``."""
    entries: list[JsonValue] = [
        {
            "fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": mode},
        }
        for r, mode in resources
    ]
    return _validated({"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries})


@dataclass(frozen=True, slots=True, kw_only=True)
class DateRange:
    """A FHIR ``date`` search as a half-open UTC interval (either end may be open)."""

    since: datetime | None = None
    until: datetime | None = None


def parse_dates(values: Sequence[str]) -> DateRange:
    """Read ``date`` parameters (``ge``/``gt``/``le``/``lt``/``eq`` + a date or an instant, UTC if naive).

    Raises:
        InvalidInputError: ``fhir.date`` for anything else.
    """
    since: datetime | None = None
    until: datetime | None = None
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", raw)
        try:
            if len(text) == 10:
                start = datetime.combine(datetime.fromisoformat(text).date(), time(), tzinfo=UTC)
                end = start + timedelta(days=1)
            else:
                start = datetime.fromisoformat(text.replace("Z", "+00:00"))
                start = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
                end = start + timedelta(microseconds=1)
        except ValueError:
            raise InvalidInputError(f"date {raw!r} is not a FHIR date search", code="fhir.date") from None
        if prefix in ("ge", "eq"):
            since = start if since is None else max(since, start)
        if prefix == "gt":
            since = end if since is None else max(since, end)
        if prefix in ("le", "eq"):
            until = end if until is None else min(until, end)
        if prefix == "lt":
            until = start if until is None else min(until, start)
    return DateRange(since=since, until=until)


def _visible_pump(session: Session, access: Access, serial: str) -> Pump:
    pump = fleet_repo.pump_by_serial(session, serial)
    if pump is None or not access.allows(pump.facility_id):
        raise NotFoundError(f"no pump {serial!r}", code="pump.not_found")
    return pump


def device_resource(session: Session, access: Access, serial: str) -> Resource:
    """The Device of a pump the caller may see (404 otherwise)."""
    return _device(_visible_pump(session, access, serial))


def _device(pump: Pump) -> Resource:
    version = pump.installed_library_version
    return device(
        device_identity(pump),
        serial=pump.serial,
        library_version=str(version) if version is not None else "none",
        firmware=pump.firmware,
    )


def search_devices(
    session: Session, access: Access, *, identifier: str | None, limit: int, offset: int, base_url: str
) -> Resource:
    """Devices of the caller's facilities (by serial or EUI-64 identifier), each with its channels'
    DeviceMetrics included."""
    if identifier is not None:
        value = identifier.rpartition("|")[2]
        pumps = [
            p
            for p in fleet_repo.all_pumps(session, facility_ids=access.scope)
            if value in (p.serial, device_identity(p).eui64)
        ]
        total, page = len(pumps), pumps[offset : offset + limit]
    else:
        rows, total = fleet_repo.list_pumps(session, facility_ids=access.scope, limit=limit, offset=offset)
        page = list(rows)
    resources: list[tuple[Resource, str]] = []
    for pump in page:
        resources.append((_device(pump), "match"))
        for channel in fleet_repo.channels_of(session, pump.id):
            resources.extend((m, "include") for m in device_metrics(device_identity(pump), channel.channel))
    return bundle(resources, total, base_url=base_url)


def _phi_scope(access: Access) -> frozenset[int] | None:
    return access.principal.scope(PHI_ROLES & access.roles)


def _audit_read(
    session: Session,
    state: OrderContext,
    access: Access,
    resource_type: str,
    filters: Mapping[str, Any],
    patients: set[str],
) -> None:
    audit.append(
        session,
        state.clock,
        actor=access.principal.username,
        action="phi.fhir_read",
        object_type=resource_type[:32],
        details={**filters, "patients_returned": sorted(patients)},
    )


def medication_administrations(
    session: Session,
    state: OrderContext,
    access: Access,
    *,
    patient: str | None,
    request: str | None,
    dates: DateRange,
    limit: int,
    offset: int,
    base_url: str,
) -> Resource:
    """Infusions started from orders as MedicationAdministrations (device: pump, request: order); audited."""
    link_orders(session, state.clock)
    order_id = request.removeprefix("MedicationRequest/") if request is not None else None
    rows, total = repo.orders(
        session,
        facility_ids=_phi_scope(access),
        patient_id=patient.removeprefix("Patient/") if patient is not None else None,
        order_id=order_id,
        started_since=dates.since,
        started_until=dates.until,
        limit=limit,
        offset=offset,
    )
    resources = [(_administration(session, row), "match") for row in rows]
    _audit_read(
        session,
        state,
        access,
        "MedicationAdministration",
        {"patient_filter": patient, "request_filter": request, "count": len(resources)},
        {row.patient_id for row in rows},
    )
    return bundle(resources, total, base_url=base_url)


def _administration(session: Session, order: EhrOrder) -> Resource:
    pump = fleet_repo.pump_by_id(session, order.pump_id or 0)
    start = repo.event_by_id(session, order.start_event_id or 0)
    assert pump is not None and start is not None
    data = event_data(start)
    unit = _unit(data.get("dose_unit"))
    source = SourceChannel(
        delivery_status=DeliveryStatus.DELIVERING,
        rate_ml_per_h=decimal_or_none(data.get("rate_ml_per_h")),
        dose_rate=decimal_or_none(data.get("dose")),
        dose_unit=unit,
        drug_name=str(data.get("drug") or order.drug),
    )
    status = {
        "started": "in-progress",
        "delivering": "in-progress",
        "applied": "completed",
        "completed": "completed",
        "stopped": "stopped",
    }.get(order.status, "unknown")
    return medication_administration(
        administration_id=f"{pump.serial}-{start.seq}",
        identity=device_identity(pump),
        patient_id=order.patient_id,
        order_id=order.order_id,
        source=source,
        started_at=start.ts,
        ended_at=order.ended_at,
        status=status,
    )


def observations(
    session: Session,
    state: OrderContext,
    access: Access,
    *,
    device_ref: str | None,
    dates: DateRange,
    limit: int,
    offset: int,
    base_url: str,
) -> Resource:
    """Pump readings (rate set, volume infused) of ordered infusions as Observations; audited."""
    link_orders(session, state.clock)
    pump_id = None
    if device_ref is not None:
        pump_id = _visible_pump(session, access, device_ref.removeprefix("Device/")).id
    rows, _ = repo.orders(session, facility_ids=_phi_scope(access), pump_id=pump_id, limit=10_000, offset=0)
    readings: list[Resource] = []
    for order in rows:
        pump = fleet_repo.pump_by_id(session, order.pump_id or 0)
        assert pump is not None and order.start_event_id is not None
        events = repo.infusion_events(
            session, pump.id, order.channel, order.start_event_id, order.end_event_id, READING_TYPES
        )
        readings.extend(r for e in events if _in(e.ts, dates) for r in _readings(pump, order, e))
    readings.sort(key=lambda r: (str(r["effectiveDateTime"]), str(r["id"])))
    page = readings[offset : offset + limit]
    _audit_read(
        session,
        state,
        access,
        "Observation",
        {"device_filter": device_ref, "count": len(page)},
        {
            str(r["subject"]["reference"]).removeprefix("Patient/")
            for r in page
            if isinstance(r["subject"], dict)
        },
    )
    return bundle([(r, "match") for r in page], len(readings), base_url=base_url)


def _in(ts: datetime, dates: DateRange) -> bool:
    return (dates.since is None or ts >= dates.since) and (dates.until is None or ts < dates.until)


def _readings(pump: Pump, order: EhrOrder, event: Event) -> list[Resource]:
    data = event_data(event)
    items: list[tuple[str, str, Decimal | None, codes.UnitCode]] = []
    if event.type == EventType.INFUSION_STARTED:
        items.append(
            ("rate", "MDC_FLOW_FLUID_PUMP", decimal_or_none(data.get("rate_ml_per_h")), codes.ML_PER_H)
        )
    elif event.type == EventType.RATE_CHANGED:
        items.append(
            ("rate", "MDC_FLOW_FLUID_PUMP", decimal_or_none(data.get("new_rate_ml_per_h")), codes.ML_PER_H)
        )
    else:
        items.append(
            ("volume", "MDC_VOL_FLUID_DELIV_TOTAL", decimal_or_none(data.get("infused_ml")), codes.ML)
        )
    identity = device_identity(pump)
    return [
        observation(
            observation_id=f"{pump.serial}-{event.seq}-{name}",
            identity=identity,
            patient_id=order.patient_id,
            refid=refid,
            value=value,
            unit=unit,
            observed_at=event.ts,
            metric_id=f"{pump.serial}-{order.channel}-{'rate' if name == 'rate' else 'volume-infused'}",
        )
        for name, refid, value, unit in items
        if value is not None
    ]


def _unit(value: object) -> DoseUnit | None:
    try:
        return DoseUnit.parse(str(value)) if value else None
    except UnitError:
        return None


def submit_medication_request(
    session: Session, state: OrderContext, access: Access, body: object
) -> tuple[int, Resource]:
    """Take a MedicationRequest through the PCD-03 path: 201 with the accepted request (``status`` active),
    or an OperationOutcome: 422 with the PIV code when refused, 400 when it is not a MedicationRequest.

    A repeat of an accepted order id by the same user answers the stored outcome and offers nothing again.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "MedicationRequest":
        return 400, operation_outcome(code="structure", text="the body must be a MedicationRequest")
    resource = cast(dict[str, JsonValue], json.loads(json.dumps(body, default=str)))
    sender = f"FHIR:{access.principal.username}"
    zone = state.settings.hl7_zone
    try:
        order = medication_request_to_order(resource, local_zone=zone)
        _check_authored_day(authored_on_date(resource.get("authoredOn")), state.clock.now(), zone)
    except FhirMappingError as error:
        return 400, operation_outcome(code="invalid", text=error.message)
    except OrderRejected as rejection:
        return 422, _refusal(rejection.error_code, rejection.reason)
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        return 400, operation_outcome(code="invalid", text=f"the MedicationRequest cannot be read: {error!r}")
    previous = (
        repo.orders_of_request(session, SOURCE_FHIR, sender, order.order_id) if order.order_id else None
    )
    if previous is not None and previous.status != "rejected":
        _bring_up_to_date(session, state, previous)
        return 200, _accepted(resource, previous)
    decision = submit_order(
        session,
        state,
        order,
        source=SOURCE_FHIR,
        sender=sender,
        actor=access.principal.username,
        scope=access.scope,
    )
    if decision.rejection is not None:
        return 422, _refusal(decision.rejection.error_code, decision.rejection.reason)
    stored = repo.orders_of_request(session, SOURCE_FHIR, sender, order.order_id)
    assert stored is not None
    return 201, _accepted(resource, stored)


def _check_authored_day(day: str, now: datetime, zone: tzinfo) -> None:
    """A date-only ``authoredOn`` gives no time to judge the order's age by: it is refused as stale (9022)
    only when even the last instant of that date (in the facility time zone) is older than the age limit.

    Raises:
        OrderRejected: 9022 for such a date.
    """
    if not day:
        return
    parts = [int(p) for p in day.split("-")]
    year, month = parts[0], parts[1] if len(parts) > 1 else 12
    if len(parts) > 2:
        end = datetime(year, month, parts[2], tzinfo=zone) + timedelta(days=1)
    else:
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    if now - end.astimezone(UTC) > DEFAULT_MAX_ORDER_AGE:
        raise OrderRejected(9022, f"the order was authored on {day}, longer than {DEFAULT_MAX_ORDER_AGE} ago")


def _refusal(piv_code: int, reason: str) -> Resource:
    return operation_outcome(code="business-rule", text=reason, piv_code=piv_code)


def _accepted(resource: dict[str, JsonValue], order: EhrOrder) -> Resource:
    """The submitted resource as stored: our id, and the status of the order's outcome so far."""
    current = _request(order)
    accepted = {**resource, "id": current["id"], "status": current["status"]}
    if "statusReason" in current:
        accepted["statusReason"] = current["statusReason"]
    return _validated(accepted)


def _request(order: EhrOrder) -> Resource:
    return medication_request(
        order_id=order.order_id,
        order_status=order.status,
        patient_id=order.patient_id,
        drug_name=order.drug,
        pump_serial=order.pump_serial,
        outcome_code=order.outcome_code,
        reason=order.reason,
        prescriber_id=order.prescriber_id,
        prescriber_name=order.prescriber_name,
    )


def _bring_up_to_date(session: Session, state: ClockContext, order: EhrOrder) -> None:
    """Link the order to its infusion and settle its offer (declined, refused, expired)."""
    link_orders(session, state.clock)
    if order.status == "offered" and order.pump_id is not None:
        settle_offers(session, state.clock.now(), pump_id=order.pump_id, channel=order.channel, expire=True)


def read_medication_request(session: Session, state: OrderContext, access: Access, order_id: str) -> Resource:
    """The newest order with this id in the caller's facilities as a MedicationRequest whose status is its
    outcome (404 otherwise); audited as a PHI read."""
    order = repo.newest_order(session, order_id, facility_ids=_phi_scope(access))
    if order is None:
        raise NotFoundError(f"no MedicationRequest {order_id!r}", code="fhir.not_found")
    _bring_up_to_date(session, state, order)
    resource = _request(order)
    _audit_read(session, state, access, "MedicationRequest", {"id": order_id}, {order.patient_id})
    return resource
