"""The real server process, its job runner and the Docker Engine when the server dies.

- A large image tar (hundreds of MB, a layer the engine does not have) uploads and loads as
  a job: the upload's answer comes at once, and other requests are answered promptly
  while the engine loads it.
- The server is SIGKILLed while an environment build, an image load and a training run all
  go on; a new server on the same home ends each exactly once: the work that ran in the
  dead process (build, load) fails with a message that says so and leaves no files behind,
  the training container that ran on is taken up and finishes with every epoch once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.archives import loadable_image_tar
from tests.cleanup import instance_name
from tests.conftest import add_people
from tests.docker_fixtures import host_ca_bundle
from tests.integration.test_training_docker import start_a_run_on, train_image, wait_until
from tests.server import LiveServer, live_server
from tests.services.test_algorithms import BAYES_TRAIN
from workbench.backends.docker import DockerBackend
from workbench.client import WorkbenchClient
from workbench.config import Settings
from workbench.jobs.schemas import JobInfo
from workbench.jobs.states import FINISHED_JOB_STATES
from workbench.registry import models as m
from workbench.services import Workbench

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["train_image"]  # a fixture this module uses

BIG_MB = 320
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def big_tar(tmp_path: Path, docker_backend: DockerBackend) -> Iterator[tuple[Path, str, str]]:
    made = loadable_image_tar(tmp_path / "train-big.tar", BIG_MB)
    yield made
    engine = docker.from_env()  # the image with every tag a test gave it
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(made[1], force=True)
    engine.close()


def bob_token(server: LiveServer) -> str:
    """alice (admin) and bob on the server's registry; a token of bob's."""
    wb = Workbench.from_settings(Settings(home=server.home))
    try:
        return wb.users.create_token(add_people(wb).bob.id, "crash").secret
    finally:
        wb.close()


def job(client: WorkbenchClient, job_id: int | None) -> JobInfo:
    assert job_id is not None
    return client.jobs.get(job_id)


def test_a_large_image_load_does_not_hold_up_other_requests(tmp_path, big_tar):
    tar, image_id, _tag = big_tar
    with live_server(tmp_path / "server") as server:
        token = bob_token(server)
        with WorkbenchClient(server.url, token) as client:
            algo = client.algorithms.create(
                name="big", purpose="image", sub_purpose="classification", train=BAYES_TRAIN
            )
            sent = time.monotonic()
            queued = client.algorithms.upload_image(algo.id, "train", tar, wait=False)
            answered = time.monotonic() - sent
            load = job(client, queued.train.job_id)
            assert load.state not in FINISHED_JOB_STATES  # the answer did not wait for it

            # while the engine loads it, other requests are answered promptly
            latencies: list[float] = []
            while (load := job(client, load.id)).state not in FINISHED_JOB_STATES:
                for call in (client.jobs.list, lambda: client.algorithms.get(algo.id)):
                    started = time.monotonic()
                    call()
                    latencies.append(time.monotonic() - started)
            assert load.state == "succeeded", client.jobs.log(load.id).text
            took = (load.finished_at - load.started_at).total_seconds()
            ready = client.algorithms.get(algo.id).train
    print(
        f"\n{BIG_MB} MB: upload answered in {answered:.1f} s, load job {took:.1f} s, "
        f"{len(latencies)} requests meanwhile, slowest {max(latencies) * 1000:.0f} ms"
    )
    assert len(latencies) >= 6, "the load ended before other requests could be timed"
    assert max(latencies) < 1.0
    assert (ready.state, ready.digest) == ("ready", image_id)


def envs_dir(tmp_path: Path) -> Path:
    """A definition like envs/python with one more package: its pip step is not in the
    engine's build cache, so the build is still going when the server is killed."""
    root = tmp_path / "envs"
    (root / "slowpy").mkdir(parents=True)
    text = (REPO / "envs" / "python" / "env.toml").read_text()
    text = text.replace('name = "python"', 'name = "slowpy"')
    text = text.replace('    "numpy==', '    "six==1.17.0",\n    "numpy==')
    (root / "slowpy" / "env.toml").write_text(text)
    return root


def test_a_killed_server_leaves_each_job_to_the_next_one_once(
    tmp_path, train_image, big_tar, docker_backend
):
    tar = big_tar[0]
    instance = instance_name("crash-test")
    env = {"WORKBENCH_ENVS_DIR": str(envs_dir(tmp_path)), "WORKBENCH_INSTANCE": instance}
    if ca := host_ca_bundle():
        env["WORKBENCH_EXTRA_CA_BUNDLE"] = str(ca)
    if index := os.environ.get("WORKBENCH_PIP_INDEX_URL"):
        env["WORKBENCH_PIP_INDEX_URL"] = index
    with live_server(tmp_path / "server", env=env) as server:
        token, task = start_a_run_on(server, tmp_path, epochs=30, pause=0.5)
        with WorkbenchClient(server.url, token) as client:
            environment = client.environments.create(name="slow", definition="slowpy")
            build = job(client, client.environments.build(environment.id).job_id)
            wait_until(lambda: "Step 1/" in client.jobs.log(build.id).text, timeout=120)
            algo = client.algorithms.create(
                name="big", purpose="image", sub_purpose="classification", train=BAYES_TRAIN
            )
            load = job(
                client,
                client.algorithms.upload_image(algo.id, "train", tar, wait=False).train.job_id,
            )
            wait_until(lambda: job(client, load.id).state == "running", timeout=30)
            training = job(client, client.training.get(task.id).job_id)
            server.kill()

    # the registry as the dead server left it: all three were under way
    wb = Workbench.from_settings(Settings(home=server.home))
    try:
        with wb.registry.session() as s:
            left = {j: s.get_one(m.Job, j).state for j in (build.id, load.id, training.id)}
            env_state = s.get_one(m.Environment, environment.id).state
    finally:
        wb.close()
    assert left == {build.id: "running", load.id: "running", training.id: "running"}
    assert env_state == "building"

    with (
        live_server(tmp_path / "server", env=env) as again,
        WorkbenchClient(again.url, token) as client,
    ):
        ended = {
            j: wait_until(
                lambda j=j: (info := job(client, j)).state in FINISHED_JOB_STATES and info,
                timeout=180,
            )
            for j in (build.id, load.id, training.id)
        }
        logs = {j: client.jobs.log(j).text for j in ended}
        environment = client.environments.get(environment.id)
        image = client.algorithms.get(algo.id).train
        task = client.training.get(task.id)
        listed = [j.id for j in client.jobs.list()]
        jobs_folder = again.home / "store" / "jobs"
    # the build and the load ran in the dead process: failed, saying why, once
    for j, what in ((build.id, "built or loaded"), (load.id, "loading")):
        assert ended[j].state == "failed" and what in ended[j].message, ended[j]
        assert ended[j].instance == instance
    assert (environment.state, environment.image_ref) == ("failed", "")
    assert "server stopped" in environment.state_reason
    assert image.state == "failed" and "server stopped" in image.state_reason
    assert not (jobs_folder / str(load.id) / "files").exists()  # the uploaded tar is gone
    # the training container ran on: taken up, every epoch once, its model registered
    assert ended[training.id].state == "succeeded", logs[training.id]
    epochs = [line for line in logs[training.id].splitlines() if line.startswith("epoch ")]
    assert epochs == [f"epoch {n}" for n in range(1, 31)]
    assert task.state == "succeeded" and task.model_version_id is not None
    # each job ended once: one end line in its log, one row in the list
    for j, text in logs.items():
        assert text.count(f"[workbench] job {j} ") == 1, text[-2000:]
    assert sorted(listed) == sorted(ended)
    labels = {"workbench.managed": instance}
    assert docker_backend.list(labels) == []
