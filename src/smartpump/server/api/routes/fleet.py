"""Fleet-wide views: library currency (which pumps run which library version)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from smartpump.server.api.deps import SessionDep, require_roles
from smartpump.server.api.schemas import LibraryCurrencyOut
from smartpump.server.auth import ALL_ROLES, Access
from smartpump.server.services import fleet

router = APIRouter(prefix="/fleet", tags=["pumps"])


@router.get("/library-currency")
def library_currency(
    access: Annotated[Access, require_roles(*ALL_ROLES)], session: SessionDep
) -> list[LibraryCurrencyOut]:
    """Per facility: the released version and hash, pumps per installed version, pumps not yet current (a
    pump is current only when it runs the release's content hash) and those running other content under
    the released version number."""
    return [
        LibraryCurrencyOut(
            facility_id=c.facility_id,
            released_version=c.released_version,
            released_sha256=c.released_sha256,
            pumps_by_version=c.pumps_by_version,
            current=c.current,
            outdated_serials=list(c.outdated_serials),
            same_version_other_content=list(c.same_version_other_content),
        )
        for c in fleet.library_currency(session, access)
    ]
