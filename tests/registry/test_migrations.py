"""Migrations on databases that hold rows, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from workbench.errors import Conflict
from workbench.registry.db import Registry
from workbench.registry.unique import violates

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


UNIQUE_NAMES = {
    "datasets": "uq_datasets_owner_id_name",
    "environments": "uq_environments_owner_id_name",
    "algorithms": "uq_algorithms_owner_id_name",
}


def unique_constraints(registry: Registry, table_name: str) -> dict[str, list[str]]:
    found = sa.inspect(registry.engine).get_unique_constraints(table_name)
    return {c["name"]: c["column_names"] for c in found}


def test_names_are_unique_per_owner_in_the_database(db_url):
    registry = Registry(db_url)
    registry.upgrade()
    for table, name in UNIQUE_NAMES.items():
        assert unique_constraints(registry, table)[name] == ["owner_id", "name"]
    with registry.engine.begin() as conn:
        alice, bob = insert(conn, "users", username="alice"), insert(conn, "users", username="bob")
        for table in UNIQUE_NAMES:
            insert(conn, table, owner_id=alice, name="same")
            insert(conn, table, owner_id=bob, name="same")  # another owner may
    for table, name in UNIQUE_NAMES.items():
        with pytest.raises(sa.exc.IntegrityError) as caught, registry.engine.begin() as conn:
            insert(conn, table, owner_id=alice, name="same")
        assert violates(caught.value, name)
        assert not violates(caught.value, "uq_users_username")
    registry.dispose()


def test_upgrading_to_unique_names_stops_at_duplicates_and_changes_nothing(db_url):
    registry = Registry(db_url)
    registry.upgrade("0003")
    with registry.engine.begin() as conn:
        alice, bob = insert(conn, "users", username="alice"), insert(conn, "users", username="bob")
        first = insert(conn, "datasets", owner_id=alice, name="digits")
        second = insert(conn, "datasets", owner_id=alice, name="digits")
        insert(conn, "datasets", owner_id=bob, name="digits")  # another owner's: fine
        env = [insert(conn, "environments", owner_id=bob, name="py") for _ in range(3)]
        insert(conn, "algorithms", owner_id=alice, name="cnn")
    with pytest.raises(Conflict) as caught:
        registry.upgrade()
    message = caught.value.message
    assert "Nothing was changed" in message and "workbench db upgrade" in message
    assert caught.value.details["duplicates"] == [
        f"datasets: owner 'alice' (user id {alice}) has 2 named 'digits' (ids {first}, {second})",
        f"environments: owner 'bob' (user id {bob}) has 3 named 'py' "
        f"(ids {', '.join(map(str, env))})",
    ]
    assert registry.current_revision() == "0003"
    for table, name in UNIQUE_NAMES.items():
        assert name not in unique_constraints(registry, table)
    with registry.engine.begin() as conn:  # renamed as the message says, it goes through
        conn.execute(
            sa.text("UPDATE datasets SET name = 'digits (2)' WHERE id = :id"), {"id": second}
        )
        for i, env_id in enumerate(env[1:], 2):
            conn.execute(
                sa.text("UPDATE environments SET name = :name WHERE id = :id"),
                {"name": f"py ({i})", "id": env_id},
            )
    registry.upgrade()
    assert registry.current_revision() == registry.head_revision()
    registry.dispose()


def test_downgrading_unique_names_drops_the_constraints(db_url):
    from alembic import command

    registry = Registry(db_url)
    registry.upgrade("0004")
    command.downgrade(registry._alembic_config(), "0003")
    for table, name in UNIQUE_NAMES.items():
        assert name not in unique_constraints(registry, table)
    with registry.engine.begin() as conn:
        owner = insert(conn, "users", username="u")
        insert(conn, "datasets", owner_id=owner, name="twice")
        insert(conn, "datasets", owner_id=owner, name="twice")
    registry.dispose()


def test_the_model_registry_upgrade_fills_in_purpose_and_framework(db_url):
    """0006: a trained model's purpose is its algorithm's, its versions' framework their
    environment's; a version with neither keeps "" and every row is kept."""
    registry = Registry(db_url)
    registry.upgrade("0005")
    with registry.engine.begin() as conn:
        owner = insert(conn, "users", username="u")
        algorithm = insert(conn, "algorithms", owner_id=owner, name="a", purpose="text")
        env = insert(conn, "environments", owner_id=owner, name="e", framework="pytorch")
        trained = insert(conn, "models", owner_id=owner, name="trained")
        other = insert(conn, "models", owner_id=owner, name="other")
        insert(
            conn,
            "model_versions",
            model_id=trained,
            version=1,
            algorithm_id=algorithm,
            environment_id=env,
        )
        insert(conn, "model_versions", model_id=other, version=1)
    registry.upgrade()
    with registry.engine.connect() as conn:
        models = dict(conn.execute(sa.text("SELECT name, purpose FROM models")).all())
        numbers = dict(conn.execute(sa.text("SELECT name, last_version FROM models")).all())
        frameworks = sorted(conn.execute(sa.text("SELECT framework FROM model_versions")).scalars())
        tags = conn.execute(sa.text("SELECT tags FROM model_versions")).scalars().all()
    assert models == {"trained": "text", "other": ""}
    assert numbers == {"trained": 1, "other": 1}
    assert frameworks == ["", "pytorch"]
    assert [t if isinstance(t, dict) else json.loads(t) for t in tags] == [{}, {}]
    registry.dispose()


def test_an_upgraded_registry_never_gives_an_id_twice(db_url):
    """0011: rows and ids are kept, and after deleting the newest row of a table with an
    integer id, the next row gets a new id (SQLite gave the deleted one again)."""
    registry = Registry(db_url)
    registry.upgrade("0010")
    with registry.engine.begin() as conn:
        owner = insert(conn, "users", username="u")
        gone = insert(conn, "environments", owner_id=owner, name="gone")
        kept = insert(conn, "environments", owner_id=owner, name="kept")
        newest = insert(conn, "environments", owner_id=owner, name="newest")
        workspace = insert(conn, "workspaces", owner_id=owner, environment_id=kept)
        job = insert(conn, "jobs", kind="environment-build", owner_id=owner, target_id=gone)
        conn.execute(sa.text("DELETE FROM environments WHERE id = :id"), {"id": gone})
    registry.upgrade()
    inspector = sa.inspect(registry.engine)
    integer_ids = [
        t
        for t in inspector.get_table_names()
        if inspector.get_pk_constraint(t)["constrained_columns"] == ["id"]
    ]
    assert len(integer_ids) >= 20
    with registry.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT environment_id FROM workspaces")).scalar() == kept
        assert conn.execute(sa.text("SELECT target_id FROM jobs")).scalar() == gone
        for table, row in (("workspaces", workspace), ("jobs", job), ("environments", newest)):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row})
        assert insert(conn, "workspaces", owner_id=owner, environment_id=kept) > workspace
        assert insert(conn, "jobs", kind="environment-build", owner_id=owner) > job
        assert insert(conn, "environments", owner_id=owner, name="again") > newest
    if registry.engine.dialect.name == "sqlite":
        with registry.engine.connect() as conn:
            schemas = dict(conn.execute(sa.text("SELECT name, sql FROM sqlite_master")).all())
        assert [t for t in integer_ids if "AUTOINCREMENT" not in schemas[t]] == []
    registry.dispose()
