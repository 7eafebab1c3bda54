"""HTTP API under /api/v1: typed dependencies, schemas, error mapping and one router per resource."""
