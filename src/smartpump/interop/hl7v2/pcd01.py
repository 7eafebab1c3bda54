"""IHE PCD-01 (DEC): periodic pump status -> ORU^R01^ORU_R01 with the same containment as IPEC."""

from __future__ import annotations

from typing import Final

from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.message import Message, build_segment, format_timestamp
from smartpump.interop.hl7v2.observations import (
    ObxTree,
    delivery_info,
    device_tree,
    header,
    patient_segments,
    source_tree,
)
from smartpump.interop.hl7v2.reports import DeliveryStatus, PumpStatusReport

DEC_PROFILE: Final = ("IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.1.1", "ISO")


def build_pcd01(report: PumpStatusReport) -> Message:
    """The ORU^R01 for one status snapshot: MDS, VMD, delivery info and every source channel."""
    device = report.device
    msh = header(
        device,
        message_type=("ORU", "R01", "ORU_R01"),
        control_id=report.control_id,
        sent_at=report.sent_at,
        profile=DEC_PROFILE,
    )
    obr = build_segment(
        "OBR",
        "1",
        (report.order_id, "PCD-03") if report.order_id else None,
        (f"{device.device_id}-{report.control_id}", device.sending_application, device.eui64, "EUI-64"),
        codes.term(device.mds_refid).cwe(),
        None,
        None,
        format_timestamp(report.observed_at),
    )
    obx = ObxTree()
    device_tree(obx, device, report.library_version)
    obx.node(device.vmd_refid, "1.1.0.0")
    active = tuple(s.kind for s in report.sources if s.delivery_status is DeliveryStatus.DELIVERING)
    delivery_info(obx, is_infusing=report.is_infusing, flow=report.current_flow_ml_per_h, sources=active)
    for source in report.sources:
        source_tree(obx, source)
    return Message((msh, *patient_segments(report.patient), obr, *obx.segments))
