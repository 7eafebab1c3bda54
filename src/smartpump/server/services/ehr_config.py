"""EHR settings and names shared by order intake, order outcomes and documentation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from smartpump.interop.hl7v2.pcd03 import DEFAULT_MAX_ORDER_AGE

DEFAULT_CHANNEL: Final = "A"
SOURCE_HL7: Final = "hl7"
SOURCE_FHIR: Final = "fhir"


@dataclass(frozen=True, slots=True, kw_only=True)
class EhrConfig:
    """Order intake and documentation settings: order age limit, offer lifetime, identity of our messages."""

    max_order_age: timedelta = DEFAULT_MAX_ORDER_AGE
    offer_expires_in_s: int = 600
    sending_application: str = "SMARTPUMP"
    receiving_application: str = "EHR"
    receiving_facility: str = "EHR"
    status_interval: timedelta | None = timedelta(minutes=5)


DEFAULT_CONFIG: Final = EhrConfig()
