"""Shared fixtures: registries on SQLite and on a real PostgreSQL, services, users."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from traitlets.config import Config

from tests import cleanup
from workbench.config import Settings
from workbench.datasets.types import ArchiveLimits
from workbench.enums import Role
from workbench.jobs.schemas import JobLogPage, job_error
from workbench.registry.db import Registry
from workbench.services import Workbench
from workbench.users import Actor

pytest_plugins = ("pytest_jupyter.jupyter_server", "tests.docker_fixtures")

PG_URL = os.environ.get("WORKBENCH_TEST_PG_URL", "")
SMALL_LIMITS = ArchiveLimits(
    max_archive_bytes=20 * 1024**2, max_total_bytes=50 * 1024**2, max_files=5000, max_ratio=200
)


def _fresh_postgres_db(template: str = "") -> Iterator[str]:
    """A new database on the suite's PostgreSQL server, empty or a copy of ``template``;
    dropped afterwards."""
    if not PG_URL:
        pytest.fail(
            "WORKBENCH_TEST_PG_URL is not set: run the suite with scripts/test, which starts "
            "PostgreSQL, or deselect with -m 'not postgres'."
        )
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"wbtest_{uuid.uuid4().hex[:12]}"
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    with admin.connect() as conn:
        conn.execute(sa.text(create))
    try:
        yield sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _postgres_at_head() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once a session, the template of
    :func:`registry_url`'s (nothing stays connected to it)."""
    for url in _fresh_postgres_db():
        registry = Registry(url)
        registry.upgrade()
        registry.engine.dispose()
        yield sa.make_url(url).database or ""


_SQLITE_AT_HEAD: list[Path] = []


def _sqlite_at_head() -> Path:
    """A SQLite registry migrated to head once a test process (made on first use)."""
    if not _SQLITE_AT_HEAD:
        path = Path(tempfile.mkdtemp(prefix="workbench-registry-")) / "registry.db"
        registry = Registry(f"sqlite:///{path}")
        registry.upgrade()
        registry.engine.dispose()  # closed: the WAL is checkpointed into the file
        atexit.register(shutil.rmtree, path.parent, True)
        _SQLITE_AT_HEAD.append(path)
    return _SQLITE_AT_HEAD[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty registry database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield from _fresh_postgres_db()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new registry database at head on each backend: a copy of one migrated once a
    session (the migrations themselves are tested on :func:`db_url`'s empty ones)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"  # make_workbench copies it in
    else:
        yield from _fresh_postgres_db(template=request.getfixturevalue("_postgres_at_head"))


def make_workbench(home: Path, db_url: str = "", **settings: Any) -> Workbench:
    """Services on a registry at head: a new SQLite one starts as a copy of the session's
    migrated one; then the real upgrade runs (nothing to do at head)."""
    wb = Workbench.from_settings(
        Settings(home=home, db_url=db_url, archive_limits=SMALL_LIMITS, **settings)
    )
    url = wb.registry.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sqlite_at_head(), path)
    wb.registry.upgrade()
    return wb


@pytest.fixture
def wb(tmp_path: Path, registry_url: str) -> Iterator[Workbench]:
    """Services on a migrated registry (both backends) and a store in tmp_path."""
    workbench = make_workbench(tmp_path / "home", registry_url)
    yield workbench
    workbench.close()


@pytest.fixture
def wb_sqlite(tmp_path: Path) -> Iterator[Workbench]:
    """Services on SQLite only, for tests about files rather than SQL."""
    workbench = make_workbench(tmp_path / "home")
    yield workbench
    workbench.close()


@dataclass
class People:
    alice: Actor  # admin
    bob: Actor  # member


def add_people(workbench: Workbench) -> People:
    a = workbench.users.add_user("alice", role=Role.ADMIN)
    b = workbench.users.add_user("bob")
    return People(
        alice=Actor(a.id, a.username, a.role),
        bob=Actor(b.id, b.username, b.role),
    )


def task_log(workbench: Workbench, actor: Actor, task_id: int, offset: int = 0) -> JobLogPage:
    """A training task's current run's log: its job's (the one way to read any log)."""
    job_id = workbench.training.get(actor, task_id).job_id
    assert job_id is not None, f"task {task_id} has no run"
    return workbench.jobs.tail(actor, job_id, offset)


def build_tar(
    workbench: Workbench, actor: Actor, workspace_id: int, project: str, kind: str, name: str
) -> list[str]:
    """A workspace build (a job) run to its end; its log's lines. A failed build raises its
    error (``BuildFailed``...), with the lines as its ``lines``."""
    started = workbench.builds.build(actor, workspace_id, project, kind, name)
    job = workbench.jobs.wait(started.job_id, timeout=1800)
    lines = workbench.jobs.tail(actor, started.job_id).text.splitlines()
    if job.state != "succeeded":
        error = job_error(job)
        error.lines = lines  # type: ignore[attr-defined]
        raise error
    return lines


def accept_invitations(workbench: Workbench, actor: Actor) -> None:
    """``actor`` accepts every invitation addressed to them (a team's, a workspace's):
    adding someone makes an invitation, a member only once accepted."""
    for invitation in workbench.invitations.list(actor):
        if invitation.user == actor.username:
            workbench.invitations.accept(actor, invitation.id)


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


def make_datasets() -> ModuleType:
    """examples/datasets/make_datasets.py, imported by path (examples/ is not a package)."""
    name = "workbench_example_make_datasets"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "examples" / "datasets" / "make_datasets.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def server_config(home: Path, backend: str, **workbench: Any) -> Config:
    """The Jupyter server config of the in-process (pytest-jupyter) test servers."""
    from workbench_ext.identity import WorkbenchIdentityProvider

    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"workbench_ext": True, "voila.server_extension": True},
                "identity_provider_class": WorkbenchIdentityProvider,
                "allow_unauthenticated_access": False,
            },
            "WorkbenchIdentityProvider": {"owner": "owner"},
            "WorkbenchApp": {
                "home": str(home),
                "upgrade_on_start": True,
                "backend": backend,
                "panel_warm_kernels": 0,  # tests that want them say so
                **workbench,
            },
        }
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running for the rest
    of the session, which pytest-jupyter's per-test loop fixture must not meet."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def add_environment(wb: Workbench, **fields: Any) -> int:
    """An environment row (as an admin's preset sync or an upload would leave it)."""
    from workbench.registry.models import Environment

    fields.setdefault("framework", "python")
    with wb.registry.session() as s:
        env = Environment(**fields)
        s.add(env)
        s.flush()
        return env.id


def add_preset_environments(wb: Workbench, owner_id: int, images: dict[str, str]) -> dict[str, int]:
    """Ready preset environments named after their framework, one per image: name -> id."""
    return {
        name: add_environment(
            wb,
            name=name,
            framework=name,
            image_ref=image,
            owner_id=owner_id,
            visibility="preset",
            state="ready",
        )
        for name, image in images.items()
    }


def add_algorithm(
    wb: Workbench, owner_id: int, image: dict[str, Any] | None = None, **fields: Any
) -> int:
    """An online, public image-classification algorithm with a ready training image, as
    the algorithm library leaves one: ``fields`` override the algorithm's columns,
    ``image`` the training image's (``image_ref``, ``env``, ``digest``, ...)."""
    from workbench.registry import models as m

    values = {
        "name": "algorithm",
        "purpose": "image",
        "sub_purpose": "classification",
        "state": "online",
        "visibility": "public",
        **fields,
    }
    with wb.registry.session() as s:
        algorithm = m.Algorithm(owner_id=owner_id, **values)
        s.add(algorithm)
        s.flush()
        columns = {"state": "ready", **(image or {})}
        s.add(m.AlgorithmImage(algorithm_id=algorithm.id, kind="train", **columns))
        return algorithm.id


def add_online_dataset(
    wb: Workbench, owner: Actor, folder: Path, counts: dict[str, int], name: str = "digits"
) -> int:
    """A public, online image-classification dataset with ``counts`` images per class."""
    from tests.archives import image_classes
    from workbench.datasets.schemas import DatasetCreate
    from workbench.enums import Split

    ds = wb.datasets.create(
        owner,
        DatasetCreate(
            name=name,
            purpose="image",
            sub_purpose="classification",
            format="dir",
            visibility="public",
        ),
    )
    with image_classes(folder / f"{name}.zip", counts).open("rb") as f:
        archive = wb.store.save_stream(f, 10**8)
    wb.datasets.upload(owner, ds.id, Split.TRAIN, archive, f"{name}.zip")
    wb.datasets.publish(owner, ds.id)
    return ds.id


@pytest.fixture(autouse=True, scope="session")
def _nothing_outlives_the_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Whatever this session's tests made on the Docker Engine goes when it ends, pass or
    fail (a failed test's service replicas, a killed server's runs); what a session that
    ended without cleaning up left goes when this one starts (``tests/cleanup.py``)."""
    basetemp = tmp_path_factory.getbasetemp()
    (basetemp / cleanup.SESSION_FILE).write_text(cleanup.SESSION)
    api = cleanup.engine()
    if api is not None:
        gone = cleanup.remove(api, cleanup.left_over(cleanup.pytest_root(basetemp)))
        if gone:
            print(f"\nremoved what ended test sessions left: {', '.join(gone)}")
    yield
    if api is not None:
        with api:
            cleanup.remove(api, cleanup.this_session(basetemp))


@pytest.fixture(autouse=True, scope="session")
def _no_proxy_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The services' proxy outlives the server that started it, on purpose (it is the data
    plane): a test's servers are gone at the end, so their proxies go with the session."""
    yield
    from workbench.deployments.proxy import Proxy

    for pidfile in tmp_path_factory.getbasetemp().rglob("haproxy.pid"):
        Proxy(pidfile.parent).stop()


def until(condition: Callable[[], Any], timeout: float = 10, interval: float = 0.02) -> Any:
    """What ``condition`` answers once it is true; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not reached in {timeout:g} s"
        time.sleep(interval)
    return value
