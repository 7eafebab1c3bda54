"""The configuration guide: one entry per setting in the document's order, and the accepted values it states
agree with what the schema accepts at the edges."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

import pytest

from smartpump.errors import ConfigurationError
from smartpump.pump.capabilities import PumpModel, capabilities
from smartpump.pump.configuration import FORMAT, ConfigurationSettings, PumpConfiguration
from smartpump.pump.configuration_guide import SETTING_GUIDE, accepted_values, shown_value


def _accepts(model: PumpModel, **settings: object) -> bool:
    document = {
        "format": FORMAT,
        "hospital_id": "north",
        "model": model.value,
        "version": 1,
        "name": "edge",
        "settings": settings,
    }
    try:
        PumpConfiguration.from_dict(document)
    except ConfigurationError:
        return False
    return True


def test_the_guide_covers_every_setting_in_the_documents_order() -> None:
    assert [g.key for g in SETTING_GUIDE] == [f.name for f in fields(ConfigurationSettings)]
    assert all(g.label and g.meaning for g in SETTING_GUIDE)
    assert {g.key: g.unit for g in SETTING_GUIDE}["kvo_rate_ml_per_h"] == "mL/h"


@pytest.mark.parametrize("model", list(PumpModel))
def test_the_stated_rate_ranges_are_the_schemas_edges(model: PumpModel) -> None:
    caps = capabilities(model)
    low, high, kvo_high = caps.min_rate_ml_per_h, caps.max_rate_ml_per_h, caps.max_kvo_ml_per_h
    assert accepted_values("max_rate_ml_per_h", model).startswith(
        f"{low.normalize():f}-{high.normalize():f} mL/h"
    )
    assert accepted_values("kvo_rate_ml_per_h", model).startswith(
        f"{low.normalize():f}-{kvo_high.normalize():f} mL/h"
    )
    assert _accepts(model, max_rate_ml_per_h=str(high)) and not _accepts(
        model, max_rate_ml_per_h=str(high + 1)
    )
    assert _accepts(model, kvo_rate_ml_per_h=str(low)) and not _accepts(model, kvo_rate_ml_per_h=str(low / 2))
    assert _accepts(model, kvo_rate_ml_per_h=str(kvo_high))
    assert not _accepts(model, kvo_rate_ml_per_h=str(kvo_high + 1))


def test_the_stated_whole_number_ranges_are_the_schemas_edges() -> None:
    assert accepted_values("near_end_alert_min", PumpModel.LVP) == "1-30 min"
    assert accepted_values("set_change_interval_h", "lvp-4") == "1-168 h"
    assert accepted_values("require_verification", PumpModel.PCA) == "true or false"
    assert _accepts(PumpModel.LVP, near_end_alert_min=30, set_change_interval_h=168)
    assert not _accepts(PumpModel.LVP, near_end_alert_min=31)
    assert not _accepts(PumpModel.LVP, set_change_interval_h=169)
    with pytest.raises(KeyError):
        accepted_values("colour", PumpModel.LVP)


def test_values_are_shown_as_people_read_them() -> None:
    assert [shown_value(v) for v in (None, True, False, "99.9", 96)] == ["none", "yes", "no", "99.9", "96"]
    assert shown_value(Decimal("0.10")) == "0.10"
