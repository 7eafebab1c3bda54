"""A released library stored as a row, for tests whose subject is not the library lifecycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.server.db.models import LibraryVersion, User
from smartpump.server.services.library_lifecycle import content_hash


def store_released_library(
    session: Session,
    facility_id: int,
    library: DrugLibrary,
    now: datetime,
    *,
    author_id: int | None = None,
    signed_document: str | None = None,
    key_id: str | None = None,
) -> int:
    """Add a released version of ``library`` for the facility (its author created when not given); its id."""
    if author_id is None:
        author = User(username=f"author-v{library.version}", password_hash="-", created_at=now)
        session.add(author)
        session.flush()
        author_id = author.id
    row = LibraryVersion(
        facility_id=facility_id,
        name=library.name,
        version=library.version,
        status=LibraryStatus.RELEASED,
        document=json_format.dumps(library),
        content_hash=content_hash(library),
        author_id=author_id,
        created_at=now,
        updated_at=now,
        released_at=now,
        signed_document=signed_document,
        key_id=key_id,
    )
    session.add(row)
    session.flush()
    return row.id
