"""PCA: demand dose, lockout, rolling-window maximum, basal, loading, clinician bolus, physiologic pause."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.errors import PumpError
from smartpump.pump import AlarmId, EventType, PumpModel
from smartpump.pump.pca import DoseKind, PcaLedger
from tests.unit.pump.library import make_pump, morphine_pca, start

D = Decimal


def test_demand_inside_the_lockout_is_denied_and_logged() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca(lockout="10"))
    assert pump.pca_demand("A")
    clock.advance(599)
    assert not pump.pca_demand("A")
    denied = pump.events.of_type(EventType.PCA_DEMAND_DENIED)[0]
    assert denied.data["reason"] == "lockout" and denied.data["next_allowed_in_s"] == D(1)
    clock.advance(1)
    assert pump.pca_demand("A")


def test_window_maximum_denies_the_dose_that_would_exceed_it() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca(demand="2", lockout="6", max_dose="5"))
    assert pump.pca_demand("A")
    clock.advance(360)
    assert pump.pca_demand("A")
    clock.advance(360)
    assert not pump.pca_demand("A")
    assert pump.events.of_type(EventType.PCA_DEMAND_DENIED)[0].data["reason"] == "max_dose"


def test_dose_exactly_reaching_the_maximum_is_granted() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), max_dose=D(2), window_s=D(3600))
    ledger.grant(D(0), D(1), DoseKind.DEMAND)
    assert ledger.evaluate(D(1), D(1), DoseKind.DEMAND) is None


def test_rolling_window_forgets_doses_older_than_the_window() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), max_dose=D(1), window_s=D(3600))
    ledger.grant(D(0), D(1), DoseKind.DEMAND)
    assert ledger.evaluate(D(3599), D(1), DoseKind.DEMAND) is not None
    assert ledger.evaluate(D(3600), D(1), DoseKind.DEMAND) is None


def test_basal_counts_towards_the_window() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca(basal="1", max_dose="7.5"))
    clock.advance(1800)
    pump.sync()
    ledger = pump.channel("A").therapy.pca  # type: ignore[union-attr]
    assert ledger is not None and ledger.window_total(pump.now_s) == D("0.5")


def test_loading_dose_runs_at_start_and_counts() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca(loading="2"))
    assert pump.events.of_type(EventType.BOLUS_STARTED)[0].data["kind"] == "pca_loading"
    clock.advance(600)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(2)


def test_clinician_bolus_beyond_its_hard_max_is_refused() -> None:
    pump, _ = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca())
    with pytest.raises(PumpError) as refused:
        pump.clinician_bolus("A", D(5))
    assert refused.value.code == "pump.clinician_bolus_limit"


def test_low_spo2_pauses_pca_and_denies_demands() -> None:
    pump, _ = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca())
    pump.record_vitals(spo2_percent=D(88))
    assert pump.alarms.is_active(AlarmId.PCA_PAUSED, "A")
    assert pump.events.of_type(EventType.PCA_PAUSED)[0].data["threshold"] == D(90)
    assert not pump.pca_demand("A")
    assert pump.events.of_type(EventType.PCA_DEMAND_DENIED)[0].data["reason"] == "paused"


def test_spo2_on_the_threshold_does_not_pause() -> None:
    pump, _ = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca())
    pump.record_vitals(spo2_percent=D(90), etco2_mmhg=D(50))
    assert not pump.alarms.is_active(AlarmId.PCA_PAUSED, "A")
