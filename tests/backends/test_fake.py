"""The fake backend's own promises: steerable, deterministic, and honest about images."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from workbench.backends import RunSpec, RunState
from workbench.backends.fake import FakeBackend
from workbench.errors import BackendError, BuildFailed, ImageNotFound


@pytest.fixture
def fake() -> FakeBackend:
    backend = FakeBackend()
    backend.add_image("base:1", env={"LANG": "C.UTF-8"}, cmd=["bash"])
    return backend


def test_ids_and_ports_are_deterministic(fake: FakeBackend):
    first = fake.run(RunSpec(name="a", image="base:1", ports={8888: 0, 9000: 9000}))
    second = fake.run(RunSpec(name="b", image="base:1", ports={8888: 0}))

    assert (first.id, second.id) == ("fake-run-1", "fake-run-2")
    assert first.ports == {8888: FakeBackend.first_port, 9000: 9000}
    assert second.ports == {8888: FakeBackend.first_port + 1}


def test_a_taken_host_port_fails_the_start(fake: FakeBackend):
    fake.run(RunSpec(name="a", image="base:1", ports={80: 8080}))

    with pytest.raises(BackendError, match="already allocated"):
        fake.run(RunSpec(name="b", image="base:1", ports={80: 8080}))
    assert [run.name for run in fake.list()] == ["a"]


def test_following_logs_waits_for_output_and_the_end(fake: FakeBackend):
    info = fake.run(RunSpec(name="a", image="base:1"))
    seen: list[str] = []
    follower = threading.Thread(target=lambda: seen.extend(fake.logs(info.id, follow=True)))
    follower.start()

    fake.emit(info.id, "epoch 1", "epoch 2")
    fake.finish(info.id, exit_code=0)
    follower.join(timeout=5)

    assert not follower.is_alive()
    assert seen == ["epoch 1", "epoch 2"]
    assert fake.status(info.id).exit_code == 0


def test_a_script_can_end_in_an_oom_kill(fake: FakeBackend):
    fake.script("base:1", ["allocating"], exit_code=137, oom_killed=True)

    info = fake.run(RunSpec(name="a", image="base:1"))

    assert (info.state, info.exit_code, info.oom_killed) == (RunState.EXITED, 137, True)
    assert list(fake.logs("a")) == ["allocating"]


def test_builds_read_the_dockerfile(fake: FakeBackend, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        'FROM base:1\n# comment\nENV MODE=serve\nEXPOSE 8000\nCMD ["serve"]\n'
    )

    lines = list(fake.build_image(tmp_path, "app"))
    image = fake.inspect_image("app:latest")

    assert lines[:2] == ["Step 1/4 : FROM base:1", "Step 2/4 : ENV MODE=serve"]
    assert lines[-1] == "Successfully tagged app:latest"
    assert image.env == {"LANG": "C.UTF-8", "MODE": "serve"}
    assert (image.exposed_ports, image.cmd) == ((8000,), ("serve",))


def test_a_build_can_be_told_to_fail(fake: FakeBackend, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM base:1\nRUN make\n")
    fake.fail_build("app:2", error="make: *** no rule", lines=["make: entering"])

    with pytest.raises(BuildFailed, match="no rule") as failed:
        list(fake.build_image(tmp_path, "app:2"))

    assert failed.value.details["lines"] == ["make: entering", "make: *** no rule"]
    with pytest.raises(ImageNotFound):
        fake.inspect_image("app:2")


def test_save_and_load_keep_the_config_and_apply_no_tag(fake: FakeBackend, tmp_path: Path):
    tar = tmp_path / "base.tar"
    fake.save_image("base:1", tar)
    fake.remove_image("base:1")

    [loaded] = fake.load_image(tar)  # by id: the tags in a tar could name anyone's image

    with pytest.raises(ImageNotFound):
        fake.inspect_image("base:1")
    image = fake.inspect_image(loaded)
    assert (image.env, image.cmd) == ({"LANG": "C.UTF-8"}, ("bash",))


def test_a_docker_save_layout_loads(fake: FakeBackend, tmp_path: Path):
    tar = tmp_path / "real.tar"
    files = {
        "manifest.json": [{"Config": "abc.json", "RepoTags": ["real:7"], "Layers": []}],
        "abc.json": {"config": {"ExposedPorts": {"8888/tcp": {}}, "Env": ["A=b"]}},
    }
    with tarfile.open(tar, "w") as archive:
        for name, content in files.items():
            data = json.dumps(content).encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))

    [loaded] = fake.load_image(tar)
    assert fake.inspect_image(loaded).exposed_ports == (8888,)
    with pytest.raises(ImageNotFound):
        fake.inspect_image("real:7")


def test_an_image_in_use_is_not_removed(fake: FakeBackend):
    fake.run(RunSpec(name="a", image="base:1"))

    with pytest.raises(BackendError, match="used by"):
        fake.remove_image("base:1")
    fake.remove("a")
    fake.remove_image("base:1")
    with pytest.raises(ImageNotFound):
        fake.inspect_image("base:1")
