"""Migrations on databases that hold rows, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from workbench.registry import Registry

FILLERS: dict[type, Any] = {
    str: "x",
    int: 0,
    float: 0.0,
    bool: True,
    datetime: datetime(2026, 1, 1, tzinfo=UTC),
    dict: {},
}


def insert(conn: sa.Connection, table_name: str, **values: Any) -> int:
    """Insert a row into the table as it is at the database's revision; the required
    columns not given get a filler of their type. Returns its id."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if not column.primary_key:
            kind = dict if isinstance(column.type, sa.JSON) else column.type.python_type
            values[column.name] = FILLERS[kind]
    return conn.execute(sa.insert(table).values(values).returning(table.c.id)).scalar_one()


def count(conn: sa.Connection, table_name: str) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table_name}")).scalar_one()


def test_upgrades_keep_the_rows_that_refer_to_a_changed_table(db_url):
    """SQLite's batch mode copies a changed table and drops the original: with foreign keys
    enforced that drop would delete the rows referring to it (ON DELETE CASCADE)."""
    registry = Registry(db_url)
    registry.upgrade("0002")
    with registry.engine.begin() as conn:
        owner = insert(conn, "users", username="u")
        algorithm = insert(conn, "algorithms", owner_id=owner, name="a")
        insert(conn, "algorithm_images", algorithm_id=algorithm, kind="train")
        dataset = insert(conn, "datasets", owner_id=owner, name="d")
        insert(conn, "dataset_splits", dataset_id=dataset, split="train")
        env = insert(conn, "environments", owner_id=owner, name="e")
        insert(conn, "workspaces", owner_id=owner, environment_id=env, dataset_id=dataset)
    registry.upgrade()
    with registry.engine.connect() as conn:
        kept = {t: count(conn, t) for t in ("algorithm_images", "dataset_splits", "workspaces")}
        assert kept == {"algorithm_images": 1, "dataset_splits": 1, "workspaces": 1}
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    registry.dispose()
