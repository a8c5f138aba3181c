"""Quotas and log caps (issue 15, point 10): one user cannot take the team's machine.

Service level (fast, no engine): replicas and memory past a user's quota are refused
with the quota, the use and what to do, and nothing is made (no service, no deploy job);
an admin raises the quota and the same request goes through; scaling down is never
refused, even over a lowered quota; a running workspace's and a queued training run's
memory count. A log that a run fills without end stays capped, and a 100 MiB line is cut
as it streams (bounded time and memory).

Through REST as an ordinary user on the real engine: bob cannot set his own quota nor read
alice's; an admin sets bob's; bob's service past it is refused (403 quota_exceeded) with
no container started, then runs once the admin raises it; an upload past bob's byte quota
is refused from its declared size before its body is stored (nothing left in the store's
temporary folder, no archive recorded) and one that does not declare it once it passes;
a container that prints a 100 MiB line and 200 MiB of output leaves a capped log while
the server keeps answering.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tornado.httpclient import HTTPClientError

from tests.archives import image_classes
from tests.conftest import add_environment, add_people, make_workbench
from tests.security.conftest import API, Tenants, finished
from tests.security.test_data_plane import cnn_version
from workbench.backends.base import LINE_MAX_CHARS, Limits, RunInfo, RunSpec, cut_line
from workbench.backends.docker import split_lines
from workbench.config import QuotaDefaults
from workbench.deployments.jobs import service_replicas
from workbench.deployments.schemas import ServiceCreate
from workbench.errors import QuotaExceeded
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.logs import LOG_MAX_BYTES, CappedLog
from workbench.registry import models as m
from workbench.schemas.quotas import QuotaUpdate
from workbench.services import Workbench

MiB = 1024**2


# --- service level ------------------------------------------------------------------------


@pytest.fixture
def wb(tmp_path: Path, registry_url: str):
    """No runner started: a deploy job stays queued, so what a check made is plain."""
    workbench = make_workbench(
        tmp_path / "home", registry_url, quotas=QuotaDefaults(replicas=2, memory_mb=4096)
    )
    yield workbench
    workbench.close()


def made(wb: Workbench) -> tuple[int, int]:
    """How many services and jobs the registry holds."""
    with wb.registry.session() as s:
        services = s.scalar(sa.select(sa.func.count()).select_from(m.Service))
        jobs = s.scalar(sa.select(sa.func.count()).select_from(m.Job))
        return services, jobs


def test_replicas_past_the_quota_are_refused_until_an_admin_raises_it(wb, tmp_path):
    people = add_people(wb)
    version = cnn_version(wb, people.bob.id, "wbtest/none:1", tmp_path / "cnn")
    asked = ServiceCreate(name="big", version_id=version, replicas=3, memory_mb=512)
    with pytest.raises(QuotaExceeded) as refused:
        wb.deployments.create(people.bob, asked)
    error = refused.value
    assert (error.status, error.code) == (403, "quota_exceeded")
    assert error.details == {"quota": "replicas", "limit": 2, "used": 0, "asked": 3}
    assert "you use 0 of 2" in error.message and "workbench service stop" in error.message
    assert "workbench quota set" in error.message
    assert made(wb) == (0, 0)  # no service, no deploy job

    info = wb.quotas.set("bob", QuotaUpdate(replicas=4))
    assert (info.limits.replicas, info.custom) == (4, ["replicas"])
    started = wb.deployments.create(people.bob, asked)
    assert made(wb) == (1, 1)
    assert wb.quotas.get("bob").used.replicas == 3
    # a lowered quota stops nothing, and scaling down is never refused
    wb.quotas.set("bob", QuotaUpdate(replicas=1))
    _done(wb, started.job_id)
    wb.deployments.scale(people.bob, started.service.id, 2)
    _done(wb, wb.deployments.get(people.bob, started.service.id).job_id)
    with pytest.raises(QuotaExceeded, match="replicas quota"):
        wb.deployments.scale(people.bob, started.service.id, 3)
    # null puts the server's default back
    assert wb.quotas.set("bob", QuotaUpdate(replicas=None)).limits.replicas == 2


def test_memory_counts_replicas_workspaces_and_training_runs(wb, tmp_path):
    people = add_people(wb)
    version = cnn_version(wb, people.bob.id, "wbtest/none:1", tmp_path / "cnn")
    env = add_environment(wb, name="e", owner_id=people.bob.id, state="ready")
    with wb.registry.session() as s:
        s.add(
            m.Workspace(
                name="ws", owner_id=people.bob.id, purpose="image", sub_purpose="classification",
                environment_id=env, memory_mb=1024, state="running",
            )
        )  # fmt: skip
        s.add(m.Job(kind="training", owner_id=people.bob.id, state="queued", memory_mb=2048))
    assert wb.quotas.get("bob").used.memory_mb == 3072
    with pytest.raises(QuotaExceeded) as refused:
        wb.deployments.create(
            people.bob, ServiceCreate(name="s", version_id=version, replicas=2, memory_mb=1024)
        )
    assert refused.value.details == {
        "quota": "memory_mb", "limit": 4096, "used": 3072, "asked": 2048,
    }  # fmt: skip
    assert "stop a service, a workspace or a training run" in refused.value.message
    assert made(wb) == (0, 1)  # the training job only
    wb.deployments.create(
        people.bob, ServiceCreate(name="s", version_id=version, replicas=1, memory_mb=1024)
    )
    assert made(wb) == (1, 2)
    # alice's quota is her own
    assert wb.quotas.get("alice").used.memory_mb == 0


def _done(wb: Workbench, job_id: int | None) -> None:
    """End a queued deploy job as its runner would have (no runner runs here)."""
    with wb.registry.session() as s:
        job = s.get_one(m.Job, job_id)
        job.state = "succeeded"
        service = s.get_one(m.Service, job.target_id)
        service.state = "running"


def test_a_log_that_a_run_fills_without_end_is_capped(tmp_path):
    """200 MiB of lines through CappedLog: the file stops at the cap with a last line
    saying so, and appending again later (a kind's ctx.log) adds nothing."""
    path = tmp_path / "log.txt"
    line = "y" * 1023
    with path.open("wb") as out:
        capped = CappedLog(out)
        for _ in range(200 * 1024):
            capped.write(line)
    size = path.stat().st_size
    assert LOG_MAX_BYTES - 70 * 1024 < size <= LOG_MAX_BYTES + 1024
    with path.open("rb") as f:
        f.seek(-200, 2)
        assert f.read().decode().splitlines()[-1].startswith("[workbench] log cut at 64 MiB")
    with path.open("ab") as out:
        CappedLog(out).write("more")
    assert path.stat().st_size == size


def test_a_100_mib_line_is_cut_as_it_streams():
    """The engine's output in 16 KiB frames: one line of 100 MiB comes out as its first
    16 KiB and a note, the next line whole; in bounded time (the old splitter rescanned
    what it held for every frame: quadratic, minutes for this line)."""
    frame = b"x" * (16 * 1024)

    def frames() -> Any:
        for _ in range(100 * 64):
            yield frame
        yield b"\nnext\n"

    started = time.monotonic()
    lines = list(split_lines(frames()))
    assert time.monotonic() - started < 10
    assert lines == [cut_line("x" * LINE_MAX_CHARS, 100 * MiB - LINE_MAX_CHARS), "next"]


# --- through REST on the real engine ---------------------------------------------------------


async def admin(tenants: Tenants) -> Any:
    from tests.rest.conftest import Api

    owner = tenants.wb.users.ensure_owner("owner")
    assert owner.is_admin
    token = tenants.wb.users.create_token(owner.id, "admin").secret
    return Api(tenants.alice.fetch, token, "owner")


@pytest.mark.docker
@pytest.mark.slow
async def test_only_an_admin_sets_quotas_and_a_user_reads_only_their_own(tenants: Tenants):
    code, err = await tenants.bob("PUT", f"{API}/users/bob/quota", {"replicas": 100})
    assert (code, err["error"]) == (403, "forbidden")
    code, err = await tenants.bob("GET", f"{API}/users/alice/quota")
    assert (code, err["error"]) == (404, "not_found")
    code, mine = await tenants.bob("GET", f"{API}/users/bob/quota")
    assert code == 200 and mine["custom"] == [] and mine["used"]["replicas"] == 0
    root = await admin(tenants)
    code, set_ = await root("PUT", f"{API}/users/bob/quota", {"memory_mb": 10})
    assert code == 200 and set_["limits"]["memory_mb"] == 10 and set_["custom"] == ["memory_mb"]
    code, err = await root("PUT", f"{API}/users/bob/quota", {"replicas": -1})
    assert code == 400


@pytest.mark.docker
@pytest.mark.slow
async def test_a_service_past_the_quota_starts_nothing_until_an_admin_raises_it(
    tenants: Tenants, tmp_path: Path
):
    wb, bob = tenants.wb, tenants.bob
    version = cnn_version(wb, tenants.actors["bob"].id, tenants.python_image, tmp_path / "cnn")
    root = await admin(tenants)
    assert (await root("PUT", f"{API}/users/bob/quota", {"replicas": 1}))[0] == 200
    body = {"name": "bobs", "version_id": version, "replicas": 2}
    code, err = await bob("POST", f"{API}/services", body)
    assert (code, err["error"]) == (403, "quota_exceeded")
    assert "replicas quota" in err["message"] and "you use 0 of 1" in err["message"]
    assert (await bob("GET", f"{API}/services"))[1] == []
    assert not service_replicas(wb.backend(), wb.settings.instance, 1)

    code, started = await bob("POST", f"{API}/services", {**body, "replicas": 1})
    assert code == 202, started
    service = started["service"]["id"]
    try:
        assert (await finished(bob, started["job_id"]))["state"] == "succeeded"
        code, err = await bob("POST", f"{API}/services/{service}/scale", {"replicas": 2})
        assert (code, err["error"]) == (403, "quota_exceeded")
        assert (await root("PUT", f"{API}/users/bob/quota", {"replicas": 2}))[0] == 200
        code, scaled = await bob("POST", f"{API}/services/{service}/scale", {"replicas": 2})
        assert code == 202, scaled
        assert (await finished(bob, scaled["job_id"]))["state"] == "succeeded"
        assert (await bob("GET", f"{API}/users/bob/quota"))[1]["used"]["replicas"] == 2
    finally:
        await bob("DELETE", f"{API}/services/{service}")


@pytest.mark.docker
@pytest.mark.slow
async def test_an_upload_past_the_byte_quota_is_refused_and_leaves_nothing(
    tenants: Tenants, tmp_path: Path
):
    wb, bob = tenants.wb, tenants.bob
    archive = image_classes(tmp_path / "d.zip", {"cat": 20, "dog": 20}).read_bytes()
    digits = {
        "name": "d", "purpose": "image", "sub_purpose": "classification",
        "format": "dir", "split_mode": "independent",
    }  # fmt: skip
    _, dataset = await bob("POST", f"{API}/datasets", digits)
    root = await admin(tenants)
    quota = {"upload_bytes": len(archive) - 1}
    assert (await root("PUT", f"{API}/users/bob/quota", quota))[0] == 200
    tmp = wb.store.root / "tmp"
    before = set(tmp.iterdir()) if tmp.exists() else set()
    url = f"{API}/datasets/{dataset['id']}/archives/train"
    code, err = await bob("PUT", url, raw=archive)
    assert (code, err["error"]) == (403, "quota_exceeded"), err
    assert err["details"]["asked"] == len(archive) and "upload_bytes quota" in err["message"]
    assert "delete datasets" in err["message"]
    # no declared size (chunked): refused once the body passes the room left
    with pytest.raises(HTTPClientError) as chunked:
        await bob.fetch(
            *url.split("/"),
            method="PUT",
            headers={"Authorization": f"token {bob.token}"},
            body_producer=_chunks(archive),
        )
    err = json.loads(chunked.value.response.body)
    assert (chunked.value.code, err["error"]) == (403, "quota_exceeded"), err
    assert (set(tmp.iterdir()) if tmp.exists() else set()) == before
    with wb.registry.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.DatasetSplit)) == 0
    # alice's quota is not bob's: the same archive goes in for her
    _, hers = await tenants.alice("POST", f"{API}/datasets", digits)
    code, _ = await tenants.alice("PUT", f"{API}/datasets/{hers['id']}/archives/train", raw=archive)
    assert code == 200


def _chunks(data: bytes) -> Any:
    async def produce(write: Any) -> None:
        stream = io.BytesIO(data)
        while chunk := stream.read(4096):
            await write(chunk)

    return produce


class Loud(JobKind):
    """A container that prints a 100 MiB line, then 200 MiB of 1 KiB lines (at about
    20 MiB/s: the engine keeps only 2 x 64 MiB of a container's output, so a run that
    prints faster than the runner reads loses its middle there, before any cap of ours)."""

    name = "test-loud"

    def __init__(self, image: str) -> None:
        self.image = image

    def prepare(self, ctx: JobContext) -> RunSpec:
        script = (
            "import sys, time\n"
            "sys.stdout.write('x' * (100 * 2**20) + '\\n')\n"
            "block = ('y' * 1023 + '\\n') * 1024\n"
            "for _ in range(200):\n"
            "    sys.stdout.write(block)\n"
            "    sys.stdout.flush()\n"
            "    time.sleep(0.05)\n"
        )
        return RunSpec(
            name=f"wbtest-loud-{ctx.job_id}",
            image=self.image,
            command=("python", "-c", script),
            limits=Limits(cpus=1, memory_mb=1024),
        )

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        return Outcome(f"exited with {info.exit_code}")


@pytest.mark.docker
@pytest.mark.slow
async def test_a_run_that_prints_300_mib_leaves_a_capped_log_and_the_server_answers(
    tenants: Tenants,
):
    wb = tenants.wb
    wb.jobs.runner.register(Loud(tenants.python_image))
    with wb.registry.session() as s:
        job_id = wb.jobs.create(s, Loud.name, owner_id=tenants.actors["bob"].id).id
    loop = asyncio.get_running_loop()
    waits: list[float] = []  # how long each answer took while the run printed
    deadline = loop.time() + 300
    while True:
        started = loop.time()
        code, job = await tenants.bob("GET", f"{API}/jobs/{job_id}")
        assert code == 200
        if job["state"] in ("succeeded", "failed", "stopped"):
            break
        if job["state"] == "running":
            waits.append(loop.time() - started)
        assert loop.time() < deadline, job
        await asyncio.sleep(0.2)
    assert job["state"] == "succeeded", job
    # The printing takes over 10 s. A server that copied the output on its event loop (or
    # read it whole) would answer a few times at most, each after seconds; one that copies
    # it aside answers every poll, quickly (one slow answer on a loaded machine is noise).
    waits.sort()
    assert len(waits) >= 20, f"the server answered only {len(waits)} times while the run printed"
    median, slowest = waits[len(waits) // 2], waits[-1]
    assert median < 0.5, f"answers took {median:.2f} s (median) while the run printed"
    assert slowest < 10, f"the server took {slowest:.1f} s to answer while the run printed"
    log = wb.store.path(f"jobs/{job_id}/log.txt")
    assert log.stat().st_size <= LOG_MAX_BYTES + 1024
    with log.open("rb") as f:
        first = f.readline().decode()
        f.seek(-300, 2)
        cut, end = f.read().decode().splitlines()[-2:]
    assert first.startswith("x" * LINE_MAX_CHARS + " [... line cut: ")
    assert len(first) < LINE_MAX_CHARS + 100
    assert cut.startswith("[workbench] log cut at 64 MiB")
    assert end == f"[workbench] job {job_id} succeeded: exited with 0"  # the end still said
