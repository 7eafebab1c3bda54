"""Shared pieces of the outbound ORU messages: header, patient, and the MDS/VMD/channel OBX tree.

Containment in OBX-4 follows the IPEC example of TF Vol. 2 Appendix M.1.2.2: MDS ``1.0.0.0`` (its
attributes ``1.0.0.n``), VMD ``1.1.0.0``, delivery-info channel ``1.1.1.n``, primary source
``1.1.2.n`` and a secondary source ``1.1.3.n``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.message import FieldValue, Segment, build_msh, build_segment
from smartpump.interop.hl7v2.reports import DeviceIdentity, PatientContext, SourceChannel, SourceKind
from smartpump.units import AmountUnit

SOURCE_CHANNEL_NUMBER: Final = {SourceKind.PRIMARY: 2, SourceKind.SECONDARY: 3}
_SOURCE_REFID: Final = {
    SourceKind.PRIMARY: "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY",
    SourceKind.SECONDARY: "MDC_DEV_PUMP_INFUSATE_SOURCE_SECONDARY",
}
_CONCENTRATION_UNITS: Final = {AmountUnit.MG: codes.UnitCode("mg/mL", 2162, "MDC_DIM_MILLI_G_PER_ML")}


def number(value: Decimal) -> str:
    """An NM value without exponent, keeping the precision it was given with (250.0 stays 250.0)."""
    return format(value, "f")


def header(
    device: DeviceIdentity,
    *,
    message_type: tuple[str, str, str],
    control_id: str,
    sent_at: datetime,
    profile: tuple[str, str, str, str],
) -> Segment:
    """MSH of a device report: the sender is identified by its EUI-64 (MSH-3 HD)."""
    return build_msh(
        sending_application=(device.sending_application, device.eui64, "EUI-64"),
        sending_facility=device.sending_facility,
        receiving_application=device.receiving_application,
        receiving_facility=device.receiving_facility,
        timestamp=sent_at,
        message_type=message_type,
        control_id=control_id,
        version="2.6",
        accept_ack_type="AL",
        application_ack_type="NE",
        profile=(profile,),
    )


def patient_segments(patient: PatientContext | None) -> tuple[Segment, ...]:
    """PID and PV1 for a known patient; none at all when no patient is known.

    IHE PCD TF-2 (Rev. 8.0/9.0) Appendix B.5: PID-3 carries the ID with its assigning authority (CX-4) and
    identifier type (CX-5) as they are known; PID-5 carries the legal name (type ``L``), or, when no name
    is known, only the name type code ``U`` (unspecified) with the other components empty. With no patient
    associated, the optional PATIENT group of ORU_R01 is left out: HL7 v2.6 requires PID-3 in a PID.
    """
    if patient is None or not patient.patient_id:
        return ()
    pv1 = build_segment("PV1", None, "I", (patient.point_of_care, patient.room, patient.bed))
    return pid_segment(patient), pv1


def pid_segment(patient: PatientContext) -> Segment:
    """PID-3 = ID^^^assigning authority^identifier type as known; PID-5 = the legal name (type ``L``), or
    only the name type ``U`` when no name is known."""
    named = bool(patient.family_name or patient.given_name)
    return build_segment(
        "PID",
        None,
        None,
        (patient.patient_id, "", "", patient.authority, patient.id_type),
        None,
        (patient.family_name, patient.given_name, "", "", "", "", "L")
        if named
        else ("", "", "", "", "", "", "U"),
    )


class ObxTree:
    """Numbered OBX segments (OBX-1 counts up) with their containment (OBX-4)."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def _add(
        self,
        value_type: str,
        refid: str,
        position: str,
        value: FieldValue | None,
        unit: FieldValue | None,
        status: str,
        observer: str = "",
        equipment: FieldValue | None = None,
        flags: FieldValue | None = None,
    ) -> None:
        self.segments.append(
            build_segment(
                "OBX",
                str(len(self.segments) + 1),
                value_type,
                codes.term(refid).cwe(),
                position,
                value,
                unit,
                None,
                flags,
                None,
                None,
                status,
                None,
                None,
                None,
                None,
                observer or None,
                None,
                equipment,
            )
        )

    def node(
        self, refid: str, position: str, *, observer: str = "", equipment: FieldValue | None = None
    ) -> None:
        """A containment node (MDS, VMD, channel): no value, result status X."""
        self._add("", refid, position, None, None, "X", observer, equipment)

    def numeric(self, refid: str, position: str, value: Decimal, unit: codes.UnitCode) -> None:
        """An NM metric with its unit (MDC first, UCUM alternate)."""
        self._add("NM", refid, position, number(value), unit.cwe(), "R")

    def text(self, refid: str, position: str, value: str) -> None:
        """An ST metric."""
        self._add("ST", refid, position, value, None, "R")

    def coded(
        self,
        refid: str,
        position: str,
        value: FieldValue,
        *,
        flags: FieldValue | None = None,
        equipment: FieldValue | None = None,
    ) -> None:
        """A CWE metric (an enumeration value or a nomenclature code)."""
        self._add("CWE", refid, position, value, None, "R", equipment=equipment, flags=flags)


def equipment(device: DeviceIdentity) -> tuple[str, ...]:
    """OBX-18 EI: device ID with the EUI-64 as universal ID."""
    return (device.device_id, "", device.eui64, "EUI-64")


def device_tree(obx: ObxTree, device: DeviceIdentity, library_version: str) -> None:
    """The MDS node with its identity, and the drug library version as an MDS attribute."""
    obx.node(device.mds_refid, "1.0.0.0", observer=device.clinician_id, equipment=equipment(device))
    if library_version:
        obx.text("MDC_PUMP_DRUG_LIBRARY_VERSION", "1.0.0.1", library_version)


def delivery_info(
    obx: ObxTree, *, is_infusing: bool, flow: Decimal | None, sources: tuple[SourceKind, ...]
) -> None:
    """The delivery-info channel: infusing status, current pump flow, active sources."""
    obx.node("MDC_DEV_PUMP_DELIVERY_INFO", "1.1.1.0")
    status = "pump-status-infusing" if is_infusing else "pump-status-not-infusing"
    obx.coded("MDC_PUMP_INFUSING_STATUS", "1.1.1.1", ("", status))
    if flow is not None:
        obx.numeric("MDC_FLOW_FLUID_PUMP_CURRENT", "1.1.1.2", flow, codes.ML_PER_H)
    active: FieldValue = [("", f"pump-source-info-{s.value}") for s in sources] if sources else ""
    obx.coded("MDC_DEV_PUMP_ACTIVE_SOURCES", "1.1.1.3", active)


def source_tree(obx: ObxTree, source: SourceChannel) -> None:
    """One infusate source channel node and its metrics, in the IPEC example's order."""
    chan = f"1.1.{SOURCE_CHANNEL_NUMBER[source.kind]}"
    obx.node(_SOURCE_REFID[source.kind], f"{chan}.0")
    metric = 0

    def at() -> str:
        nonlocal metric
        metric += 1
        return f"{chan}.{metric}"

    obx.coded(
        "MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS", at(), ("", f"pump-delivery-status-{source.delivery_status}")
    )
    obx.coded(
        "MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE", at(), ("", f"pump-program-delivery-mode-{source.delivery_mode}")
    )
    obx.text("MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL", at(), source.label)
    if source.rate_ml_per_h is not None:
        obx.numeric("MDC_FLOW_FLUID_PUMP", at(), source.rate_ml_per_h, codes.ML_PER_H)
    if source.dose_rate is not None and source.dose_unit is not None:
        obx.numeric("MDC_RATE_DOSE", at(), source.dose_rate, codes.dose_unit_code(source.dose_unit))
    volumes = (
        ("MDC_VOL_FLUID_TBI", source.vtbi_ml),
        ("MDC_VOL_FLUID_DELIV_TOTAL", source.volume_delivered_ml),
        ("MDC_VOL_FLUID_TBI_REMAIN", source.vtbi_remaining_ml),
    )
    for refid, volume in volumes:
        if volume is not None:
            obx.numeric(refid, at(), volume, codes.ML)
    if source.time_remaining_min is not None:
        obx.numeric("MDC_TIME_PD_REMAIN", at(), source.time_remaining_min, codes.MINUTE)
    if source.drug_name:
        obx.text("MDC_DRUG_NAME_LABEL", at(), source.drug_name)
    if source.concentration is not None:
        unit = source.concentration.unit
        code = _CONCENTRATION_UNITS.get(unit, codes.UnitCode(f"{unit.ucum}/mL"))
        obx.numeric("MDC_CONC_DRUG", at(), source.concentration.per_ml, code)
    if source.care_area:
        obx.text("MDC_PUMP_DRUG_LIBRARY_CARE_AREA", at(), source.care_area)
    if source.weight_kg is not None:
        obx.numeric("MDC_ATTR_PT_WEIGHT", at(), source.weight_kg, codes.KG)
