"""IHE PCD-10 (IPEC): one infusion event -> ORU^R42^ORU_R01, laid out as TF Vol. 2 Appendix M.1.2.2.

OBR-2 carries the PCD-03 order ID (``<order>^PCD-03``) so the EHR reconciles the administration
with its order (an empty ID for an infusion started at the pump); for a bolus from a running infusion
OBR-29 names the parent order. OBR-4 (required) is the drug given, or for a fluid with no drug the pump
itself (its MDS term), as PCD-01 names it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.message import FieldValue, Message, build_segment, format_timestamp
from smartpump.interop.hl7v2.observations import (
    SOURCE_CHANNEL_NUMBER,
    ObxTree,
    delivery_info,
    device_tree,
    header,
    patient_segments,
    source_tree,
)
from smartpump.interop.hl7v2.reports import InfusionEventKind, InfusionEventReport, SourceChannel

IPEC_PROFILE: Final = ("IHE_PCD_010", "IHE PCD", "1.3.6.1.4.1.19376.1.6.4.10", "ISO")


def build_pcd10(report: InfusionEventReport) -> Message:
    """The ORU^R42 for one IPEC event (start, stop or complete) on one source channel."""
    device = report.device
    msh = header(
        device,
        message_type=("ORU", "R42", "ORU_R01"),
        control_id=report.control_id,
        sent_at=report.sent_at,
        profile=IPEC_PROFILE,
    )
    filler = report.filler_id or f"{report.order_id}-{report.control_id}"
    parent: FieldValue | None = ((report.parent_order_id, "PCD-03"),) if report.parent_order_id else None
    given = report.drug_code or report.source.drug_name
    obr = build_segment(
        "OBR",
        "1",
        (report.order_id, "PCD-03"),
        (filler, device.sending_application, device.eui64, "EUI-64"),
        (report.drug_code, report.source.drug_name) if given else codes.term(device.mds_refid).cwe(),
        None,
        None,
        format_timestamp(report.event_time),
        *([None] * 21),
        parent,
    )
    obx = ObxTree()
    device_tree(obx, device, report.library_version)
    obx.coded("MDC_ATTR_EVT_COND", "1.0.0.2", codes.term(report.event.value).cwe())
    obx.text("MDC_ATTR_EVT_SOURCE", "1.0.0.3", f"1.1.{SOURCE_CHANNEL_NUMBER[report.source.kind]}.0")
    obx.node(device.vmd_refid, "1.1.0.0")
    delivery_info(
        obx,
        is_infusing=report.is_infusing,
        flow=report.current_flow_ml_per_h,
        sources=(report.source.kind,) if report.is_infusing else (),
    )
    source_tree(obx, report.source)
    return Message((msh, *patient_segments(report.patient), obr, *obx.segments))


def rate_change_reports(
    before: InfusionEventReport, after_source: SourceChannel, *, stop_control_id: str, start_control_id: str
) -> tuple[InfusionEventReport, InfusionEventReport]:
    """A rate change as IPEC models it: STOP of the old delivery segment, START of the new one."""
    stop = replace(before, event=InfusionEventKind.STOP, control_id=stop_control_id)
    start = replace(before, event=InfusionEventKind.START, control_id=start_control_id, source=after_source)
    return stop, start
