"""What only the Docker backend does: limits and lock-down seen by the engine, published
ports, OOM kills, the refused Docker socket, image builds and tars. Real engine throughout,
except the error mapping and factory tests at the end, which need none."""

from __future__ import annotations

import io
import socket
import tarfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from tests.backends.conftest import SESSION, TAG_PREFIX, Harness, sh
from workbench.backends import Limits, Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend, engine_errors
from workbench.errors import (
    BackendError,
    BackendUnavailable,
    BuildFailed,
    ImageNotFound,
    InvalidInput,
    RunNotFound,
    UnsupportedArchive,
)

docker_only = pytest.mark.docker


@docker_only
def test_limits_and_lock_down_are_what_the_engine_holds(
    docker_h: Harness, docker_client: docker.DockerClient
):
    spec = docker_h.spec(
        "limits",
        sh("grep CapEff /proc/self/status; exec sleep 60"),
        limits=Limits(cpus=0.5, memory_mb=64, pids=64),
        ports={8000: 0},
    )

    info = docker_h.backend.run(spec)

    host = docker_client.api.inspect_container(info.id)["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["MemorySwap"] == 64 * 1024 * 1024  # no swap beyond the memory limit
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    _wait_for(lambda: list(docker_h.backend.logs(info.id)) == ["CapEff:\t0000000000000000"])


@docker_only
def test_a_published_port_answers_on_localhost_only_and_the_address_from_this_host(
    docker_h: Harness, docker_client: docker.DockerClient
):
    spec = docker_h.spec(
        "http", ("python3", "-m", "http.server", "8000"), ports={8000: 0}, workdir="/etc"
    )

    info = docker_h.backend.run(spec)

    port = info.ports[8000]
    published = docker_client.api.inspect_container(info.id)["NetworkSettings"]["Ports"]
    assert published["8000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    body = _get(f"http://127.0.0.1:{port}/hostname")
    assert body.strip() != ""
    assert docker_h.backend.status(info.id).ports == {8000: port}
    # the container's own address answers too, from this host (what the endpoints use)
    assert info.address and _get(f"http://{info.address}:8000/hostname") == body
    docker_h.backend.stop(info.id, timeout=5)
    assert docker_h.backend.status(info.id).address is None


@docker_only
def test_a_run_over_its_memory_limit_is_oom_killed(docker_h: Harness):
    spec = docker_h.spec(
        "oom", ("python3", "-c", "x = 'a' * (200 << 20)"), limits=Limits(memory_mb=32)
    )

    info = docker_h.backend.run(spec)

    done = docker_h.wait(info.id)
    assert (done.state, done.exit_code, done.oom_killed) == (RunState.EXITED, 137, True)


@docker_only
def test_a_run_that_fails_is_started_again_when_asked(docker_h: Harness):
    """restart_on_failure: the engine starts it again after a failing exit (a service's
    replica that crashes), and counts it; a stop through the engine is final."""
    spec = docker_h.spec("crashes", ("python3", "-c", "import sys; sys.exit(3)"))
    info = docker_h.backend.run(replace(spec, restart_on_failure=True))
    deadline = time.monotonic() + 30
    while docker_h.backend.status(info.id).restarts < 2:
        assert time.monotonic() < deadline, "the engine did not start it again"
        time.sleep(0.2)
    stopped = docker_h.backend.stop(info.id, timeout=1)
    assert stopped.state == RunState.EXITED
    time.sleep(2)
    assert docker_h.backend.status(info.id).state == RunState.EXITED
    once = docker_h.backend.run(replace(spec, name=f"{spec.name}-once"))
    assert docker_h.wait(once.id).restarts == 0  # by default, an exit is final


@docker_only
@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "/run", "/"])
def test_the_docker_socket_is_never_mounted(docker_h: Harness, source: str):
    spec = docker_h.spec("sock", ("true",), mounts=(Mount(Path(source), "/mnt/x"),))

    with pytest.raises(InvalidInput, match="Docker socket"):
        docker_h.backend.run(spec)
    with pytest.raises(RunNotFound):
        docker_h.backend.status(spec.name)


@docker_only
def test_a_missing_mount_source_is_refused(docker_h: Harness):
    spec = docker_h.spec("nosrc", ("true",), mounts=(Mount(docker_h.tmp / "absent", "/x"),))

    with pytest.raises(InvalidInput, match="does not exist"):
        docker_h.backend.run(spec)


@docker_only
def test_a_start_that_fails_on_a_taken_port_leaves_no_container(docker_h: Harness):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        spec = docker_h.spec("taken", ("sleep", "60"), ports={8000: taken.getsockname()[1]})

        with pytest.raises(BackendError, match="address already in use"):
            docker_h.backend.run(spec)

    with pytest.raises(RunNotFound):
        docker_h.backend.status(spec.name)


@docker_only
def test_the_image_command_runs_when_the_spec_has_none(docker_h: Harness, tmp_path: Path):
    tag = f"{TAG_PREFIX}cmd:1"
    _write(tmp_path, Dockerfile=f'FROM {docker_h.image}\nCMD ["echo", "from the image"]\n')
    list(docker_h.backend.build_image(tmp_path, tag))
    spec = docker_h.spec("cmd", None)
    spec = RunSpec(**{**spec.__dict__, "image": tag})

    info = docker_h.backend.run(spec)

    docker_h.wait(info.id)
    assert list(docker_h.backend.logs(info.id)) == ["from the image"]


@docker_only
def test_a_failing_build_raises_build_failed_with_the_engines_lines(
    docker_h: Harness, tmp_path: Path, docker_client: docker.DockerClient
):
    tag = f"{TAG_PREFIX}broken:1"
    step = f"echo about to fail {SESSION} && exit 3"
    _write(tmp_path, Dockerfile=f"FROM {docker_h.image}\nRUN {step}\n")
    lines: list[str] = []

    with pytest.raises(BuildFailed) as failed:
        for line in docker_h.backend.build_image(tmp_path, tag):
            lines.append(line)

    assert f"about to fail {SESSION}" in lines
    assert "returned a non-zero code: 3" in failed.value.message
    assert f"about to fail {SESSION}" in failed.value.message
    assert failed.value.details["lines"][-1].endswith("returned a non-zero code: 3")
    with pytest.raises(ImageNotFound):
        docker_h.backend.inspect_image(tag)
    # forcerm: the intermediate container of the failed step is gone
    commands = [c.attrs["Config"]["Cmd"] for c in docker_client.containers.list(all=True)]
    assert not [cmd for cmd in commands if cmd and step in " ".join(cmd)]


@docker_only
def test_build_save_remove_load_gives_the_image_back(docker_h: Harness, tmp_path: Path):
    backend = docker_h.backend
    tag = f"{TAG_PREFIX}roundtrip:1"
    context = tmp_path / "context"
    _write(
        context,
        Dockerfile=(
            "FROM scratch\nCOPY hello.txt /hello.txt\nENV GREETING=hi\nEXPOSE 8080 9090/udp\n"
            'ENTRYPOINT ["/hello"]\nCMD ["--loud"]\n'
        ),
        **{"hello.txt": "hello\n"},
    )

    lines = list(backend.build_image(context, tag))
    built = backend.inspect_image(tag)
    tar = tmp_path / "out" / "image.tar"
    backend.save_image(tag, tar)
    backend.remove_image(tag)
    gone_then = _raises(ImageNotFound, backend.inspect_image, tag)
    backend.remove_image(tag)  # removing a missing image is not an error
    loaded = backend.load_image(tar)

    assert any(line.startswith("Step 2/6 : COPY") for line in lines)
    assert built.tags == (tag,)
    assert built.env["GREETING"] == "hi"
    assert built.exposed_ports == (8080, 9090)
    assert (built.entrypoint, built.cmd) == (("/hello",), ("--loud",))
    assert built.size > 0
    assert [p.name for p in tar.parent.iterdir()] == ["image.tar"]  # no temporary left
    assert gone_then
    assert loaded == [built.id]  # by id, the tar's tag not applied (it could be anyone's)
    assert _raises(ImageNotFound, backend.inspect_image, tag)
    assert backend.inspect_image(built.id).cmd == ("--loud",)


@docker_only
def test_a_root_filesystem_tar_imports_as_an_image(docker_h: Harness, tmp_path: Path):
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as archive:
        data = b"root filesystem of one file\n"
        member = tarfile.TarInfo("etc/motd")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    tag = f"{TAG_PREFIX}imported:1"

    info = docker_h.backend.import_rootfs(tar, tag)

    assert info.tags == (tag,)
    assert info.size > 0
    assert info.cmd is None


@docker_only
def test_a_tar_that_is_not_one_is_refused(docker_h: Harness, tmp_path: Path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"no tar here " * 100)

    with pytest.raises(BackendError, match="invalid tar header"):
        docker_h.backend.import_rootfs(junk, f"{TAG_PREFIX}junk:1")
    with pytest.raises(UnsupportedArchive, match="not a tar archive"):
        docker_h.backend.load_image(junk)


@docker_only
def test_a_missing_image_cannot_be_saved_or_inspected(docker_h: Harness, tmp_path: Path):
    missing = f"{TAG_PREFIX}missing:0"

    with pytest.raises(ImageNotFound):
        docker_h.backend.save_image(missing, tmp_path / "x.tar")
    with pytest.raises(ImageNotFound):
        docker_h.backend.inspect_image(missing)
    assert list(tmp_path.iterdir()) == []


# --- without an engine ----------------------------------------------------------------------


def test_from_env_says_how_to_start_docker_when_none_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")

    with pytest.raises(BackendUnavailable, match="scripts/docker"):
        DockerBackend.from_env()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (docker.errors.NotFound("No such container: x"), RunNotFound),
        (docker.errors.ImageNotFound("No such image: y"), ImageNotFound),
        (docker.errors.APIError("500 Server Error", explanation="engine says no"), BackendError),
        (requests.exceptions.ConnectionError("refused"), BackendUnavailable),
        (docker.errors.DockerException("odd"), BackendError),
    ],
)
def test_engine_errors_become_backend_errors(raised: Exception, expected: type[Exception]):
    with pytest.raises(expected) as caught, engine_errors(run="x", image="y"):
        raise raised

    assert caught.value.__cause__ is raised
    if type(raised) is docker.errors.APIError:
        assert "engine says no" in str(caught.value)


def test_gpus_become_a_device_request():
    backend = DockerBackend(docker.DockerClient(base_url="unix:///nonexistent", version="1.41"))
    spec = RunSpec(name=f"wbt-{SESSION}-gpu", image="x", limits=Limits(gpus=2))

    args = backend._create_args(spec)

    (request,) = args["device_requests"]
    assert (request["Count"], request["Capabilities"]) == (2, [["gpu"]])
    assert "device_requests" not in backend._create_args(RunSpec(name="cpu", image="x"))


# --- helpers --------------------------------------------------------------------------------


def _write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def _get(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _raises(error: type[Exception], call, *args) -> bool:
    try:
        call(*args)
    except error:
        return True
    return False


def _wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
