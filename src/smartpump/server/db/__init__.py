"""Persistence: SQLAlchemy 2 models, engine/session factory, repositories and Alembic migrations."""
