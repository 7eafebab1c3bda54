"""Every table the server owns, on one metadata: Alembic, the schema test and the test wipe read it."""

from __future__ import annotations

from sqlalchemy import MetaData

from smartpump.server.db import (  # noqa: F401  (importing a model module registers its tables)
    models,
    models_bench,
    models_ehr,
    models_fleet_ops,
    models_fleet_view,
    models_identity,
    models_patients,
)
from smartpump.server.db.base import Base

METADATA: MetaData = Base.metadata
