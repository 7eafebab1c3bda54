"""Every CQI metric on the handmade history of handmade.py; expected values computed by hand."""

from __future__ import annotations

from datetime import date

import pytest

from smartpump.analytics import metrics
from smartpump.analytics.metrics import Dimension
from tests.unit.analytics.handmade import frame

AREA = Dimension.CARE_AREA


def _by(table: object, key: str) -> dict[object, dict[str, object]]:
    import polars as pl

    assert isinstance(table, pl.DataFrame)
    return {row[key]: row for row in table.iter_rows(named=True)}


def test_compliance_is_library_starts_over_all_starts() -> None:
    rows = _by(metrics.compliance(frame(), AREA), "care_area")
    # ICU: 3 starts, all with an entry -> 3/3. WARD: 2 starts, one basic -> 1/2.
    assert (rows["ICU"]["infusions"], rows["ICU"]["library_starts"], rows["ICU"]["compliance"]) == (3, 3, 1.0)
    assert (rows["WARD"]["basic_starts"], rows["WARD"]["compliance"]) == (1, 0.5)
    assert rows["ICU"]["meets_target"] and not rows["WARD"]["meets_target"]


def test_compliance_by_library_version_uses_the_starting_program() -> None:
    rows = _by(metrics.compliance(frame(), Dimension.LIBRARY_VERSION), "library_version")
    # v2: P1 seq2, seq5; P2 seq2 (basic), seq5 -> 3 of 4. v1: P1 seq9 -> 1 of 1.
    assert (rows[2]["infusions"], rows[2]["compliance"]) == (4, 0.75)
    assert (rows[1]["infusions"], rows[1]["compliance"]) == (1, 1.0)


def test_alerts_per_100_infusions() -> None:
    rows = _by(metrics.alerts(frame(), AREA), "care_area")
    # ICU: 4 checks, 1 soft, 1 hard, 3 starts -> 33.33 each. WARD: 2 soft, 2 starts -> 100.
    assert (rows["ICU"]["programs"], rows["ICU"]["soft_alerts"], rows["ICU"]["hard_alerts"]) == (4, 1, 1)
    assert rows["ICU"]["soft_per_100"] == pytest.approx(100 / 3)
    assert rows["ICU"]["hard_per_100"] == pytest.approx(100 / 3)
    assert (rows["WARD"]["soft_per_100"], rows["WARD"]["hard_per_100"]) == (100.0, 0.0)


def test_override_rate_and_overrides_within_two_seconds() -> None:
    rows = _by(metrics.overrides(frame(), AREA), "care_area")
    # ICU: 1 soft, overridden after 1.5 s. WARD: 2 soft, 1 overridden after 10 s.
    assert (
        rows["ICU"]["override_rate"],
        rows["ICU"]["overrides_within_2s"],
        rows["ICU"]["within_2s_rate"],
    ) == (
        1.0,
        1,
        1.0,
    )
    assert (rows["WARD"]["override_rate"], rows["WARD"]["overrides_within_2s"]) == (0.5, 0)


def test_good_catches_carry_the_averted_factor() -> None:
    rows = _by(metrics.good_catches(frame(), AREA), "care_area")
    # ICU: hard (10x) then reprogram. WARD: soft (2x) then cancel; the overridden soft is not a catch.
    icu, ward = rows["ICU"], rows["WARD"]
    assert (icu["good_catches"], icu["hard_catches"], icu["reprograms"], icu["max_averted_factor"]) == (
        1,
        1,
        1,
        10.0,
    )
    assert (ward["good_catches"], ward["soft_catches"], ward["cancels"], ward["max_averted_factor"]) == (
        1,
        1,
        1,
        2.0,
    )


def test_hard_stops_per_100_infusions() -> None:
    rows = _by(metrics.hard_stops(frame(), AREA), "care_area")
    assert (rows["ICU"]["hard_stops"], rows["ICU"]["max_factor"]) == (1, 10.0)
    assert rows["ICU"]["hard_stops_per_100"] == pytest.approx(100 / 3)
    assert rows["WARD"]["hard_stops"] == 0


def test_top_alerting_entries_ranks_by_alerts() -> None:
    top = metrics.top_alerting_entries(frame())
    # E3: 2 soft (1 override, 1 catch); E1: 1 soft (1 override); E2: 1 hard (1 catch); 4 alerts in all.
    assert top["entry"].to_list() == ["E3", "E1", "E2"]
    first = top.row(0, named=True)
    assert (first["alerts"], first["overrides"], first["good_catches"], first["share_of_alerts"]) == (
        2,
        1,
        1,
        0.5,
    )


def test_outdated_library_counts_starts_below_the_latest_version() -> None:
    rows = _by(metrics.outdated_library(frame(), AREA, latest_version=2), "care_area")
    # ICU: the start at seq9 was programmed under v1 -> 1 of 3.
    assert (rows["ICU"]["outdated_starts"], rows["ICU"]["outdated_share"]) == (1, pytest.approx(1 / 3))
    assert rows["WARD"]["outdated_starts"] == 0


def test_auto_programmed_share() -> None:
    rows = _by(metrics.auto_programmed(frame(), AREA), "care_area")
    assert (rows["ICU"]["auto_programmed_starts"], rows["ICU"]["auto_programmed_share"]) == (
        1,
        pytest.approx(1 / 3),
    )


def test_alarms_per_pump_hour_and_time_to_acknowledge() -> None:
    rows = _by(metrics.alarms(frame(), Dimension.PUMP), "pump")
    # P2 spans 0 -> 3660 s = 1.01667 pump-hours with one alarm acknowledged after 60 s.
    p2 = rows["P2"]
    assert (p2["alarm"], p2["alarms"], p2["median_ack_s"]) == ("occlusion.downstream", 1, 60.0)
    assert p2["pump_hours"] == pytest.approx(3660 / 3600)
    assert p2["alarms_per_pump_hour"] == pytest.approx(3600 / 3660)


def test_week_dimension_groups_by_monday() -> None:
    table = metrics.compliance(frame(), Dimension.WEEK)
    assert table["week"].to_list() == [date(2025, 1, 6)]
    assert table["infusions"].to_list() == [5]


def test_entry_and_pump_dimensions() -> None:
    by_entry = _by(metrics.alerts(frame(), Dimension.ENTRY), "entry")
    assert (by_entry["E3"]["soft_alerts"], by_entry["E2"]["hard_alerts"]) == (2, 1)
    by_pump = _by(metrics.compliance(frame(), Dimension.PUMP), "pump")
    assert (by_pump["P1"]["compliance"], by_pump["P2"]["compliance"]) == (1.0, 0.5)
