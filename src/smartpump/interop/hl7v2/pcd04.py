"""IHE PCD-04 (ACM): one alarm phase -> ORU^R40^ORU_R40 (TF Vol. 2 E.3.2, with the ACM attributes).

OBR-3 (filler ID) names the alert instance and stays the same from start to end; OBR-4 is
MDC_EVT_ALARM. Device-level alarms sit under the MDS (``1.0.0.n``); a channel alarm under its
source channel (``1.1.2.n`` primary, ``1.1.3.n`` secondary).
"""

from __future__ import annotations

from typing import Final

from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.message import FieldValue, Message, build_segment, format_timestamp
from smartpump.interop.hl7v2.observations import (
    SOURCE_CHANNEL_NUMBER,
    ObxTree,
    equipment,
    header,
    patient_segments,
)
from smartpump.interop.hl7v2.reports import AlarmReport

ACM_PROFILE: Final = ("IHE_PCD_ACM_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.4.1", "ISO")


def build_pcd04(report: AlarmReport) -> Message:
    """The ORU^R40 for one phase (start, continue, end) of one alarm."""
    device = report.device
    msh = header(
        device,
        message_type=("ORU", "R40", "ORU_R40"),
        control_id=report.control_id,
        sent_at=report.sent_at,
        profile=ACM_PROFILE,
    )
    obr = build_segment(
        "OBR",
        "1",
        (report.control_id, device.sending_application, device.eui64, "EUI-64"),
        (report.alert_id, device.sending_application, device.eui64, "EUI-64"),
        codes.term("MDC_EVT_ALARM").cwe(),
        None,
        None,
        format_timestamp(report.observed_at),
    )
    obx = ObxTree()
    obx.node(device.mds_refid, "1.0.0.0", observer=device.clinician_id, equipment=equipment(device))
    if report.source_channel is None:
        base = "1.0.0"
    else:
        obx.node(device.vmd_refid, "1.1.0.0")
        base = f"1.1.{SOURCE_CHANNEL_NUMBER[report.source_channel]}"
    alarm = (str(report.alarm_code), report.alarm_refid, "MDC", "", "", "", "", "", report.alarm_text)
    flags: FieldValue = [report.priority.value, report.kind.value]
    obx.coded("MDC_EVT_ALARM", f"{base}.1", alarm, flags=flags, equipment=equipment(device))
    obx.coded("MDC_ATTR_ALERT_SOURCE", f"{base}.2", codes.term(report.source_refid).cwe())
    obx.text("MDC_ATTR_EVENT_PHASE", f"{base}.3", report.phase.value)
    obx.text("MDC_ATTR_ALARM_STATE", f"{base}.4", report.state.value)
    obx.text("MDC_ATTR_ALARM_INACTIVATION_STATE", f"{base}.5", report.inactivation.value)
    obx.text("MDC_ATTR_ALARM_PRIORITY", f"{base}.6", report.priority.value)
    obx.text("MDC_ATTR_ALERT_TYPE", f"{base}.7", report.kind.value)
    return Message((msh, *patient_segments(report.patient), obr, *obx.segments))
