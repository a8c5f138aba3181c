"""The shared registry: a SQL database (SQLite by default, PostgreSQL for teams)."""

from workbench.registry.db import Registry

__all__ = ["Registry"]
