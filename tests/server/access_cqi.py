"""CQI routes: pharmacists, pharmacy approvers and auditors read; only pharmacists make suggestion drafts.

Admins (users and grants), nurses, biomed and viewers have no CQI access (least privilege).
"""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import Role

CQI_READERS: Final = frozenset({Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR})

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/cqi/overview"): CQI_READERS,
    ("GET", "/api/v1/cqi/report.csv"): CQI_READERS,
    ("GET", "/api/v1/cqi/report.html"): CQI_READERS,
    ("POST", "/api/v1/cqi/replay"): CQI_READERS,
    ("POST", "/api/v1/cqi/suggestions"): frozenset({Role.PHARMACIST}),
}
