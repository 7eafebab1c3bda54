"""FHIR R4 mappers: pumps (Device, DeviceMetric), infusions (MedicationAdministration), readings
(Observation), and MedicationRequest -> InfusionOrder (the PCD-03 path).

Every resource we produce is validated by constructing its ``fhir.resources.R4B`` model (R4B and R4
are identical for these resources) and leaves this module as plain JSON values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Final, cast

from pydantic import ValidationError

from smartpump.errors import SmartpumpError, UnitError
from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.message import names_one_instant
from smartpump.interop.hl7v2.pcd03 import InfusionOrder, OrderRejected, OrderStep
from smartpump.interop.hl7v2.reports import DeviceIdentity, SourceChannel
from smartpump.units import Concentration, DoseUnit, format_decimal

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
Resource = dict[str, JsonValue]
UCUM: Final = "http://unitsofmeasure.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
EUI64: Final = "urn:ieee:eui-64"
LOINC_WEIGHT: Final = "29463-7"
ORDER_SYSTEM: Final = "urn:smartpump:order-id"
CHANNEL_EXTENSION: Final = "urn:smartpump:fhir:extension:pump-channel"
"""MedicationRequest extension (``valueString`` A-D): the pump channel an order is for (A when absent)."""
OUTCOME_SYSTEM: Final = "urn:smartpump:order-outcome"
"""MedicationRequest.statusReason coding system: our outcome code (decline reason, pump refusal code,
``offer.expired``) for an order that ended without an infusion."""
REQUEST_STATUS: Final = {
    "offered": "active",
    "started": "active",
    "delivering": "active",
    "applied": "completed",
    "completed": "completed",
    "stopped": "stopped",
    "declined": "cancelled",
    "refused": "cancelled",
    "expired": "cancelled",
    "rejected": "cancelled",
}
"""MedicationRequest.status for each order status (docs/interop.md "MedicationRequest status")."""
_DATE_ONLY: Final = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


class FhirMappingError(SmartpumpError, ValueError):
    """A resource that does not validate, or a MedicationRequest we cannot read as an order."""

    code = "fhir.invalid"


def validated(resource: Resource) -> Resource:
    """The resource after a round trip through its fhir.resources R4B model."""
    from fhir.resources.R4B import get_fhir_model_class

    resource_type = str(resource["resourceType"])
    try:
        model = get_fhir_model_class(resource_type).model_validate(resource)
    except (ValidationError, KeyError, ValueError) as error:
        raise FhirMappingError(f"{resource_type} does not validate: {error}", code="fhir.invalid") from None
    return cast(Resource, model.model_dump(mode="json", exclude_none=True))


def _quantity(value: Decimal, unit: codes.UnitCode) -> Resource:
    return {"value": float(value), "unit": unit.ucum, "system": UCUM, "code": unit.ucum}


def _mdc(refid: str) -> Resource:
    term = codes.term(refid)
    return {"coding": [{"system": MDC, "code": str(term.code), "display": term.refid}]}


def device(identity: DeviceIdentity, *, serial: str, library_version: str, firmware: str = "") -> Resource:
    """The pump as a Device: identifiers (serial, EUI-64), type (MDC MDS), versions incl. the library."""
    versions: list[JsonValue] = [{"type": {"text": "drug-library"}, "value": library_version}]
    if firmware:
        versions.append({"type": {"text": "firmware"}, "value": firmware})
    return validated(
        {
            "resourceType": "Device",
            "id": identity.device_id,
            "identifier": [
                {"type": {"text": "serial"}, "value": serial},
                {"system": EUI64, "value": identity.eui64},
            ],
            "serialNumber": serial,
            "status": "active",
            "type": _mdc(identity.mds_refid),
            "version": versions,
        }
    )


def device_metrics(identity: DeviceIdentity, channel: str) -> list[Resource]:
    """DeviceMetrics of one channel: rate (setting), VTBI (setting), volume infused (measurement)."""
    items = (
        ("rate", "MDC_FLOW_FLUID_PUMP", codes.ML_PER_H, "setting"),
        ("vtbi", "MDC_VOL_FLUID_TBI", codes.ML, "setting"),
        ("volume-infused", "MDC_VOL_FLUID_DELIV_TOTAL", codes.ML, "measurement"),
    )
    return [
        validated(
            {
                "resourceType": "DeviceMetric",
                "id": f"{identity.device_id}-{channel}-{name}",
                "type": _mdc(refid),
                "unit": {"coding": [{"system": UCUM, "code": unit.ucum}]},
                "source": {"reference": f"Device/{identity.device_id}"},
                "operationalStatus": "on",
                "category": category,
            }
        )
        for name, refid, unit, category in items
    ]


def medication_administration(
    *,
    administration_id: str,
    identity: DeviceIdentity,
    patient_id: str,
    order_id: str,
    source: SourceChannel,
    started_at: datetime,
    ended_at: datetime | None = None,
    status: str = "in-progress",
) -> Resource:
    """An infusion as a MedicationAdministration: the pump as device, the order as request."""
    dosage: Resource = {"route": {"text": "IV"}}
    if source.rate_ml_per_h is not None:
        dosage["rateQuantity"] = _quantity(source.rate_ml_per_h, codes.ML_PER_H)
    if source.dose_rate is not None and source.dose_unit is not None:
        dosage["text"] = f"{format_decimal(source.dose_rate)} {source.dose_unit}"
    period: Resource = {"start": started_at.isoformat()}
    if ended_at is not None:
        period["end"] = ended_at.isoformat()
    return validated(
        {
            "resourceType": "MedicationAdministration",
            "id": administration_id,
            "status": status,
            "medicationCodeableConcept": {"text": source.drug_name or "unspecified"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectivePeriod": period,
            "device": [{"reference": f"Device/{identity.device_id}"}],
            "request": {"reference": f"MedicationRequest/{order_id}"},
            "dosage": dosage,
        }
    )


def request_status(order_status: str) -> str:
    """The R4 MedicationRequest.status of an order in ``order_status`` (``unknown`` when not mapped)."""
    return REQUEST_STATUS.get(order_status, "unknown")


def medication_request(
    *,
    order_id: str,
    order_status: str,
    patient_id: str,
    drug_name: str,
    pump_serial: str,
    outcome_code: str = "",
    reason: str = "",
    prescriber_id: str = "",
    prescriber_name: str = "",
) -> Resource:
    """An order as the MedicationRequest it stands for now: its status from the order's outcome and, for an
    order that ended without an infusion (``cancelled``), the outcome as ``statusReason``; the prescriber
    as ``requester`` (a Practitioner reference and display) when the order named one."""
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": fhir_id(order_id),
        "identifier": [{"system": ORDER_SYSTEM, "value": order_id}],
        "status": request_status(order_status),
        "intent": "order",
        "medicationCodeableConcept": {"text": drug_name or "unspecified"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": {"reference": f"Device/{pump_serial}"},
    }
    requester: Resource = {}
    if prescriber_id:
        requester["reference"] = f"Practitioner/{prescriber_id}"
    if prescriber_name:
        requester["display"] = prescriber_name
    if requester:
        resource["requester"] = requester
    if resource["status"] == "cancelled":
        resource["statusReason"] = {
            "coding": [{"system": OUTCOME_SYSTEM, "code": outcome_code or order_status}],
            "text": reason or order_status,
        }
    return validated(resource)


def fhir_id(value: str) -> str:
    """``value`` as a FHIR id: ASCII letters, digits, ``-`` and ``.`` (others become ``-``), at most 64."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "-" for c in value)[:64]
    return cleaned or "order"


def observation(
    *,
    observation_id: str,
    identity: DeviceIdentity,
    patient_id: str,
    refid: str,
    value: Decimal,
    unit: codes.UnitCode,
    observed_at: datetime,
    metric_id: str = "",
) -> Resource:
    """A pump reading as an Observation (device = the pump, or its DeviceMetric when given)."""
    reference = f"DeviceMetric/{metric_id}" if metric_id else f"Device/{identity.device_id}"
    return validated(
        {
            "resourceType": "Observation",
            "id": observation_id,
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "procedure",
                        }
                    ]
                }
            ],
            "code": _mdc(refid),
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": observed_at.isoformat(),
            "valueQuantity": _quantity(value, unit),
            "device": {"reference": reference},
        }
    )


def medication_request_to_order(
    resource: Mapping[str, JsonValue], *, pump_id: str = "", local_zone: tzinfo = UTC
) -> InfusionOrder:
    """Read an R4 MedicationRequest as the same InfusionOrder a PCD-03 produces.

    Drug: ``medicationCodeableConcept`` or a contained Medication (with ingredient strength as the
    concentration). Rate or dose rate: ``dosageInstruction[0].doseAndRate[0]`` (rateQuantity, or
    rateRatio amount/time). Weight: a contained Observation (LOINC 29463-7) in
    ``supportingInformation``. Pump: a ``performer`` Device reference, else ``pump_id``; channel: the
    ``CHANNEL_EXTENSION`` extension. ``authoredOn`` is the order time when it has a time of day (a time
    without offset is read in ``local_zone``); a date alone gives no order time (``authored_on_date``).

    Raises:
        FhirMappingError: the resource does not validate as an R4 MedicationRequest.
        OrderRejected: 9003 for a missing drug, patient or rate; 9008 for units we cannot read.
    """
    request = validated(dict(resource))
    if request.get("resourceType") != "MedicationRequest":
        raise FhirMappingError("expected a MedicationRequest", code="fhir.wrong_type")
    contained = {str(_get(c, "id")): c for c in _list(request.get("contained"))}
    medication = _medication(request, contained)
    dose = _first(_first(request.get("dosageInstruction"), "doseAndRate"))
    give_amount, give_unit = _rate(dose)
    subject = str(_get(request.get("subject"), "reference"))
    performer = str(_get(request.get("performer"), "reference"))
    identifiers = _list(request.get("identifier"))
    order_id = str(_get(identifiers[0], "value")) if identifiers else str(request.get("id") or "")
    if not subject.startswith("Patient/"):
        raise OrderRejected(9031, "MedicationRequest.subject is not a Patient reference")
    step = OrderStep(
        number=1,
        drug_code=medication[0],
        drug_text=medication[1],
        give_amount=give_amount,
        give_unit=give_unit,
        vtbi_ml=None,
        drug_amount=medication[2].amount if medication[2] else None,
        drug_amount_unit=medication[2].unit.value if medication[2] else None,
        diluent_ml=medication[2].volume_ml if medication[2] else None,
        concentration=medication[2],
        duration_min=None,
        route="IV",
        device="",
        method="",
    )
    return InfusionOrder(
        control_id=order_id,
        sending_application="FHIR",
        patient_id=subject.removeprefix("Patient/"),
        patient_id_authority="",
        patient_name="",
        order_control="NW",
        order_id=order_id,
        parent_order_id="",
        order_time=authored_on(request.get("authoredOn"), local_zone),
        clinician=str(_get(request.get("requester"), "reference")),
        prescriber_id=str(_get(request.get("requester"), "reference") or "").rpartition("/")[2],
        prescriber_name=str(_get(request.get("requester"), "display") or ""),
        steps=(step,),
        pump_id=performer.removeprefix("Device/") if performer.startswith("Device/") else pump_id,
        pump_vendor="",
        channel=_channel(request),
        weight_kg=_weight(request, contained),
        height_cm=None,
        bsa_m2=None,
    )


def authored_on(value: JsonValue, local_zone: tzinfo = UTC) -> datetime | None:
    """``authoredOn`` as an instant, or None when absent or a date without a time of day (FHIR allows
    ``YYYY``, ``YYYY-MM`` and ``YYYY-MM-DD``); a time without an offset is read in ``local_zone``.

    Raises:
        FhirMappingError: ``fhir.invalid`` for a value that is not a FHIR dateTime, or a local time a
            daylight saving change skips or repeats.
    """
    if value is None or value == "":
        return None
    text = str(value)
    if _DATE_ONLY.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirMappingError(f"authoredOn {text!r} is not a FHIR dateTime", code="fhir.invalid") from None
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=local_zone)
    if not names_one_instant(local):
        raise FhirMappingError(
            f"authoredOn {text!r} has no offset and names no single instant in {local_zone} (a daylight "
            "saving change skips or repeats it): send it with its offset",
            code="fhir.invalid",
        )
    return local


def authored_on_date(value: JsonValue) -> str:
    """``authoredOn`` when it is a date without a time of day (``YYYY-MM-DD`` and shorter), else ''."""
    text = "" if value is None else str(value)
    return text if _DATE_ONLY.fullmatch(text) else ""


def _channel(request: Resource) -> str:
    for extension in _list(request.get("extension")):
        if _get(extension, "url") == CHANNEL_EXTENSION:
            return str(_get(extension, "valueString")).strip().upper()
    return ""


def _get(value: JsonValue, key: str) -> JsonValue:
    return value.get(key, "") if isinstance(value, dict) else ""


def _list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def _first(value: JsonValue, key: str | None = None) -> JsonValue:
    items = _list(value)
    first = items[0] if items else {}
    return _get(first, key) if key is not None else first


def _medication(request: Resource, contained: dict[str, JsonValue]) -> tuple[str, str, Concentration | None]:
    concept = request.get("medicationCodeableConcept")
    concentration: Concentration | None = None
    reference = str(_get(request.get("medicationReference"), "reference"))
    if reference.startswith("#") and reference[1:] in contained:
        medication = contained[reference[1:]]
        concept = _get(medication, "code")
        strength = _get(_first(_get(medication, "ingredient")), "strengthRatio") or _get(
            _first(_get(medication, "ingredient")), "strength"
        )
        if strength:
            concentration = _concentration(strength)
    coding = _first(_get(concept, "coding"))
    code, text = str(_get(coding, "code")), str(_get(concept, "text") or _get(coding, "display"))
    if not code and not text:
        raise OrderRejected(9003, "the MedicationRequest names no medication")
    return code, text, concentration


def _concentration(ratio: JsonValue) -> Concentration:
    numerator, denominator = _get(ratio, "numerator"), _get(ratio, "denominator")
    try:
        amount_unit = DoseUnit.parse(str(_get(numerator, "code") or _get(numerator, "unit"))).amount
        volume = Decimal(str(_get(denominator, "value"))) * codes.volume_factor_to_ml(
            (str(_get(denominator, "code") or _get(denominator, "unit")),)
        )
        return Concentration(Decimal(str(_get(numerator, "value"))), amount_unit, volume)
    except (UnitError, ArithmeticError) as error:
        raise OrderRejected(9008, f"medication strength: {error}") from None


def _rate(dose: JsonValue) -> tuple[Decimal, DoseUnit]:
    quantity = _get(dose, "rateQuantity")
    ratio = _get(dose, "rateRatio")
    try:
        if quantity:
            unit_text = str(_get(quantity, "code") or _get(quantity, "unit"))
            return Decimal(str(_get(quantity, "value"))), codes.dose_unit_from_cwe((unit_text,))
        if ratio:
            numerator, denominator = _get(ratio, "numerator"), _get(ratio, "denominator")
            per = str(_get(denominator, "code") or _get(denominator, "unit"))
            unit_text = f"{_get(numerator, 'code') or _get(numerator, 'unit')}/{per}"
            value = Decimal(str(_get(numerator, "value"))) / Decimal(str(_get(denominator, "value") or 1))
            return value, codes.dose_unit_from_cwe((unit_text,))
    except UnitError as error:
        raise OrderRejected(9008, error.message) from None
    except ArithmeticError:
        raise OrderRejected(9004, "the rate is not a number") from None
    raise OrderRejected(9003, "dosageInstruction[0].doseAndRate[0] has no rateQuantity or rateRatio")


def _weight(request: Resource, contained: dict[str, JsonValue]) -> Decimal | None:
    for info in _list(request.get("supportingInformation")):
        reference = str(_get(info, "reference"))
        found = contained.get(reference[1:]) if reference.startswith("#") else None
        codings = _list(_get(_get(found, "code"), "coding"))
        if found and any(_get(c, "code") == LOINC_WEIGHT for c in codings):
            quantity = _get(found, "valueQuantity")
            unit = str(_get(quantity, "code") or _get(quantity, "unit") or "kg")
            try:
                return Decimal(str(_get(quantity, "value"))) * codes.weight_factor_to_kg((unit,))
            except UnitError as error:
                raise OrderRejected(9008, error.message) from None
    return None
