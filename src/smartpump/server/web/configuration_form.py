"""The pump configuration forms: a draft's settings typed as text, read into the settings the service
validates, the service's refusals placed next to their fields, and a deployment's waves.

No rule of a configuration is checked here: an empty field is left out (the model's factory value), whole
numbers and true/false become JSON values, and anything else reaches the schema as typed, so its own
message comes back (decimals stay exact text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from smartpump.errors import SmartpumpError
from smartpump.pump.configuration_guide import SETTING_GUIDE
from smartpump.server.errors import InvalidInputError

SETTING_FIELDS: Final = tuple(g.key for g in SETTING_GUIDE)
DRAFT_FIELDS: Final = frozenset({"facility_id", "model", "name", *SETTING_FIELDS})
WHOLE_SETTINGS: Final = frozenset({"near_end_alert_min", "set_change_interval_h"})
FLAG_SETTINGS: Final = frozenset({"require_verification"})
FIELD_CHARS: Final = 32
_WHOLE: Final = re.compile(r"[+-]?\d+")

Errors = dict[str, str]


def settings_of(values: Mapping[str, str]) -> dict[str, Any]:
    """The settings a draft form holds, for ``configurations.create_draft``."""
    settings: dict[str, Any] = {}
    for key in SETTING_FIELDS:
        text = values.get(key, "").strip()
        if not text:
            continue
        if key in WHOLE_SETTINGS and _WHOLE.fullmatch(text):
            settings[key] = int(text)
        elif key in FLAG_SETTINGS and text in ("true", "false"):
            settings[key] = text == "true"
        else:
            settings[key] = text
    return settings


def field_errors(error: SmartpumpError) -> tuple[Errors, list[str]]:
    """A refused draft as one message per form field (``settings.kvo_rate_ml_per_h`` is the field
    ``kvo_rate_ml_per_h``) and the messages that belong to no field of the form."""
    per_field: Errors = {}
    general: list[str] = []
    for detail in getattr(error, "details", ()):
        if not isinstance(detail, Mapping):
            continue
        where, message = str(detail.get("field", "")), str(detail.get("message", ""))
        field = where.removeprefix("settings.")
        if field in DRAFT_FIELDS:
            per_field[field] = f"{per_field[field]}; {message}" if field in per_field else message
        else:
            general.append(f"{where}: {message}")
    return per_field, general


def waves_of(text: str) -> list[int]:
    """Deployment waves typed as cumulative percentages (``10,50,100``); the deployment service judges them.

    Raises:
        InvalidInputError: ``deployment.waves`` when a part is not a whole number.
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(_WHOLE.fullmatch(part) for part in parts):
        raise InvalidInputError(
            f"waves are whole percentages separated by commas, such as 10,50,100 (got {text!r})",
            code="deployment.waves",
        )
    return [int(part) for part in parts]
