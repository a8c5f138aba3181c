"""tests/cleanup.py on the real engine: what a session made goes when it ends, what an
ended session left goes when the next one starts, and nothing else: not a developer's own
Workbench, nor what a session that still runs made."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests import cleanup
from workbench.backends.base import MANAGED_LABEL, RunSpec
from workbench.backends.docker import DockerBackend
from workbench.networks import service_network

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def a_dead_session() -> str:
    """A session id whose process has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return f"{done.stdout.strip()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """The names of the containers and networks a test made, removed afterwards (what is
    left of them)."""
    names: list[str] = []
    yield names
    for name in names:
        for container in docker_client.containers.list(all=True, filters={"name": name}):
            container.remove(force=True)
    for name in names:
        for network in docker_client.networks.list(names=[name]):
            network.remove()


def test_a_session_removes_its_own_and_the_ended_ones_and_nothing_else(
    docker_backend: DockerBackend,
    docker_client: docker.DockerClient,
    base_image: str,
    tmp_path: Path,
    made: list[str],
):
    session = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # a running session, not this one
    basetemp = tmp_path / "pytest-of-me" / "pytest-3"
    (basetemp / "home").mkdir(parents=True)
    (basetemp / cleanup.SESSION_FILE).write_text(session)
    ours = str(basetemp / "home")
    developer = f"/home/dev/.workbench-{uuid.uuid4().hex[:6]}"
    gone_base = tmp_path / "pytest-of-me" / "pytest-1"  # pytest removed it: that run ended
    dead_base = tmp_path / "pytest-of-me" / "pytest-2"
    dead_base.mkdir()
    (dead_base / cleanup.SESSION_FILE).write_text(a_dead_session())
    mark = uuid.uuid4().hex[:6]
    runs = {
        "replica": ({MANAGED_LABEL: ours}, service_network(ours, 1)),
        "labelled": ({cleanup.SUITE_LABEL: session}, None),
        "named": ({MANAGED_LABEL: f"crash-test-{session}"}, None),
        "developers": ({MANAGED_LABEL: developer}, service_network(developer, 1)),
        "unlabelled": ({}, None),
        "running-session": ({cleanup.SUITE_LABEL: f"{os.getppid()}-{mark}ab"}, None),
        "old-form": ({cleanup.SUITE_LABEL: "example-algorithms"}, None),
        "ended-session": ({cleanup.SUITE_LABEL: a_dead_session()}, None),
        "ended-named": ({MANAGED_LABEL: f"crash-test-{a_dead_session()}"}, None),
        "gone-base": ({MANAGED_LABEL: str(gone_base / "home")}, None),
        "dead-base": ({MANAGED_LABEL: str(dead_base / "wbhome")}, None),
    }
    made += [service_network(ours, 1).name, service_network(developer, 1).name]
    for what, (labels, network) in runs.items():
        name = f"wbt-cleanup-{mark}-{what}"
        made.insert(0, name)
        docker_backend.run(
            RunSpec(
                name=name, image=base_image, command=("sleep", "60"), labels=labels, network=network
            )
        )

    def left() -> set[str]:
        found = docker_client.containers.list(all=True, filters={"name": f"wbt-cleanup-{mark}"})
        return {c.name.removeprefix(f"wbt-cleanup-{mark}-") for c in found}

    api = docker.APIClient(**docker.utils.kwargs_from_env())
    # a session starts: what ended sessions left goes
    removed = cleanup.remove(api, cleanup.left_over(tmp_path / "pytest-of-me"))
    gone = {"ended-session", "ended-named", "gone-base", "dead-base"}
    assert left() == set(runs) - gone
    assert {f"wbt-cleanup-{mark}-{what}" for what in gone} == {r for r in removed if mark in r}

    # it ends: what it made goes, its service network with its replica
    networks = {n.name for n in docker_client.networks.list(names=["workbench-svc-"])}
    assert {service_network(ours, 1).name, service_network(developer, 1).name} <= networks
    cleanup.remove(api, cleanup.this_session(basetemp, session))
    assert left() == {"developers", "unlabelled", "running-session", "old-form"}
    networks = {n.name for n in docker_client.networks.list(names=["workbench-svc-"])}
    assert service_network(ours, 1).name not in networks
    assert service_network(developer, 1).name in networks  # still in use, not ours anyway
    assert (
        docker_client.networks.get(service_network(developer, 1).name).attrs["Labels"][
            MANAGED_LABEL
        ]
        == developer
    )  # a service network says whose it is
    api.close()


def test_a_session_id_says_whether_it_runs():
    assert not cleanup.ended(cleanup.SESSION)
    assert cleanup.ended(a_dead_session())
    assert not cleanup.ended("example-algorithms")  # another form: not ours to judge
    assert cleanup.NAMED.fullmatch(cleanup.instance_name("crash-test"))


FAILING_TEST = """
from tests.cleanup import SESSION, SUITE_LABEL
from workbench.backends.base import MANAGED_LABEL, RunSpec
from workbench.backends.docker import DockerBackend


def test_that_fails(tmp_path):
    backend = DockerBackend.from_env()
    for name, labels in (
        ("{mark}-test", {{SUITE_LABEL: SESSION}}),
        ("{mark}-workbench", {{MANAGED_LABEL: str(tmp_path / "home")}}),
    ):
        backend.run(RunSpec(name=name, image="{image}", command=("sleep", "60"), labels=labels))
    assert False, "failed, its containers running"
"""


def test_a_failed_test_leaves_nothing_once_its_session_ends(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
):
    """A whole session in a subprocess (the suite's conftest as its plugin): its one test
    starts two containers, as a test and as a test's Workbench, and fails. When the session
    has ended, neither is left."""
    mark = f"wbt-cleanup-{uuid.uuid4().hex[:6]}"
    test = tmp_path / "test_fails.py"
    test.write_text(FAILING_TEST.format(mark=mark, image=base_image))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'inner'}", "-q", str(test)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "failed, its containers running" in done.stdout, done.stdout
    left = docker_client.containers.list(all=True, filters={"name": mark})
    for container in left:
        container.remove(force=True)
    assert left == []
