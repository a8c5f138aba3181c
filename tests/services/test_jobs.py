"""The job runner with kinds of the tests' own (the real kinds: environments, algorithm
images, training, each in its area's tests): outcomes, errors, progress, the log, cancel,
the pool, two servers on one registry, and restarts."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import add_people, make_workbench
from workbench.backends.base import Limits, RunInfo, RunSpec
from workbench.errors import Conflict, InvalidInput, JobFailed, NotFound
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.schemas import JobFilter
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.users import Actor


class Steps(JobKind):
    """In the server: ``spec["steps"]`` steps, each logged, waiting for ``gate`` if set."""

    name = "test-steps"
    concurrency = 4

    def __init__(self) -> None:
        self.done: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.synced: list[tuple[int, str]] = []
        self.cleaned: list[int] = []

    def execute(self, ctx: JobContext) -> Outcome:
        self.started.set()
        steps = int(ctx.spec.get("steps", 2))
        for step in range(steps):
            ctx.check()
            assert self.gate.wait(10)
            ctx.log(f"step {step + 1}/{steps}")
            ctx.progress((step + 1) / steps)
        if ctx.spec.get("fail"):
            raise InvalidInput("the input was wrong; give a right one", field="input")
        self.done.append(ctx.job_id)
        return Outcome(f"{steps} steps", {"steps": steps})

    def sync(self, s: Any, job: m.Job) -> None:
        self.synced.append((job.id, job.state))

    def cleanup(self, ctx: JobContext) -> None:
        self.cleaned.append(ctx.job_id)


class Sleeper(JobKind):
    """A container that sleeps (on the fake backend: runs until told)."""

    name = "test-container"
    concurrency = 4

    def prepare(self, ctx: JobContext) -> RunSpec:
        return RunSpec(
            name=f"wbtest-job-{ctx.job_id}",
            image="wbtest/sleeper:1",
            limits=Limits(cpus=1, memory_mb=256),
        )

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        if info.exit_code:
            raise JobFailed(f"exited with {info.exit_code}")
        return Outcome("slept")


@pytest.fixture
def wb(tmp_path, registry_url):
    workbench = make_workbench(tmp_path / "home", registry_url, backend="fake")
    fake = workbench.backend()
    fake.add_image("wbtest/sleeper:1", cmd=["sleep"])
    fake.script("wbtest/sleeper:1", ["sleeping"], exit_code=None)  # runs until told
    workbench.jobs.runner.register(Steps())
    workbench.jobs.runner.register(Sleeper())
    workbench.jobs.runner.interval = 0.02
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


def steps(wb: Workbench) -> Steps:
    kind = wb.jobs.runner.kinds[Steps.name]
    assert isinstance(kind, Steps)
    return kind


def queue(wb: Workbench, owner: m.User | Any, kind: str = Steps.name, **fields: Any) -> int:
    with wb.registry.session() as s:
        return wb.jobs.create(s, kind, owner_id=owner.id, **fields).id


def wait_state(wb: Workbench, job_id: int, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while wb.jobs.info(job_id).state != state:
        assert time.monotonic() < deadline, wb.jobs.info(job_id)
        time.sleep(0.01)


def test_a_job_runs_in_the_background_with_its_log_progress_and_result(wb, people):
    wb.start()
    job_id = queue(wb, people.bob, spec={"steps": 3})
    info = wb.jobs.wait(job_id, timeout=10)
    assert (info.state, info.message, info.result) == ("succeeded", "3 steps", {"steps": 3})
    assert info.progress == 1.0 and info.instance == wb.settings.instance
    assert info.started_at is not None and info.finished_at >= info.started_at
    log = wb.jobs.tail(people.bob, job_id).text
    assert log == f"step 1/3\nstep 2/3\nstep 3/3\n[workbench] job {job_id} succeeded: 3 steps\n"
    states = [state for job, state in steps(wb).synced if job == job_id]
    assert states == ["queued", "starting", "running", "succeeded"]


def test_a_failure_keeps_its_error_class_and_message(wb, people):
    job_id = queue(wb, people.bob, spec={"fail": True})
    with pytest.raises(InvalidInput, match="the input was wrong") as caught:
        wb.jobs.wait(job_id, check=True)  # no dispatcher here: done in this thread
    assert caught.value.details == {"field": "input", "job": job_id}
    info = wb.jobs.get(people.bob, job_id)
    assert info.state == "failed" and info.result["error"] == "invalid_input"


def test_only_the_owner_and_admins_see_and_cancel_a_job(wb, people):
    job_id = queue(wb, people.bob)
    with pytest.raises(NotFound):
        wb.jobs.get(_other(wb), job_id)
    assert [j.id for j in wb.jobs.list(people.bob)] == [job_id]
    assert wb.jobs.list(people.alice) == []
    assert [j.id for j in wb.jobs.list(people.alice, JobFilter(all=True))] == [job_id]
    with pytest.raises(InvalidInput, match="Only admins"):
        wb.jobs.list(people.bob, JobFilter(all=True))
    stopped = wb.jobs.cancel(people.alice, job_id)
    assert (stopped.state, stopped.message) == ("stopped", "stopped by alice before it started")
    with pytest.raises(Conflict, match="only a queued or running job"):
        wb.jobs.cancel(people.bob, job_id)


def _other(wb: Workbench) -> Actor:
    carol = wb.users.add_user("carol")
    return Actor(carol.id, carol.username, carol.role)


def test_cancelling_a_running_job_stops_it_at_its_next_step(wb, people):
    steps(wb).gate.clear()
    wb.start()
    job_id = queue(wb, people.bob, spec={"steps": 5})
    assert steps(wb).started.wait(5)
    wait_state(wb, job_id, "running")
    threading.Timer(0.5, steps(wb).gate.set).start()  # after the cancel, and a poll
    info = wb.jobs.cancel(people.bob, job_id)
    assert (info.state, info.message) == ("stopped", "stopped by its owner")
    assert job_id not in steps(wb).done


def test_a_container_job_is_followed_and_collected(wb, people):
    wb.start()
    job_id = queue(wb, people.bob, Sleeper.name, cpus=1, memory_mb=256)
    wait_state(wb, job_id, "running")
    fake = wb.backend()
    with wb.registry.session() as s:
        run_id = s.get_one(m.Job, job_id).run_id
    fake.emit(run_id, "one", "two")
    fake.finish(run_id, 0)
    info = wb.jobs.wait(job_id, timeout=10)
    assert (info.state, info.message, info.exit_code) == ("succeeded", "slept", 0)
    assert wb.jobs.tail(people.bob, job_id).text.startswith("sleeping\none\ntwo\n")
    assert fake.list({"workbench.job": str(job_id)}) == []


def test_the_pool_holds_back_container_jobs_but_not_work_in_the_server(wb, people):
    wb.jobs.runner.limits = replace(wb.jobs.runner.limits, cpus=1, memory_mb=1024)
    wb.start()
    first = queue(wb, people.bob, Sleeper.name, cpus=1, memory_mb=256)
    second = queue(wb, people.bob, Sleeper.name, cpus=1, memory_mb=256)
    too_big = queue(wb, people.bob, Sleeper.name, cpus=2, memory_mb=256)
    in_server = queue(wb, people.bob)
    wait_state(wb, first, "running")
    assert wb.jobs.wait(in_server, timeout=10).state == "succeeded"  # not held up
    # it says what it waits for: the pool, as the running ones use it
    deadline = time.monotonic() + 10
    while not (queued := wb.jobs.info(second)).message:
        assert time.monotonic() < deadline, queued
        time.sleep(0.01)
    assert queued.state == "queued"
    assert queued.message == (
        "waiting for resources: running jobs use 1 of 1 CPUs, 256 of 1024 MiB, 0 of 0 GPUs"
    )
    failed = wb.jobs.wait(too_big, timeout=10)
    assert failed.state == "failed" and "asks for more than this server's jobs" in failed.message
    wb.jobs.cancel(people.bob, first)
    wait_state(wb, second, "running")
    wb.jobs.cancel(people.bob, second)


def test_two_servers_on_one_registry_take_each_job_once(wb, people):
    other = Workbench.from_settings(
        replace(wb.settings, instance_name="second-server"), backend_instance=wb.backend()
    )
    other.jobs.runner.register(Steps())
    other.jobs.runner.interval = 0.02
    wb.start()
    other.start()
    try:
        ids = [queue(wb, people.bob, spec={"steps": 1}) for _ in range(20)]
        for job_id in ids:
            assert wb.jobs.wait(job_id, timeout=20).state == "succeeded"
        assert sorted(steps(wb).done + steps(other).done) == ids  # each once
        with wb.registry.session() as s:
            instances = set(s.scalars(sa.select(m.Job.instance).where(m.Job.id.in_(ids))))
        assert instances <= {wb.settings.instance, "second-server"}
    finally:
        other.close()


def test_a_server_does_not_take_up_another_servers_running_job(wb, people):
    steps(wb).gate.clear()
    wb.start()
    job_id = queue(wb, people.bob)
    wait_state(wb, job_id, "running")
    other = Workbench.from_settings(
        replace(wb.settings, instance_name="second-server"), backend_instance=wb.backend()
    )
    other.jobs.runner.register(Steps())
    assert other.jobs.runner.reconcile() == []
    assert wb.jobs.info(job_id).state == "running"
    steps(wb).gate.set()
    assert wb.jobs.wait(job_id, timeout=10).state == "succeeded"
    other.close()


def test_work_in_a_stopped_server_ends_failed_or_is_queued_again(wb, people):
    """The same server started again (a new runner, the same instance): work that ran in
    the old process ends failed, once; a kind that may start over is queued again."""
    steps(wb).gate.clear()
    wb.start()
    job_id = queue(wb, people.bob)
    wait_state(wb, job_id, "running")
    wb.jobs.runner.stop()  # the server goes; its thread can write nothing any more
    steps(wb).gate.set()

    class Again(Steps):
        requeue_interrupted = True

    for kind, expected in ((Steps(), "failed"), (Again(), "succeeded")):
        if expected == "succeeded":  # make another interrupted job
            with wb.registry.session() as s:
                job = s.get_one(m.Job, job_id)
                job.state, job.finished_at, job.message = "running", None, ""
        server = Workbench.from_settings(wb.settings, backend_instance=wb.backend())
        server.jobs.runner.register(kind)
        server.jobs.runner.interval = 0.02
        server.start()
        try:
            info = server.jobs.wait(job_id, timeout=10)
            assert info.state == expected, info
            if expected == "failed":
                assert info.message == "the server stopped while it ran; start it again"
                # its files too (an upload's tar, say): cleaned just after the state is written
                deadline = time.monotonic() + 5
                while not kind.cleaned and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert kind.cleaned == [job_id]
                assert server.jobs.runner.reconcile() == []  # once
        finally:
            server.close()
