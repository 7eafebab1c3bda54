"""What the clinician sets up at the bedside: care area, patient, administration set (and its change
reminder), and the barcode verification of a pending program."""

from __future__ import annotations

from decimal import Decimal

from smartpump.errors import PumpError
from smartpump.library.model import CareArea
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId
from smartpump.pump.channel import Channel
from smartpump.pump.core import PumpCore
from smartpump.pump.events import EventType
from smartpump.pump.verification import BedsideScan, Expected, mismatches


class Bedside:
    """Care area, patient, administration sets and bedside verification of one pump."""

    def __init__(self, core: PumpCore, alarming: AlarmControl) -> None:
        self.core = core
        self.alarming = alarming

    def select_care_area(self, care_area: str) -> CareArea:
        """Choose the care area (profile) whose limits apply; refused while any channel infuses."""
        core = self.core
        core.sync()
        library = core.active_library()
        if not core.all_idle():
            raise PumpError(
                "the care area cannot change while a channel is in use", code="pump.care_area_locked"
            )
        area = library.care_area(care_area)
        core.care_area = area
        core.emit(EventType.CARE_AREA_SELECTED, None, care_area=area.id, library_version=library.version)
        return area

    def set_patient(self, patient_id: str) -> None:
        """Associate the pump with a patient (wristband scanned at power-on)."""
        if not patient_id.strip():
            raise PumpError("patient id is empty", code="pump.patient_invalid")
        self.core.patient_id = patient_id

    def install_set(self, cid: str, *, set_type: str, lot: str, line_label: str | None) -> AdministrationSet:
        """Record the administration set loaded on a channel; the change interval follows the care area."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        area_h = core.care_area.device.tubing_change_h if core.care_area else None
        admin = AdministrationSet(
            set_type=set_type,
            lot=lot,
            installed_at_s=core.t,
            change_due_h=area_h or core.settings.set_change_interval_h,
            line_label=line_label,
        )
        channel.admin_set = admin
        channel.set_reminded = False
        if core.alarms.drop(AlarmId.SET_CHANGE_DUE, cid, core.t):
            core.emit(
                EventType.ALARM_CLEARED,
                cid,
                alarm=AlarmId.SET_CHANGE_DUE.value,
                by="set_changed",
                duration_s=None,
            )
        core.emit(
            EventType.SET_INSTALLED,
            cid,
            set_type=set_type,
            lot=lot,
            change_due_h=admin.change_due_h,
            line_label=line_label,
        )
        return admin

    def set_change_due(self, channel: Channel) -> None:
        """The administration set reached its change interval: event and reminder alarm."""
        core = self.core
        channel.set_reminded = True
        admin = channel.admin_set
        assert admin is not None
        core.emit(
            EventType.SET_CHANGE_DUE,
            channel.id,
            set_type=admin.set_type,
            lot=admin.lot,
            installed_h_ago=(core.t - admin.installed_at_s) / 3600,
        )
        self.alarming.raise_(
            AlarmId.SET_CHANGE_DUE, channel.id, value=None, limit=Decimal(admin.change_due_h)
        )

    def verify_bedside(self, cid: str, scan: BedsideScan) -> tuple[str, ...]:
        """Compare the bedside scan with the pending program; a mismatch blocks the start."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        library = core.active_library()
        entry = library.entry(pending.verdict.entry_id) if pending.verdict.entry_id else None
        concentration = pending.program.concentration
        if concentration is None and entry is not None and len(entry.concentrations) == 1:
            concentration = entry.concentrations[0]
        expected = Expected(
            patient_id=core.patient_id,
            drug=library.drug(entry.drug_id) if entry else None,
            concentration=concentration,
            route=pending.program.route,
            line_label=channel.admin_set.line_label if channel.admin_set else None,
        )
        reasons = mismatches(scan, expected)
        pending.verified = not reasons
        pending.verification_failed = reasons
        if reasons:
            core.emit(EventType.VERIFICATION_FAILED, cid, reasons=list(reasons))
        else:
            core.emit(
                EventType.VERIFICATION_PASSED,
                cid,
                patient_id=scan.patient_id,
                drug=scan.drug,
                concentration=str(concentration) if concentration else None,
                route=scan.route.value,
                line_label=scan.line_label,
            )
        return reasons
