"""Persistence: SQLAlchemy 2 models, repositories, a unit of work and Alembic migrations."""
