"""The shared registry: a SQL database (SQLite by default, PostgreSQL for teams);
:class:`~workbench.registry.db.Registry` and the tables of ``models``."""
