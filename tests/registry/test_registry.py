"""The registry on SQLite and on a real PostgreSQL: migrations, constraints, every entity."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from workbench.enums import (
    AnnotationType,
    DatasetFormat,
    Purpose,
    Role,
    Split,
    SplitMode,
    SubPurpose,
    Visibility,
)
from workbench.errors import SchemaOutOfDate
from workbench.registry import models as m
from workbench.registry.db import Registry


def test_migrations_match_the_models(db_url):
    registry = Registry(db_url)
    registry.upgrade()
    with registry.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), m.Base.metadata)
    assert diffs == []
    assert registry.current_revision() == registry.head_revision()
    registry.upgrade()  # idempotent
    assert set(sa.inspect(registry.engine).get_table_names()) >= {
        "users",
        "api_tokens",
        "teams",
        "team_members",
        "projects",
        "datasets",
        "dataset_splits",
        "environments",
        "workspaces",
        "workspace_members",
        "algorithms",
        "algorithm_images",
        "training_tasks",
        "models",
        "model_versions",
        "model_formats",
        "benchmark_runs",
        "services",
        "jobs",
        "invitations",
        "quotas",
        "alembic_version",
    }
    registry.dispose()


def test_an_unmigrated_registry_is_refused_with_the_fix(db_url):
    registry = Registry(db_url)
    with pytest.raises(SchemaOutOfDate, match="workbench db upgrade"):
        registry.check_schema()
    registry.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    registry.upgrade()
    with registry.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    registry.dispose()


def test_every_entity_round_trips(wb):
    with wb.registry.session() as s:
        user = m.User(username="carol", role=Role.ADMIN)
        s.add(user)
        s.flush()
        own = {"owner_id": user.id}
        project = m.Project(name="pricing", **own)
        s.add(project)
        s.flush()
        ds = m.Dataset(
            name="d",
            purpose=Purpose.IMAGE,
            sub_purpose=SubPurpose.CLASSIFICATION,
            annotation_type=AnnotationType.LABEL,
            format=DatasetFormat.DIR,
            split_mode=SplitMode.RATIO,
            project_id=project.id,
            **own,
        )
        ds.splits.append(
            m.DatasetSplit(
                split=Split.TRAIN,
                archive_name="a.zip",
                archive_bytes=3 * 1024**3,
                sha256="0" * 64,
                files=1,
                unpacked_bytes=1,
                storage_key="k",
                report={"ok": True},
                statistics={"samples": 1},
            )
        )
        env = m.Environment(name="python", framework="python", **own)
        s.add_all([ds, env, m.Team(name="vision")])
        s.flush()
        ws = m.Workspace(
            name="w",
            purpose=Purpose.IMAGE,
            sub_purpose=SubPurpose.CLASSIFICATION,
            environment_id=env.id,
            dataset_id=ds.id,
            **own,
        )
        algo = m.Algorithm(
            name="cnn", purpose=Purpose.IMAGE, sub_purpose=SubPurpose.CLASSIFICATION, **own
        )
        job = m.Job(kind="training", **own)
        s.add_all([ws, algo, job])
        s.flush()
        s.add(m.AlgorithmImage(algorithm_id=algo.id, kind="train", env={"EPOCHS": "3"}))
        model = m.Model(name="digits", project_id=project.id, **own)
        s.add(model)
        s.flush()
        version = m.ModelVersion(
            model_id=model.id,
            version=1,
            algorithm_id=algo.id,
            dataset_id=ds.id,
            environment_id=env.id,
            evaluation={"accuracy": 0.97},
        )
        s.add(version)
        s.flush()
        task = m.TrainingTask(
            name="t",
            purpose=Purpose.IMAGE,
            sub_purpose=SubPurpose.CLASSIFICATION,
            algorithm_id=algo.id,
            dataset_id=ds.id,
            base_model_version_id=version.id,
            job_id=job.id,
            parameters={"EPOCHS": 3},
            **own,
        )
        s.add(task)
        s.flush()
        version.task_id = task.id
        s.add_all(
            [
                m.ModelFormat(model_version_id=version.id, format="onnx", check={"max_abs": 1e-6}),
                m.BenchmarkRun(
                    model_version_id=version.id,
                    format="onnx",
                    device="cpu",
                    batch_size=8,
                    p50_ms=1.0,
                    p95_ms=2.0,
                    p99_ms=3.0,
                    throughput=900.0,
                    memory_mb=None,
                    job_id=job.id,
                ),
                m.Service(name="svc", model_version_id=version.id, **own),
                m.WorkspaceMember(workspace_id=ws.id, user_id=user.id),
            ]
        )
    with wb.registry.session() as s:
        got = s.scalar(sa.select(m.Dataset).where(m.Dataset.name == "d"))
        assert got.visibility is Visibility.PRIVATE
        assert got.splits[0].archive_bytes == 3 * 1024**3  # BigInteger on both backends
        assert got.splits[0].split is Split.TRAIN
        assert s.scalar(sa.select(m.ModelVersion.evaluation)) == {"accuracy": 0.97}
        assert s.scalar(sa.select(m.TrainingTask.parameters)) == {"EPOCHS": 3}
        assert s.scalar(sa.select(sa.func.count()).select_from(m.BenchmarkRun)) == 1


def test_unique_and_foreign_keys_are_enforced(wb):
    with wb.registry.session() as s:
        s.add(m.User(username="dup"))
    with pytest.raises(sa.exc.IntegrityError), wb.registry.session() as s:
        s.add(m.User(username="dup"))
    with pytest.raises(sa.exc.IntegrityError), wb.registry.session() as s:
        s.add(m.Project(name="p", owner_id=424242))


def test_deleting_a_dataset_cascades_to_its_splits(wb):
    with wb.registry.session() as s:
        user = m.User(username="u")
        s.add(user)
        s.flush()
        ds = m.Dataset(
            name="d",
            purpose=Purpose.TEXT,
            sub_purpose=SubPurpose.CLASSIFICATION,
            annotation_type=AnnotationType.LABEL,
            format=DatasetFormat.DIR,
            split_mode=SplitMode.RATIO,
            owner_id=user.id,
        )
        ds.splits.append(
            m.DatasetSplit(
                split=Split.TRAIN,
                archive_name="a",
                archive_bytes=1,
                sha256="",
                files=1,
                unpacked_bytes=1,
                storage_key="k",
                report={},
                statistics={},
            )
        )
        s.add(ds)
    with wb.registry.session() as s:
        s.delete(s.scalar(sa.select(m.Dataset)))
    with wb.registry.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.DatasetSplit)) == 0


def test_migrations_go_down_and_up_again(db_url):
    from alembic import command

    registry = Registry(db_url)
    registry.upgrade()
    command.downgrade(registry._alembic_config(), "base")
    assert set(sa.inspect(registry.engine).get_table_names()) <= {"alembic_version"}
    registry.upgrade()
    assert registry.current_revision() == registry.head_revision() == "0011"
    versions = {c["name"] for c in sa.inspect(registry.engine).get_columns("model_versions")}
    assert "source" in versions
    columns = {c["name"] for c in sa.inspect(registry.engine).get_columns("environments")}
    assert "state_reason" in columns
    jobs = {c["name"] for c in sa.inspect(registry.engine).get_columns("jobs")}
    assert {"instance", "cpus", "memory_mb", "gpus", "spec", "result"} <= jobs
    assert {"training_metrics", "model_aliases", "invitations", "quotas"} <= set(
        sa.inspect(registry.engine).get_table_names()
    )
    registry.dispose()
