"""Alembic environment: runs on the engine handed over by ``Registry``, or on a URL.

On SQLite, batch mode changes a table by copying it, dropping the original and renaming
the copy. With foreign keys enforced, dropping a table deletes its rows first and that
cascades (``ON DELETE CASCADE``) or fails on the tables referring to it, so migrations run
with ``PRAGMA foreign_keys=OFF`` (it only takes effect outside a transaction, hence before
the migrations' transaction begins), check every foreign key before committing
(``PRAGMA foreign_key_check``) and turn enforcement on again afterwards, as SQLite's own
procedure for changing a table's schema says.
"""

from alembic import context
from sqlalchemy import create_engine

from workbench.registry.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"the migration left broken foreign keys: {broken}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
