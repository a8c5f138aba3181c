"""The backend contract, run against Docker (a real engine), local (real processes) and fake.

Commands are POSIX shell, so the same spec runs in the Debian image and on this machine;
for the fake backend, ``harness.script`` says what the command would print.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import pytest

from tests.backends.conftest import KINDS, SESSION, TAG_PREFIX, TEST_LABEL, Harness, sh
from workbench.backends import MANAGED_LABEL, Mount, RunState
from workbench.backends.base import EXEC_OUTPUT_MAX_BYTES, Replica, ReplicatedSpec, Rollout
from workbench.errors import BackendError, ImageNotFound, JobFailed, RunNotFound, Unsupported

SIGTERM_EXIT = 143  # every backend stops with SIGTERM first; the commands honour it


def test_output_lands_in_logs_and_the_exit_code_is_kept(harness: Harness):
    spec = harness.spec("out", sh("echo one; echo two; exit 3"))
    harness.script(spec, ["one", "two"], exit_code=3)

    info = harness.backend.run(spec)

    assert info.name == spec.name
    assert info.labels[TEST_LABEL] == SESSION
    assert MANAGED_LABEL in info.labels
    done = harness.wait(info.id)
    assert (done.exit_code, done.oom_killed) == (3, False)
    assert list(harness.backend.logs(info.id)) == ["one", "two"]
    assert list(harness.backend.logs(spec.name, tail=1)) == ["two"]


def test_stderr_lands_in_logs(harness: Harness):
    spec = harness.spec("err", sh("echo oops >&2"))
    harness.script(spec, ["oops"])

    info = harness.backend.run(spec)

    harness.wait(info.id)
    assert list(harness.backend.logs(info.id)) == ["oops"]


def test_following_logs_yields_lines_as_they_come_until_the_run_ends(harness: Harness):
    spec = harness.spec("follow", sh("for i in 1 2 3; do echo line $i; sleep 0.3; done"))
    harness.script(spec, ["line 1", "line 2", "line 3"])
    info = harness.backend.run(spec)

    lines = list(harness.backend.logs(info.id, follow=True))

    assert lines == ["line 1", "line 2", "line 3"]
    assert harness.wait(info.id, timeout=5).exit_code == 0


@pytest.mark.backends("docker", "local")  # the fake runs no processes
def test_environment_reaches_the_command(harness: Harness):
    spec = harness.spec("env", sh('echo "$GREETING, $WHO"'), env={"GREETING": "hi", "WHO": "you"})

    info = harness.backend.run(spec)

    harness.wait(info.id)
    assert list(harness.backend.logs(info.id)) == ["hi, you"]


def test_stop_start_remove(harness: Harness):
    spec = harness.spec("life", ("sleep", "60"))
    harness.script(spec, exit_code=None)
    info = harness.backend.run(spec)
    assert info.state is RunState.RUNNING

    stopped = harness.backend.stop(info.id, timeout=5)
    assert (stopped.state, stopped.exit_code) == (RunState.EXITED, SIGTERM_EXIT)
    assert harness.backend.start(info.id).state is RunState.RUNNING
    assert harness.backend.status(spec.name).state is RunState.RUNNING

    harness.backend.remove(info.id)
    with pytest.raises(RunNotFound):
        harness.backend.status(info.id)
    harness.backend.remove(info.id)  # removing a missing run is not an error


@pytest.mark.backends("docker", "local")
def test_files_in_a_mounted_folder_survive_stop_start_and_remove(harness: Harness):
    data = harness.tmp / "data"
    data.mkdir()
    stamps = data / "stamps"
    spec = harness.spec(
        "files",
        sh("echo run >> stamps; exec sleep 60"),
        mounts=(Mount(data, "/data"),),
        workdir="/data",
    )
    info = harness.backend.run(spec)
    _wait_for(lambda: stamps.exists() and stamps.read_text() == "run\n")

    assert harness.backend.stop(info.id, timeout=5).state is RunState.EXITED
    harness.backend.start(info.id)
    _wait_for(lambda: stamps.read_text() == "run\nrun\n")
    harness.backend.remove(info.id)

    assert stamps.read_text() == "run\nrun\n"


@pytest.mark.backends("docker")  # local does not enforce read_only (local.py's docstring)
def test_a_read_only_mount_cannot_be_written(harness: Harness):
    data = harness.tmp / "ro"
    data.mkdir()
    spec = harness.spec("ro", sh("echo x > /ro/file"), mounts=(Mount(data, "/ro", read_only=True),))

    info = harness.backend.run(spec)

    assert harness.wait(info.id).exit_code != 0
    assert "Read-only file system" in "\n".join(harness.backend.logs(info.id))
    assert not (data / "file").exists()


def test_runs_are_listed_by_labels(harness: Harness):
    first = harness.spec("list-a", ("sleep", "60"), labels={"role": "a"})
    second = harness.spec("list-b", ("sleep", "60"), labels={"role": "b"})
    for spec in (first, second):
        harness.script(spec, exit_code=None)
        harness.backend.run(spec)

    only_a = harness.backend.list({TEST_LABEL: SESSION, "role": "a"})
    everything = harness.backend.list()

    assert [run.name for run in only_a] == [first.name]
    assert {first.name, second.name} <= {run.name for run in everything}
    assert harness.backend.list({TEST_LABEL: SESSION, "role": "none"}) == []


def test_a_missing_run_is_run_not_found(harness: Harness):
    missing = f"wbt-{SESSION}-never-made"

    for call in (
        harness.backend.status,
        harness.backend.start,
        harness.backend.stop,
        harness.backend.logs,
    ):
        with pytest.raises(RunNotFound):
            call(missing)
    harness.backend.remove(missing)


def test_a_missing_image_is_image_not_found_and_leaves_nothing(harness: Harness):
    spec = harness.spec("noimage", ("true",))
    spec = type(spec)(**{**spec.__dict__, "image": f"wbtest-{SESSION}-missing/none:0"})

    with pytest.raises(ImageNotFound):
        harness.backend.run(spec)
    with pytest.raises(RunNotFound):
        harness.backend.status(spec.name)


def test_a_failed_start_leaves_nothing_behind(harness: Harness):
    afile = harness.tmp / "a-file"
    afile.write_text("not a folder")
    # the working folder would be below a mounted file: neither Docker nor local can start it
    spec = harness.spec("badstart", ("true",), mounts=(Mount(afile, "/cfg"),), workdir="/cfg/sub")
    harness.script(spec, start_error="not a directory")

    with pytest.raises(BackendError):
        harness.backend.run(spec)

    with pytest.raises(RunNotFound):
        harness.backend.status(spec.name)
    assert spec.name not in [run.name for run in harness.backend.list({TEST_LABEL: SESSION})]


def test_run_names_are_unique(harness: Harness):
    spec = harness.spec("dup", ("sleep", "60"))
    harness.script(spec, exit_code=None)
    first = harness.backend.run(spec)

    with pytest.raises(BackendError):
        harness.backend.run(spec)
    assert harness.backend.status(first.id).state is RunState.RUNNING


def test_a_port_asked_as_any_is_reported_with_its_host_port(harness: Harness):
    spec = harness.spec("port", ("sleep", "60"), ports={8000: 0})
    harness.script(spec, exit_code=None)

    info = harness.backend.run(spec)

    assert set(info.ports) == {8000}
    assert 0 < info.ports[8000] < 65536


@pytest.mark.backends("docker", "fake")  # local images are virtual environments: Unsupported
def test_tag_image_adds_a_tag_and_removing_it_keeps_the_image(harness: Harness):
    backend = harness.backend
    image = backend.inspect_image(harness.image)
    tag = f"{TAG_PREFIX}tagged-{uuid.uuid4().hex[:6]}:1"

    backend.tag_image(image.id, tag)

    assert backend.inspect_image(tag).id == image.id
    assert tag in backend.inspect_image(harness.image).tags
    backend.tag_image(tag, f"{tag}-again")  # by tag as well as by id
    assert backend.inspect_image(f"{tag}-again").id == image.id
    backend.remove_image(f"{tag}-again")
    backend.remove_image(tag)  # only the tag goes
    assert backend.inspect_image(harness.image).id == image.id
    with pytest.raises(ImageNotFound):
        backend.inspect_image(tag)
    with pytest.raises(ImageNotFound):
        backend.tag_image(f"{TAG_PREFIX}missing/none:0", tag)


def _wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.backends("docker")  # local and fake do not run commands in a run (below)
def test_commands_run_in_a_running_run_and_its_folder_is_read(harness: Harness):
    backend = harness.backend
    info = backend.run(harness.spec("exec", ("sleep", "60"), user="4321:4321"))
    code, output = backend.exec_run(info.id, sh("echo out; echo err >&2; exit 4"))
    assert (code, sorted(output.split())) == (4, ["err", "out"])  # both streams, any order
    started = backend.exec_start(
        info.id,
        sh('mkdir -p /tmp/k && echo "$GREETING" > /tmp/k/a && pwd > /tmp/k/b; sleep 1; exit 3'),
        env={"GREETING": "hello"},
        workdir="/tmp",
    )
    assert backend.exec_exit_code(started) is None  # it sleeps
    _wait_for(lambda: backend.exec_exit_code(started) is not None)
    assert backend.exec_exit_code(started) == 3
    assert backend.read_files(info.id, "/tmp/k") == {"a": b"hello\n", "b": b"/tmp\n"}
    assert backend.read_files(info.id, "/tmp/nothing") == {}
    # what the run left is hostile: no link is followed, no folder below is read, no big one
    code, _ = backend.exec_run(
        info.id,
        sh(
            "mkdir -p /tmp/k/sub && echo deep > /tmp/k/sub/c && ln -s /etc/hostname /tmp/k/link"
            " && head -c 200000 /dev/zero > /tmp/big"
        ),
    )
    assert code == 0
    assert set(backend.read_files(info.id, "/tmp/k")) == {"a", "b"}
    with pytest.raises(BackendError, match="more than 100000 bytes"):
        backend.read_files(info.id, "/tmp", max_bytes=100_000)
    # a folder that is a link (to one the run may not show), however it is named; a FIFO
    code, _ = backend.exec_run(
        info.id, sh("ln -s /etc /tmp/folder && mkdir /tmp/f && mkfifo /tmp/f/pipe")
    )
    assert code == 0
    for name in ("/tmp/folder", "/tmp/folder/", "/tmp/folder/.", "/tmp/f"):
        assert backend.read_files(info.id, name) == {}, name
    # as the run's own user; output kept to its end; a command that does not end
    assert backend.exec_run(info.id, ("id", "-u"))[1] == "4321\n"
    code, output = backend.exec_run(info.id, sh("head -c 300000 /dev/zero | tr '\\0' x; echo end"))
    assert code == 0 and len(output) == EXEC_OUTPUT_MAX_BYTES and output.endswith("xend\n")
    with pytest.raises(BackendError, match="did not end within 1 s"):
        backend.exec_run(info.id, sh("while :; do echo x; sleep 0.1; done"), timeout=1)
    backend.remove(info.id)
    for call in (
        lambda: backend.exec_run(info.id, ("true",)),
        lambda: backend.exec_start(info.id, ("true",), env={}, workdir="/"),
        lambda: backend.read_files(info.id, "/tmp/k"),
        lambda: backend.exec_exit_code(started),
    ):
        with pytest.raises(RunNotFound):
            call()


def test_what_a_backend_cannot_do_is_unsupported_with_what_to_do(harness: Harness, tmp_path):
    """The capabilities the services ask (``saves_images``, ``pulls_images``) match what
    the backend does: where one is False, its methods raise Unsupported, never a crash."""
    backend = harness.backend
    if not backend.saves_images:
        for call in (
            lambda: backend.load_image(tmp_path / "x.tar"),
            lambda: backend.save_image("x:1", tmp_path / "x.tar"),
            lambda: backend.tag_image("x:1", "y:1"),
        ):
            with pytest.raises(Unsupported, match="Docker"):
                call()
    if not backend.pulls_images:
        with pytest.raises(Unsupported, match="docker save tar"):
            backend.pull_image("example/image:1", lambda line: None)
        with pytest.raises(Unsupported):
            backend.require_pull()
    else:
        backend.require_pull()
    if not backend.execs:
        for call in (
            lambda: backend.exec_run("x", ("true",)),
            lambda: backend.exec_start("x", ("true",), env={}, workdir="/"),
            lambda: backend.exec_exit_code("x"),
            lambda: backend.read_files("x", "/tmp"),
        ):
            with pytest.raises(Unsupported, match="WORKBENCH_BACKEND=docker"):
                call()
    assert (backend.saves_images, backend.pulls_images, backend.execs) == {
        "docker": (True, True, True),
        "local": (False, False, False),
        "fake": (True, False, False),
    }[backend.name]


# --- replicated services ----------------------------------------------------------------------

#: a server answering 200 on / (python3 is in the Debian image and in the local venv)
SERVER = sh("echo serving; exec python3 -m http.server ${PORT:-8000}")


class Routes:
    """A rollout that records where each deploy sent the traffic, and which replicas of
    the service ran at that moment (a removed replica must still run when it is routed
    away from)."""

    def __init__(self, harness: Harness, spec: ReplicatedSpec) -> None:
        self.harness, self.spec = harness, spec
        self.sent: list[list[str]] = []
        self.running_then: list[set[str]] = []

    def rollout(self, **how: Any) -> Rollout:
        """A rollout that records (``how``: its restart and replace)."""
        return Rollout(self._route, **how)

    def _route(self, targets: list[str]) -> None:
        self.sent.append(targets)
        replicas = self.harness.backend.replicas(self.spec.run.labels, self.spec.port)
        self.running_then.append({r.run.id for r in replicas if r.run.state is RunState.RUNNING})


def deploy(
    harness: Harness,
    spec: ReplicatedSpec,
    routes: Routes,
    *,
    restart: bool = False,
    slots: frozenset[int] = frozenset(),
) -> list[Replica]:
    """A deploy of ``spec`` (``restart``: every replica new; ``slots``: these new)."""
    ready = harness.backend.deploy_replicated(spec, routes.rollout(restart=restart, replace=slots))
    assert routes.sent[-1] == [r.target for r in ready]
    return ready


def ids(replicas: list[Replica]) -> list[str]:
    return [r.run.id for r in replicas]


@pytest.mark.backends(*KINDS, "swarm")
def test_a_replicated_service_rolls_between_numbers_of_replicas(harness: Harness):
    spec = harness.replicated("rs", 2, SERVER)
    routes = Routes(harness, spec)
    backend = harness.backend

    two = deploy(harness, spec, routes)
    assert [r.slot for r in two] == [0, 1]
    assert all(r.target and backend.answers(r, "/") for r in two)
    assert [r.run.id for r in backend.replicas(spec.run.labels, 8000)] == ids(two)

    three = deploy(harness, replace(spec, replicas=3), routes)
    assert ids(three)[:2] == ids(two), "the replicas that answer are kept"

    one = deploy(harness, replace(spec, replicas=1), routes)
    assert ids(one) == ids(two)[:1]
    assert ids(backend.replicas(spec.run.labels, 8000)) == ids(one)

    again = deploy(harness, spec, routes, restart=True)
    assert not set(ids(again)) & set(ids(three)), "a restart replaces every replica"
    swapped = deploy(harness, spec, routes, slots=frozenset({1}))
    assert ids(swapped)[0] == ids(again)[0]
    if not backend.heals_replicas:  # an engine that heals its own replaces them itself
        assert ids(swapped)[1] != ids(again)[1]
        # the traffic left the replicas scaled away while they still ran
        assert set(ids(three)) <= routes.running_then[2]

    none = deploy(harness, replace(spec, replicas=0), routes)
    assert none == [] and backend.replicas(spec.run.labels, 8000) == []
    deploy(harness, spec, routes)
    backend.remove_replicated(spec.run.labels)
    assert backend.replicas(spec.run.labels, 8000) == []


@pytest.mark.backends(*KINDS, "swarm")
def test_a_replica_that_fails_its_start_rolls_the_deploy_back(harness: Harness):
    spec = harness.replicated("rb", 1, SERVER)
    routes = Routes(harness, spec)
    before = deploy(harness, spec, routes)
    broken = replace(spec, run=replace(spec.run, command=sh("echo broken on purpose; exit 3")))
    if harness.kind == "fake":  # from now on, runs of the image print that and exit
        harness.backend.script(harness.image, ["broken on purpose"], exit_code=3)

    with pytest.raises(JobFailed) as failed:
        harness.backend.deploy_replicated(broken, routes.rollout(restart=True))

    assert "replica 0 exited with 3 before it was ready" in failed.value.message
    assert "broken on purpose" in failed.value.message
    assert len(routes.sent) == 1, "a failed deploy routes nothing"
    after = harness.backend.replicas(spec.run.labels, 8000)
    assert ids(after) == ids(before), "the replica before it serves on; the new one is gone"
    assert harness.backend.answers(after[0], "/")
