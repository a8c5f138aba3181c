"""unique names per owner: datasets, environments and algorithms

The services refused a second dataset, environment or algorithm of the same name for the
same owner only by looking first, so two requests at the same moment could both pass the
look and both insert. This revision adds the constraints that make the database refuse
the second one: ``uq_datasets_owner_id_name``, ``uq_environments_owner_id_name`` and
``uq_algorithms_owner_id_name``, each on ``(owner_id, name)``.

Existing duplicates: the upgrade looks for them first and, if there are any, stops
before changing anything, raising :class:`~workbench.errors.Conflict` with one line per
clash (table, owner, name, the ids that share it) and what to do: rename all but one of
each, then run ``workbench db upgrade`` again. It does not rename them itself: names are
what people find their things by, so which one keeps the name is theirs to choose.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from workbench.errors import Conflict

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: table -> the CLI command that renames one of its rows
TABLES = {
    "datasets": "workbench dataset set",
    "environments": "workbench environment set",
    "algorithms": "workbench algorithm set",
}


def duplicates(connection: sa.Connection, table_name: str) -> list[str]:
    """One line per (owner, name) that more than one row of ``table_name`` shares."""
    table = sa.table(table_name, sa.column("id"), sa.column("owner_id"), sa.column("name"))
    users = sa.table("users", sa.column("id"), sa.column("username"))
    shared = (
        sa.select(table.c.owner_id, table.c.name)
        .group_by(table.c.owner_id, table.c.name)
        .having(sa.func.count() > 1)
        .subquery()
    )
    rows = connection.execute(
        sa.select(table.c.id, table.c.owner_id, users.c.username, table.c.name)
        .join(shared, (shared.c.owner_id == table.c.owner_id) & (shared.c.name == table.c.name))
        .outerjoin(users, users.c.id == table.c.owner_id)
        .order_by(table.c.owner_id, table.c.name, table.c.id)
    ).all()
    clashes: dict[tuple[int, str], tuple[str, list[int]]] = {}
    for row in rows:
        clashes.setdefault((row.owner_id, row.name), (row.username or "?", []))[1].append(row.id)
    return [
        f"{table_name}: owner {username!r} (user id {owner_id}) has {len(ids)} named "
        f"{name!r} (ids {', '.join(map(str, ids))})"
        for (owner_id, name), (username, ids) in clashes.items()
    ]


def upgrade() -> None:
    found = [line for table in TABLES for line in duplicates(op.get_bind(), table)]
    if found:
        raise Conflict(
            "Cannot make names unique per owner: some owners use a name twice. Nothing was "
            "changed. Rename all but one of each (with the Workbench version that is running "
            "now, e.g. `"
            + "`, `".join(f"{command} ID --name NEW-NAME" for command in TABLES.values())
            + "`, or in SQL: UPDATE <table> SET name = 'NEW-NAME' WHERE id = ID), then run "
            "`workbench db upgrade` again:\n  " + "\n  ".join(found),
            duplicates=found,
        )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(
                batch_op.f(f"uq_{table}_owner_id_name"), ["owner_id", "name"]
            )


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_owner_id_name"), type_="unique")
