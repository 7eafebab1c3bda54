"""EHR integration in the server, its public names in one place: orders in (PCD-03 over MLLP, FHIR
MedicationRequest) offered to pumps (``ehr_orders``), every order's outcome told back to the EHR
(``ehr_outcomes``), auto-documentation out (PCD-10 / PCD-04 / PCD-01, ``ehr_documentation``) through a
persistent store-and-forward queue (``ehr_outbound``).
"""

from __future__ import annotations

from smartpump.server.services.ehr_config import DEFAULT_CHANNEL, SOURCE_FHIR, SOURCE_HL7, EhrConfig
from smartpump.server.services.ehr_documentation import (
    AutoDocumentation,
    device_identity,
    eui64,
    event_data,
    link_orders,
)
from smartpump.server.services.ehr_orders import (
    OrderListener,
    program_offer,
    submit_order,
)
from smartpump.server.services.ehr_outbound import (
    DEFAULT_BACKOFF,
    Attempt,
    Sender,
    enqueue,
    pending,
    queue_state,
    send_next,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_CHANNEL",
    "SOURCE_FHIR",
    "SOURCE_HL7",
    "Attempt",
    "AutoDocumentation",
    "EhrConfig",
    "OrderListener",
    "Sender",
    "device_identity",
    "enqueue",
    "eui64",
    "event_data",
    "link_orders",
    "pending",
    "program_offer",
    "queue_state",
    "send_next",
    "submit_order",
]
