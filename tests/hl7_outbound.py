"""Every HL7 message the server queues for the EHR during a server, integration or end-to-end test is
validated with hl7apy at STRICT level when the test ends (the third-party validator of DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pytest

from smartpump.interop.hl7v2.message import Message
from smartpump.interop.hl7v2.validation import structure_problems

VALIDATED_DIRS: Final = ("server", "integration", "e2e")


@pytest.fixture(autouse=True)
def every_outbound_hl7_message_validates(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Message]]:
    """Collect each message ``ehr_outbound.enqueue`` is given (then queued); fail on any hl7apy problem."""
    queued: list[Message] = []
    if request.node.path.parent.name not in VALIDATED_DIRS:
        yield queued
        return
    from smartpump.server.services import ehr, ehr_documentation, ehr_outbound, ehr_outcomes

    original = ehr_outbound.enqueue

    def collecting(*args: Any, **kwargs: Any) -> int:
        queued.append(args[3] if len(args) > 3 else kwargs["message"])
        return original(*args, **kwargs)

    for module in (ehr, ehr_documentation, ehr_outbound, ehr_outcomes):
        if getattr(module, "enqueue", None) is original:
            monkeypatch.setattr(module, "enqueue", collecting)
    yield queued
    problems = [(m.type_text, m.control_id, structure_problems(m)) for m in queued]
    assert [p for p in problems if p[2]] == [], "outbound HL7 that does not validate"
