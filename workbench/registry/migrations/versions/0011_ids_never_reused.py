"""an id is never given twice: on SQLite every table with one integer id gets AUTOINCREMENT
(without it SQLite gives a new row the highest id plus one, so a deleted row's id, and
what still names it, passed to the next row's owner); PostgreSQL's sequences already never
go back, so there nothing changes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _tables_with_an_integer_id() -> list[str]:
    inspector = sa.inspect(op.get_bind())
    found = []
    for name in sorted(inspector.get_table_names()):
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        if key == ["id"] and isinstance(columns["id"]["type"], sa.Integer):
            found.append(name)
    return found


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _tables_with_an_integer_id():
        # batch mode copies the rows with their ids: the copy's sequence starts at the
        # highest id kept (ids deleted above it before this revision cannot be known)
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
