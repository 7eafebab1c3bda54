"""Structure validation of the messages we produce, against hl7apy's HL7 v2 definitions.

hl7apy is untyped; this module is its only user and returns plain strings. Messages are parsed
with ``VALIDATION_LEVEL.STRICT`` (data types, lengths, cardinalities, known segments) and then
validated against the message structure. hl7apy 1.3.5 has no ORU_R40 structure; IHE PCD-04
defines ORU_R40 with the ORU_R01 content, so PCD-04 is validated as ORU_R01.
"""

from __future__ import annotations

from typing import Final

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from smartpump.interop.hl7v2.message import Message

_STRUCTURE_STAND_IN: Final = {"ORU_R40": "ORU_R01"}


def structure_problems(message: Message) -> tuple[str, ...]:
    """Problems hl7apy reports for the message (empty when it is valid at STRICT level)."""
    code, trigger, structure = message.message_type
    text = message.to_er7()
    stand_in = _STRUCTURE_STAND_IN.get(structure)
    if stand_in is not None:
        text = text.replace(f"{code}^{trigger}^{structure}", f"{code}^{trigger}^{stand_in}", 1)
    try:
        parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        valid = bool(parsed.validate())
    except Exception as error:  # hl7apy raises many unrelated types; each one is a finding
        return (f"{type(error).__name__}: {error}",)
    return () if valid else ("hl7apy: message does not validate",)
