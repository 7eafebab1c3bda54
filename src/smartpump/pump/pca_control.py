"""The pump's PCA actions: set a PCA therapy up from its entry, demand and clinician doses through
the ledger, the physiologic pause on vitals, and the basal segments the ledger counts."""

from __future__ import annotations

from decimal import Decimal

from smartpump.errors import PumpError
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId
from smartpump.pump.channel import Channel, ChannelState, Therapy
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO, OverlayKind
from smartpump.pump.events import EventType
from smartpump.pump.pca import Denial, DoseKind, PcaLedger
from smartpump.pump.rates import check_rate, pca_bolus_rate, start_overlay
from smartpump.units import round_half_up


class PcaControl:
    """PCA therapy set-up, doses and the physiologic pause of one pump."""

    def __init__(self, core: PumpCore, alarming: AlarmControl) -> None:
        self.core = core
        self.alarming = alarming

    def setup(self, therapy: Therapy) -> None:
        """Fill a PCA therapy's basal rate, dose volume factor, dose rate and ledger from its entry."""
        core = self.core
        program = therapy.program
        pca = program.pca
        assert pca is not None and therapy.verdict.entry_id is not None
        entry = core.active_library().entry(therapy.verdict.entry_id)
        assert entry.pca is not None
        unit = entry.pca.demand_dose.unit
        concentration = program.concentration or entry.concentrations[0]
        per_ml = concentration.per_ml_in(unit.amount)
        area = core.area()
        window_h = pca.max_dose_window_h or entry.pca.max_dose_window_h or area.pca.max_dose_window_h or 1
        basal = pca.basal or ZERO
        therapy.rate_ml_per_h = (
            round_half_up(basal / per_ml, core.caps.finest_resolution_ml_per_h) if basal else ZERO
        )
        if therapy.rate_ml_per_h:
            check_rate(core, therapy.rate_ml_per_h)
        therapy.kvo_rate_ml_per_h = ZERO
        therapy.pca_per_ml = per_ml
        therapy.pca_unit = str(unit)
        therapy.pca_bolus_rate_ml_per_h = pca_bolus_rate(core, program)
        therapy.pca = PcaLedger(
            demand_dose=pca.demand_dose,
            lockout_s=pca.lockout_min * 60,
            max_dose=pca.max_dose,
            window_s=Decimal(window_h) * 3600,
            basal_per_h=basal,
        )

    def dose(self, channel: Channel, amount: Decimal, kind: DoseKind, overlay: OverlayKind) -> None:
        """Grant a dose in the ledger and deliver its volume as an overlay."""
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None and therapy.pca_per_ml is not None
        assert therapy.pca_bolus_rate_ml_per_h is not None
        therapy.pca.grant(self.core.t, amount, kind)
        start_overlay(
            self.core,
            channel,
            overlay,
            therapy.pca_bolus_rate_ml_per_h,
            amount / therapy.pca_per_ml,
            amount,
            therapy.pca_unit,
        )

    def demand(self, cid: str) -> bool:
        """The patient presses the button: grant (True) or deny (False, logged with the reason)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        ledger = therapy.pca
        denial: Denial | None
        if core.alarms.is_active(AlarmId.PCA_PAUSED, cid):
            denial = Denial.PAUSED
        elif channel.state is not ChannelState.RUNNING:
            denial = Denial.NOT_RUNNING
        elif therapy.overlay is not None:
            denial = Denial.DOSE_IN_PROGRESS
        else:
            denial = ledger.evaluate(core.t, ledger.demand_dose, DoseKind.DEMAND)
        if denial is not None:
            core.emit(
                EventType.PCA_DEMAND_DENIED,
                cid,
                reason=denial.value,
                next_allowed_in_s=ledger.lockout_remaining_s(core.t),
                window_total=ledger.window_total(core.t),
                max_dose=ledger.max_dose,
            )
            return False
        core.emit(
            EventType.PCA_DEMAND_GRANTED,
            cid,
            dose=ledger.demand_dose,
            unit=therapy.pca_unit,
            window_total=ledger.window_total(core.t) + ledger.demand_dose,
            max_dose=ledger.max_dose,
        )
        self.dose(channel, ledger.demand_dose, DoseKind.DEMAND, OverlayKind.PCA_DEMAND)
        return True

    def clinician_bolus(self, cid: str, amount: Decimal) -> None:
        """A clinician bolus on a PCA channel, within the entry's limits and the window maximum."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None or channel.state is not ChannelState.RUNNING:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        assert therapy.verdict.entry_id is not None
        limits = core.active_library().entry(therapy.verdict.entry_id).pca
        if limits is None or limits.clinician_bolus is None:
            raise PumpError(
                "this entry does not allow a clinician bolus", code="pump.clinician_bolus_not_allowed"
            )
        breach = limits.clinician_bolus.limits.classify(amount)
        if breach is not None:
            raise PumpError(
                f"clinician bolus {amount} is beyond the {breach.kind} {breach.limit}",
                code="pump.clinician_bolus_limit",
            )
        if therapy.overlay is not None:
            raise PumpError("a dose is already being delivered", code="pump.overlay_running")
        if therapy.pca.evaluate(core.t, amount, DoseKind.CLINICIAN) is not None:
            raise PumpError("the bolus would exceed the maximum over the window", code="pump.pca_max_dose")
        self.dose(channel, amount, DoseKind.CLINICIAN, OverlayKind.CLINICIAN_BOLUS)

    def record_vitals(
        self,
        *,
        spo2_percent: Decimal | None,
        etco2_mmhg: Decimal | None,
        resp_rate_bpm: Decimal | None,
    ) -> None:
        """A monitor reading; crossing a care-area threshold pauses every PCA channel (physiologic pause)."""
        core = self.core
        core.sync()
        core.emit(
            EventType.VITALS_RECORDED,
            None,
            spo2_percent=spo2_percent,
            etco2_mmhg=etco2_mmhg,
            resp_rate_bpm=resp_rate_bpm,
        )
        settings = core.area().pca
        if not settings.pause_enabled:
            return
        crossed: tuple[str, Decimal, Decimal] | None = None
        spo2_min, etco2_max = settings.pause_spo2_min_percent, settings.pause_etco2_max_mmhg
        rr_min = settings.pause_resp_rate_min_bpm
        if spo2_percent is not None and spo2_min is not None and spo2_percent < spo2_min:
            crossed = ("spo2", spo2_percent, spo2_min)
        if etco2_mmhg is not None and etco2_max is not None and etco2_mmhg > etco2_max:
            crossed = ("etco2", etco2_mmhg, etco2_max)
        if resp_rate_bpm is not None and rr_min is not None and resp_rate_bpm < rr_min:
            crossed = ("resp_rate", resp_rate_bpm, rr_min)
        if crossed is None:
            for channel in core.channels.values():
                self.alarming.condition_ended(AlarmId.PCA_PAUSED, channel.id)
            return
        reading, value, threshold = crossed
        for channel in core.channels.values():
            if channel.therapy is not None and channel.therapy.pca is not None:
                if not core.alarms.is_active(AlarmId.PCA_PAUSED, channel.id):
                    core.emit(
                        EventType.PCA_PAUSED, channel.id, reading=reading, value=value, threshold=threshold
                    )
                self.alarming.raise_(AlarmId.PCA_PAUSED, channel.id, value=value, limit=threshold)
        core.after_change()

    def after_change(self) -> None:
        """Open or close each PCA ledger's basal segment as the basal flows or stops."""
        for channel in self.core.channels.values():
            therapy = channel.therapy
            if therapy is not None and therapy.pca is not None:
                basal_flowing = channel.state is ChannelState.RUNNING and therapy.rate_ml_per_h > 0
                therapy.pca.basal_running(self.core.t, basal_flowing)
