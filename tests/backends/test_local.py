"""What only the local backend does, and what it documents it cannot do."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from tests.backends.conftest import SESSION, TAG_PREFIX, Harness, sh
from workbench.backends import Limits, Mount, RunSpec, RunState
from workbench.backends.local import LocalBackend
from workbench.errors import BackendError, BuildFailed, ImageNotFound, InvalidInput, Unsupported


def test_runs_outlive_the_backend_object(local_h: Harness):
    """A new LocalBackend on the same folder (a restarted Workbench) sees and stops them."""
    done = local_h.backend.run(local_h.spec("done", sh("exit 4")))
    running = local_h.backend.run(local_h.spec("running", ("sleep", "60")))
    local_h.wait(done.id)

    again = LocalBackend(local_h.backend.state_dir)

    assert again.status(done.id).exit_code == 4
    assert again.status(running.id).state is RunState.RUNNING
    assert {done.id, running.id} <= {run.id for run in again.list()}
    assert again.stop(running.id, timeout=5).exit_code == 143
    assert local_h.backend.status(running.id).state is RunState.EXITED


def test_a_run_that_ignores_sigterm_is_killed_after_the_timeout(local_h: Harness):
    script = "trap '' TERM; echo ready; sleep 60 & wait"
    info = local_h.backend.run(local_h.spec("stubborn", sh(script)))
    _wait_for(lambda: list(local_h.backend.logs(info.id)) == ["ready"])

    started = time.monotonic()
    stopped = local_h.backend.stop(info.id, timeout=0.5)

    assert (stopped.state, stopped.exit_code) == (RunState.EXITED, 137)
    assert time.monotonic() - started < 5


def test_nothing_the_command_started_outlives_the_run(local_h: Harness):
    info = local_h.backend.run(local_h.spec("bg", sh("sleep 60 & echo $!")))
    local_h.wait(info.id)

    (pid,) = list(local_h.backend.logs(info.id))

    _wait_for(lambda: not _alive(int(pid)))


def test_limits_are_set_as_rlimits(local_h: Harness):
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"
    spec = local_h.spec("rlimit", ("python", "-c", code), limits=Limits(memory_mb=512))

    info = local_h.backend.run(spec)

    local_h.wait(info.id)
    assert list(local_h.backend.logs(info.id)) == [str(512 * 1024 * 1024)]


def test_the_host_port_is_passed_as_port(local_h: Harness):
    spec = local_h.spec("port", sh('echo "$PORT $PORT_8000"'), ports={8000: 0})

    info = local_h.backend.run(spec)

    local_h.wait(info.id)
    port = info.ports[8000]
    assert list(local_h.backend.logs(info.id)) == [f"{port} {port}"]


def test_a_missing_command_exits_127_with_a_message(local_h: Harness):
    info = local_h.backend.run(local_h.spec("nocmd", ("/no/such/command",)))

    assert local_h.wait(info.id).exit_code == 127
    assert "cannot start '/no/such/command'" in next(iter(local_h.backend.logs(info.id)))


def test_the_environment_of_workbench_does_not_leak_into_runs(
    local_h: Harness, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WORKBENCH_SECRET", "s3cret")
    info = local_h.backend.run(local_h.spec("env", sh('echo "[$WORKBENCH_SECRET] $VIRTUAL_ENV"')))

    local_h.wait(info.id)
    (line,) = local_h.backend.logs(info.id)
    assert line.startswith("[] ")
    assert line.endswith(local_h.backend.inspect_image(local_h.image).env["VIRTUAL_ENV"])


def test_read_only_is_not_enforced_as_documented(local_h: Harness):
    data = local_h.tmp / "ro"
    data.mkdir()
    spec = local_h.spec(
        "ro", sh("echo x > file"), mounts=(Mount(data, "/ro", read_only=True),), workdir="/ro"
    )

    info = local_h.backend.run(spec)

    assert local_h.wait(info.id).exit_code == 0
    assert (data / "file").exists()  # file modes are the only protection


def test_a_mount_target_cannot_climb_out_of_the_run(local_h: Harness):
    spec = local_h.spec("climb", ("true",), mounts=(Mount(local_h.tmp, "/../../escape"),))

    with pytest.raises(InvalidInput):
        local_h.backend.run(spec)


def test_a_run_needs_a_command(local_h: Harness):
    with pytest.raises(InvalidInput, match="command"):
        local_h.backend.run(local_h.spec("nocommand", None))


def test_build_installs_the_requirements_into_the_image(local_h: Harness, tmp_path: Path):
    backend = local_h.backend
    assert isinstance(backend, LocalBackend)
    _wheel(tmp_path / "wbdemo-0.1-py3-none-any.whl")
    (tmp_path / "requirements.txt").write_text("--no-index\n./wbdemo-0.1-py3-none-any.whl\n")
    tag = f"{TAG_PREFIX}demo:1"

    lines = list(backend.build_image(tmp_path, tag))
    spec = local_h.spec("demo", ("python", "-c", "import wbdemo; print(wbdemo.ANSWER)"))
    info = backend.run(RunSpec(**{**spec.__dict__, "image": tag}))
    image = backend.inspect_image(tag)

    assert any("Successfully installed wbdemo-0.1" in line for line in lines)
    local_h.wait(info.id)
    assert list(backend.logs(info.id)) == ["42"]
    assert image.tags == (tag,)
    assert image.size > 0
    with pytest.raises(BackendError, match="remove them first"):
        backend.remove_image(tag)  # a run uses it
    backend.remove(info.id)
    backend.remove_image(tag)
    assert not (backend.state_dir / "images" / image.id).exists()
    with pytest.raises(ImageNotFound):
        backend.inspect_image(tag)


def test_a_failing_build_raises_build_failed_and_leaves_no_image(local_h: Harness, tmp_path: Path):
    backend = local_h.backend
    assert isinstance(backend, LocalBackend)
    (tmp_path / "requirements.txt").write_text(f"--no-index\nwbtest-absent-{SESSION}\n")
    images_before = set((backend.state_dir / "images").iterdir())
    tag = f"{TAG_PREFIX}broken:1"

    with pytest.raises(BuildFailed) as failed:
        for _ in backend.build_image(tmp_path, tag):
            pass

    assert "No matching distribution" in failed.value.message
    assert set((backend.state_dir / "images").iterdir()) == images_before
    with pytest.raises(ImageNotFound):
        backend.inspect_image(tag)


def test_docker_image_operations_are_unsupported(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    tar = tmp_path / "image.tar"

    for call in (
        lambda: backend.import_rootfs(tar, "x:1"),
        lambda: backend.load_image(tar),
        lambda: backend.save_image("x:1", tar),
        lambda: backend.tag_image("x:1", "y:1"),
    ):
        with pytest.raises(Unsupported, match="needs Docker"):
            call()


def _wheel(path: Path) -> None:
    """A one-module wheel, so that pip installs without any index."""
    info = "wbdemo-0.1.dist-info"
    files = {
        "wbdemo/__init__.py": "ANSWER = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: wbdemo\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
