"""Services on the real Docker Engine: a registered ONNX model version served by replicas
of the model server in the python environment's image; create, scale to 2 and back, stop
and start (the number of replicas kept, the endpoint's address too), restart (new
replicas), delete; the endpoint (HAProxy) in front of the replicas, with no failed request
while a replica is killed and while the service scales; a deploy whose replica cannot
start fails with its last log lines; the refusals."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import numpy as np
import onnxruntime as ort
import pytest
import sqlalchemy as sa
import tritonclient.http as triton
from pydantic import ValidationError

from tests.conftest import add_people, add_preset_environments, make_workbench
from tests.docker_fixtures import echo_image_tar
from tests.serving.models import CNN_SIGNATURE, make_cnn
from workbench.algorithms.schemas import AlgorithmCreate
from workbench.backends.base import MANAGED_LABEL, RunSpec
from workbench.backends.docker import DockerBackend
from workbench.deployments import service as deployment_service
from workbench.deployments.jobs import SERVICE_LABEL, service_replicas
from workbench.deployments.schemas import ServiceCreate, ServiceInfo
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.jobs.schemas import JobFilter
from workbench.jobs.states import JobState
from workbench.models.schemas import NewVersion
from workbench.registry.models import AlgorithmImage, Service
from workbench.services import Workbench
from workbench.users import Actor

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@dataclass
class Setup:
    wb: Workbench
    alice: Actor
    bob: Actor
    version: int
    broken: int
    model_file: Path


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, docker_backend: DockerBackend, python_env_image: str
) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("services")
    wb = make_workbench(home / "home", backend="docker")
    wb.jobs.runner.interval = 0.2
    wb.start()
    people = add_people(wb)
    env = add_preset_environments(wb, people.alice.id, {"python": python_env_image})["python"]
    versions = []
    for name, content in (("cnn", None), ("broken", b"\x08\x07 not a model")):
        folder = home / name
        model_file = make_cnn(folder / "model.onnx")
        if content is not None:
            model_file.write_bytes(content)
        (folder / "signature.json").write_text(json.dumps(CNN_SIGNATURE))
        with wb.registry.session() as s:
            model = wb.model_versions.model_for(
                s, name=name, owner_id=people.bob.id, visibility="private"
            ).id
        lineage = NewVersion(environment_id=env)
        versions.append(wb.model_versions.register_version(model, folder, lineage, staging=name).id)
    good = make_cnn(home / "reference.onnx")  # the same weights (seed 0) as the served one
    yield Setup(wb, people.alice, people.bob, versions[0], versions[1], good)
    for service in wb.deployments.list(people.alice):
        wb.deployments.delete(people.alice if service.owner == "alice" else people.bob, service.id)
    wb.close()


def deployed(setup: Setup, job_id: int, state: str = JobState.SUCCEEDED) -> None:
    job = setup.wb.jobs.wait(job_id, timeout=300)
    log = setup.wb.jobs.tail(setup.bob, job.id).text[-3000:]
    assert job.state == state, (job.message, log)


def scaled(setup: Setup, service_id: int, replicas: int) -> None:
    """Scale the service and wait for that deploy, as a user would: while another deploy
    runs (the watch replacing a replica the test killed) the scale is refused with the
    job to wait for, and asked again once it is over."""
    deadline = time.monotonic() + 120
    while True:
        try:
            started = setup.wb.deployments.scale(setup.bob, service_id, replicas)
            break
        except Conflict as exc:
            assert time.monotonic() < deadline, exc.message
            time.sleep(0.5)
    deployed(setup, started.job_id)


def auth(key: str | None) -> dict[str, str]:
    """The header that opens a service's endpoint."""
    assert key
    return {"Authorization": f"Bearer {key}"}


def answers(setup: Setup, address: str | None, key: str | None = None) -> None:
    """The replica at ``address`` (an endpoint, with its ``key``) gives the reference
    model's scores."""
    assert address
    client = triton.InferenceServerClient(url=address)
    x = np.random.default_rng(9).standard_normal((2, 1, 8, 8)).astype(np.float32)
    tensor = triton.InferInput("image", [2, 1, 8, 8], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    headers = auth(key) if key else None
    got = client.infer("cnn", [tensor], headers=headers).as_numpy("scores")
    session = ort.InferenceSession(str(setup.model_file), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, session.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6)
    client.close()


def test_a_service_is_created_scaled_stopped_started_restarted_and_deleted(
    setup: Setup, python_env_image: str
):
    wb, bob = setup.wb, setup.bob
    started = wb.deployments.create(bob, ServiceCreate(name="cnn", version_id=setup.version))
    key = started.service.key
    assert started.service.format == "native" and started.service.runtime == "onnx"
    with pytest.raises(Conflict):  # one deploy at a time
        wb.deployments.scale(bob, started.service.id, 2)
    deployed(setup, started.job_id)
    service = wb.deployments.get(bob, started.service.id)
    assert service.state == "running" and service.message == "1 replica ready"
    assert [r.state for r in service.replica_states] == ["running"]
    answers(setup, service.replica_states[0].address)
    address = service.address
    assert address.startswith("127.0.0.1:")  # the endpoint: on this host only
    answers(setup, address, key)  # through the proxy
    client = triton.InferenceServerClient(url=address)  # Triton's client, as a peer
    assert client.get_model_metadata("cnn", headers=auth(key))["platform"] == "onnxruntime_onnx"
    assert client.get_model_config("cnn", headers=auth(key))["max_batch_size"] == 32
    x = np.ones((1, 1, 8, 8), np.float32)
    for binary in (False, True):
        tensor = triton.InferInput("image", [1, 1, 8, 8], "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        wanted = triton.InferRequestedOutput("scores", binary_data=binary)
        got = client.infer("cnn", [tensor], outputs=[wanted], headers=auth(key))
        got = got.as_numpy("scores")
        session = ort.InferenceSession(str(setup.model_file), providers=["CPUExecutionProvider"])
        want = session.run(None, {"image": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    client.close()

    deployed(setup, wb.deployments.scale(bob, service.id, 2).job_id)
    service = wb.deployments.get(bob, service.id)
    assert [r.index for r in service.replica_states] == [0, 1]
    for replica in service.replica_states:
        answers(setup, replica.address)
    # the endpoint reaches each replica at the container's own address, not a published port
    engine = docker.from_env()
    addresses = [
        next(iter(engine.containers.get(r.run_id).attrs["NetworkSettings"]["Networks"].values()))[
            "IPAddress"
        ]
        for r in service.replica_states
    ]
    config = wb.deployments.proxy.config.read_text()
    section = config.split(f"backend replicas_{service.id}\n", 1)[1].split("\n\n", 1)[0]
    servers = [line.split()[2] for line in section.splitlines() if "server " in line]
    assert sorted(servers) == sorted(f"{ip}:8080" for ip in addresses), servers
    first = service.replica_states[0].run_id

    deployed(setup, wb.deployments.stop(bob, service.id).job_id)
    stopped = wb.deployments.get(bob, service.id)
    assert stopped.state == "stopped" and stopped.replica_states == [] and stopped.replicas == 2
    assert stopped.address == address  # kept
    sample = {"image": [[[0.0] * 8] * 8]}
    r = httpx.post(f"http://{address}/predict", json=sample, headers=auth(key))
    assert r.status_code == 503 and "has no replica ready" in r.json()["error"]

    deployed(setup, wb.deployments.start(bob, service.id).job_id)
    service = wb.deployments.get(bob, service.id)
    assert service.state == "running" and len(service.replica_states) == 2
    answers(setup, address, key)
    assert first not in {r.run_id for r in service.replica_states}
    kept = {r.run_id for r in service.replica_states}

    deployed(setup, wb.deployments.restart(bob, service.id).job_id)
    service = wb.deployments.get(bob, service.id)
    assert len(service.replica_states) == 2 and not kept & {
        r.run_id for r in service.replica_states
    }

    # another Workbench on the same engine has a service with the same id: not ours
    stranger = docker.from_env().containers.run(
        python_env_image,
        ["sleep", "120"],
        detach=True,
        labels={"workbench.managed": "another-workbench", "workbench.service": str(service.id),
                "workbench.replica": "0"},
    )  # fmt: skip
    try:
        deployed(setup, wb.deployments.scale(bob, service.id, 1).job_id)
        service = wb.deployments.get(bob, service.id)
        assert [r.index for r in service.replica_states] == [0]
        assert stranger.id not in {r.run_id for r in service.replica_states}
        wb.deployments.delete(bob, service.id)
        stranger.reload()
        assert stranger.status == "running"  # neither scaled away nor deleted
    finally:
        stranger.remove(force=True)
    with pytest.raises(NotFound):
        wb.deployments.get(bob, service.id)
    ours = {"workbench.managed": wb.settings.instance, "workbench.service": str(service.id)}
    assert wb.backend().list(ours) == []


def test_a_replica_that_cannot_start_fails_the_deploy_with_its_log(setup: Setup):
    wb, bob = setup.wb, setup.bob
    started = wb.deployments.create(bob, ServiceCreate(name="broken", version_id=setup.broken))
    deployed(setup, started.job_id, JobState.FAILED)
    service = wb.deployments.get(bob, started.service.id)
    assert service.state == "failed"
    assert "replica 0 exited" in service.message and "last log lines" in service.message
    assert "onnx" in service.message.lower()  # the model server's own error
    assert service.replica_states == []  # nothing left behind
    wb.deployments.delete(bob, service.id)


def test_what_is_refused(setup: Setup):
    wb, bob, alice = setup.wb, setup.bob, setup.alice
    with pytest.raises(InvalidInput, match="no verified onnx-int8 format"):
        wb.deployments.create(
            bob, ServiceCreate(name="int8", version_id=setup.version, format="onnx-int8")
        )
    with pytest.raises(NotFound):  # bob's private version is not alice's to serve
        wb.deployments.create(alice, ServiceCreate(name="stolen", version_id=setup.version))
    # from an inference image: an algorithm whose predict image is not loaded yet
    drafted = wb.algorithms.create(
        bob,
        AlgorithmCreate(name="no-image", purpose="image", sub_purpose="classification"),
    )
    with pytest.raises(InvalidInput, match="no inference image ready \\(missing\\); upload"):
        wb.deployments.create(bob, ServiceCreate(name="no-image", algorithm_id=drafted.id))
    with pytest.raises(NotFound):  # bob's private algorithm
        wb.deployments.create(alice, ServiceCreate(name="no-image", algorithm_id=drafted.id))
    with pytest.raises(ValidationError, match=r"give version_id .* or algorithm_id"):
        ServiceCreate(name="nothing")
    with pytest.raises(ValidationError, match="serves the format 'image' only"):
        ServiceCreate(name="both", algorithm_id=drafted.id, version_id=1, format="onnx")
    with pytest.raises(ValueError, match="should match pattern"):
        ServiceCreate(name="Not A Name", version_id=setup.version)
    started = wb.deployments.create(bob, ServiceCreate(name="twice", version_id=setup.version))
    with pytest.raises(Conflict, match="exists already"):
        wb.deployments.create(bob, ServiceCreate(name="twice", version_id=setup.version))
    deployed(setup, started.job_id)
    carol = wb.users.add_user("carol")
    stranger = Actor(carol.id, carol.username, carol.role)
    with pytest.raises(NotFound):  # a private service is not seen by others
        wb.deployments.get(stranger, started.service.id)
    with pytest.raises(NotFound):
        wb.deployments.stop(stranger, started.service.id)
    wb.deployments.delete(bob, started.service.id)


def two_replicas(setup: Setup, name: str) -> ServiceInfo:
    """bob's CNN served by 2 replicas, deployed (``job_id``: that deploy; ``key``: its
    endpoint's)."""
    started = setup.wb.deployments.create(
        setup.bob, ServiceCreate(name=name, version_id=setup.version, replicas=2)
    )
    deployed(setup, started.job_id)
    service = setup.wb.deployments.get(setup.bob, started.service.id)
    return service.model_copy(update={"key": started.service.key})


class Load:
    """Clients posting a sample to the endpoint until the ``with`` ends: ``outcomes`` holds
    200 for each answer that was one, else what came (when, the status and body, or the
    error)."""

    def __init__(self, url: str, key: str | None, clients: int = 4) -> None:
        self.url, self.clients, self.key = url, clients, key
        self.outcomes: list[int | str] = []
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._threads: list[threading.Thread] = []

    def mark(self, what: str) -> None:
        print(f"{what} at {time.monotonic() - self._t0:.2f}s")

    def _client(self) -> None:
        body = {"image": [[[0.5] * 8] * 8]}
        with httpx.Client(timeout=30, headers=auth(self.key)) as http:
            while not self._stop.is_set():
                at = f"{time.monotonic() - self._t0:.2f}s"
                try:
                    r = http.post(self.url, json=body)
                    ok = r.status_code == 200
                    self.outcomes.append(200 if ok else f"{at} {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.outcomes.append(f"{at} {type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_no_request_fails_while_a_replica_is_killed_and_while_scaling(setup: Setup):
    """Four clients post to the endpoint all along; one replica is killed (SIGKILL), then
    the service scales to 3 and back to 1: every request gets its answer."""
    wb, bob = setup.wb, setup.bob
    service = two_replicas(setup, "steady")
    with Load(f"http://{service.address}/predict", service.key) as load:
        time.sleep(1)
        victim = service.replica_states[0].run_id
        load.mark("kill")
        docker.from_env().containers.get(victim).kill()  # the engine's SIGKILL
        time.sleep(3)
        load.mark("scale 3")
        scaled(setup, service.id, 3)
        time.sleep(1)
        load.mark("scale 1")
        scaled(setup, service.id, 1)
        load.mark("scaled 1")
        time.sleep(1)
    outcomes = load.outcomes
    failed = [o for o in outcomes if o != 200]
    print(f"{len(outcomes)} requests, {len(failed)} failed: {failed[:5]}")
    assert len(outcomes) > 200 and failed == []
    service = wb.deployments.get(bob, service.id)
    assert len(service.replica_states) == 1 and victim not in service.replica_states[0].run_id
    wb.deployments.delete(bob, service.id)


def test_a_replica_gone_or_hung_is_replaced_by_the_watch(setup: Setup):
    """The engine starts a crashed replica again; one stopped through the engine (docker
    kill) or hung (paused: it runs and answers nothing) the server's watch replaces."""
    wb, bob = setup.wb, setup.bob
    wb.deployments.hung_after_s = 3.0
    service = two_replicas(setup, "watched")
    deploy_job, key = service.job_id, service.key
    before = {r.run_id for r in service.replica_states}
    engine = docker.from_env()
    killed, hung = (engine.containers.get(r.run_id) for r in service.replica_states)
    killed.kill()
    hung.pause()
    try:
        deadline = time.monotonic() + 120
        while True:
            service = wb.deployments.get(bob, service.id)
            fresh = {r.run_id for r in service.replica_states if r.state == "running"}
            if service.state == "running" and len(fresh) == 2 and not fresh & before:
                break
            assert time.monotonic() < deadline, service
            time.sleep(0.5)
    finally:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            hung.unpause()
    mine = JobFilter(target_type="service", target_id=service.id)
    jobs = [j for j in wb.jobs.list(bob, mine) if j.id != deploy_job]
    logs = "".join(wb.jobs.tail(bob, j.id).text for j in jobs)
    assert "replica 0 is exited" in logs  # the watch's look, or the deploy's own for 1:
    assert re.search(r"replica 1 d(id|oes) not answer /v2/health/ready", logs), logs
    x = np.zeros((1, 8, 8), np.float32).tolist()
    r = httpx.post(f"http://{service.address}/predict", json={"image": x}, headers=auth(key))
    assert r.status_code == 200, r.text
    wb.deployments.delete(bob, service.id)


def test_a_deploy_for_a_deleted_service_starts_nothing_and_the_watch_removes_its_replicas(
    setup: Setup, python_env_image: str
):
    """The race the service's delete and the watch close (the delete waits for the watch's
    look): a deploy queued as its service's row went. It fails without starting a replica,
    and the replicas left behind are removed by the watch's next look; another server's
    replicas on the same engine, whose service ids mean nothing here, stay."""
    wb, bob = setup.wb, setup.bob
    started = wb.deployments.create(bob, ServiceCreate(name="deleted", version_id=setup.version))
    deployed(setup, started.job_id)
    backend, instance = wb.backend(), wb.deployments.instance
    mine = {MANAGED_LABEL: instance, SERVICE_LABEL: str(started.service.id)}
    (left,) = backend.list(mine)
    other = backend.run(
        RunSpec(
            name=f"wb-test-other-server-{started.service.id}",
            image=python_env_image,
            command=("sleep", "300"),
            labels=(theirs := {**mine, MANAGED_LABEL: f"{instance}-other"}),
        )
    )
    try:
        with wb.registry.session() as s:
            row = s.get_one(Service, started.service.id)
            owner = Actor(bob.id, bob.username, bob.role)
            redeploy = wb.deployments._deploy(s, owner, row, 2, why="queued as it was deleted")
            s.delete(row)
        job = wb.jobs.wait(redeploy.job_id, timeout=60)
        assert (job.state, job.message) == (
            JobState.FAILED,
            f"service {started.service.id} was deleted: nothing to deploy",
        )
        assert [r.id for r in backend.list(mine)] == [left.id]
        wb.deployments.heal()
        assert backend.list(mine) == []
        assert [r.id for r in backend.list(theirs)] == [other.id]
    finally:
        backend.stop(other.id, timeout=1)
        backend.remove(other.id)


def test_the_watch_leaves_a_gone_replica_to_an_engine_that_heals_its_own(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
):
    """On a backend whose engine heals its replicas (Swarm's ``heals_replicas``) the watch
    starts no deploy for a replica that is gone; the same look on one that does not replaces
    it."""
    wb, bob = setup.wb, setup.bob
    started = wb.deployments.create(
        bob, ServiceCreate(name="self-healing", version_id=setup.version)
    )
    deployed(setup, started.job_id)
    backend, service_id = wb.backend(), started.service.id
    (replica,) = service_replicas(backend, wb.deployments.instance, service_id)
    wb.deployments.unwatch()  # only this test's looks
    monkeypatch.setattr(deployment_service, "GONE_AFTER_S", 0.0)  # gone at the first look
    try:
        backend.remove(replica.run.id)
        monkeypatch.setattr(type(backend), "heals_replicas", True)
        assert wb.deployments.heal() == []
        assert wb.jobs.list(bob, JobFilter(target_id=service_id))[0].id == started.job_id

        monkeypatch.setattr(type(backend), "heals_replicas", False)
        ((job_id, why),) = wb.deployments.heal()
        assert "replica 0 is gone" in why
        deployed(setup, job_id)
    finally:
        wb.deployments.watch()
        wb.deployments.delete(bob, service_id)


def test_stopping_under_load_answers_or_says_503(setup: Setup):
    """Clients post all along while the service stops (replicas to 0) and starts again:
    each request gets the model's answer or the endpoint's clear 503, none an error or
    nothing; after the start they are answered again."""
    wb, bob = setup.wb, setup.bob
    service = two_replicas(setup, "stopping")
    with Load(f"http://{service.address}/predict", service.key) as load:
        time.sleep(1)
        load.mark("stop")
        deployed(setup, wb.deployments.stop(bob, service.id).job_id)
        load.mark("stopped")
        time.sleep(1)
        stopped_at = len(load.outcomes)
        load.mark("start")
        deployed(setup, wb.deployments.start(bob, service.id).job_id)
        load.mark("started")
        time.sleep(1)
    before, during = load.outcomes[:stopped_at], load.outcomes[stopped_at:]
    refused = [o for o in load.outcomes if o != 200]
    clear = [o for o in refused if " 503 " in str(o) and "has no replica ready" in str(o)]
    print(f"{len(load.outcomes)} requests, {len(refused)} refused: {refused[:3]}")
    assert refused and clear == refused  # a clear 503 for each, no error and no silence
    assert before.count(200) > 50 and during[-20:] == [200] * 20  # answered again at the end
    wb.deployments.delete(bob, service.id)


def test_a_service_from_an_inference_image_and_its_image_redone(
    setup: Setup,
    docker_backend: DockerBackend,
    base_image: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    """Manual 2.7.1-2.7.10: an algorithm's inference image (uploaded as a tar) is a service
    with its API spec; a new image uploaded to the algorithm is what the restart serves."""
    wb, bob = setup.wb, setup.bob
    spec = {
        "route": "/predict",
        "params": [{"name": "text", "type": "string", "example": "hello"}],
    }
    algorithm = wb.algorithms.create(
        bob,
        AlgorithmCreate(
            name="echo",
            purpose="text",
            sub_purpose="classification",
            predict={"api_spec": spec},
        ),
    )

    def upload(build: str) -> None:
        tar = echo_image_tar(docker_backend, base_image, tmp_path, build)
        with tar.open("rb") as f:
            stored = wb.store.save_stream(f, 10**9)
        wb.algorithms.upload_image(bob, algorithm.id, "predict", stored, tar.name)
        tar.unlink()

    def check(job_id: int, build: str) -> ServiceInfo:
        deployed(setup, job_id)
        service = wb.deployments.get(bob, started.service.id)
        assert (service.format, service.api_spec["route"]) == ("image", "/predict")
        assert service.api_spec["params"][0]["example"] == "hello"
        assert len(service.replica_states) == 2
        for _ in range(4):  # both replicas, through the endpoint
            r = httpx.post(f"http://{service.address}/predict", json={"text": "hi"}, timeout=10)
            assert r.json() == {"build": build, "text": "hi", "model_dir": ""}, r.text
        return service

    upload("1")
    started = wb.deployments.create(
        bob, ServiceCreate(name="echo", algorithm_id=algorithm.id, replicas=2, public_endpoint=True)
    )
    service = check(started.job_id, "1")  # public on purpose: no key asked
    assert service.public_endpoint
    upload("2")  # redo its image: the restart takes the algorithm's image as it is now
    service = check(wb.deployments.restart(bob, service.id).job_id, "2")
    bad = httpx.post(f"http://{service.address}/predict", json={}, timeout=10)
    assert bad.status_code == 400 and "send" in bad.json()["error"]

    # a replica gone while the image cannot be deployed: the watch says why and goes on
    with wb.registry.session() as s:
        s.execute(
            sa.update(AlgorithmImage)
            .where(AlgorithmImage.algorithm_id == algorithm.id)
            .values(state="failed")
        )
    docker.from_env().containers.get(service.replica_states[0].run_id).remove(force=True)
    with caplog.at_level(logging.WARNING, logger="workbench.deployments.service"):
        wb.deployments.heal()
        time.sleep(2.5)  # gone on two looks
        assert wb.deployments.heal() == []
    assert "services watch: service echo: Algorithm echo has no inference image ready" in (
        caplog.text
    )
    with wb.registry.session() as s:
        s.execute(
            sa.update(AlgorithmImage)
            .where(AlgorithmImage.algorithm_id == algorithm.id)
            .values(state="ready")
        )
    wb.deployments.delete(bob, service.id)
    wb.algorithms.delete(bob, algorithm.id)
