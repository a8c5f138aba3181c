"""Algorithm images on the real Docker Engine: a workspace builds a tiny image FROM its
environment's image (the base image, passed as WORKBENCH_ENV_IMAGE) into
docker_image/train-<name>.tar, the tar is checked and published as the algorithm's training
image, and it runs. Bad input is refused with a clear error, leaving the algorithm, its
image and the engine as they were."""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.conftest import add_environment, add_people, build_tar, make_workbench
from tests.services.test_builds import make_workspace
from workbench.algorithms.schemas import AlgorithmCreate
from workbench.backends.base import RunSpec, RunState
from workbench.backends.docker import DockerBackend
from workbench.errors import ArchiveLimitExceeded, CorruptArchive, ImageNotFound, InvalidInput
from workbench.services import Workbench
from workbench.users import Actor

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DOCKERFILE = """\
ARG WORKBENCH_ENV_IMAGE=workbench-test/not-passed:0
FROM ${{WORKBENCH_ENV_IMAGE}}
LABEL wbtest.run={run}
CMD ["python3", "-c", "print('trained')"]
"""
NO_COMMAND = "FROM scratch\nLABEL wbtest.run={run}\nCOPY hello.txt /\n"


@dataclass
class Bench:
    wb: Workbench
    bob: Actor
    workspace: int
    environment: int
    run: str  # in the images' labels and names: this test's own
    engine: docker.DockerClient

    @property
    def images(self) -> Path:
        return self.wb.workspaces.folder(self.workspace) / "docker_image"

    def project(self, name: str, dockerfile: str, **files: str) -> None:
        folder = self.wb.workspaces.folder(self.workspace) / "code" / name
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(dockerfile.format(run=self.run))
        for filename, text in files.items():
            (folder / filename).write_text(text)

    def build(self, project: str, kind: str, name: str) -> Path:
        build_tar(self.wb, self.bob, self.workspace, project, kind, name)
        return self.images / f"{kind}-{name}.tar"

    def tags(self, algorithm_id: int) -> set[str]:
        """The engine's tags that are this test's: the algorithm's and the workspace's."""
        mine = (f"workbench/algo-{algorithm_id}-", f"workbench/ws-{self.workspace}-")
        return {
            tag
            for image in self.engine.images.list()
            for tag in image.tags
            if tag.startswith(mine) and self.run in str(image.labels)
        }


@pytest.fixture
def bench(tmp_path, base_image, docker_backend: DockerBackend) -> Iterator[Bench]:
    wb = make_workbench(tmp_path / "home", backend="docker")
    people = add_people(wb)
    env_id = add_environment(
        wb,
        name="base",
        framework="python",
        image_ref=base_image,
        owner_id=people.alice.id,
        visibility="preset",
        state="ready",
    )
    engine = docker.from_env()
    bench = Bench(
        wb,
        people.bob,
        make_workspace(wb, people.bob, env_id),
        env_id,
        uuid.uuid4().hex[:10],
        engine,
    )
    try:
        yield bench
    finally:
        for algo in wb.algorithms.list(people.bob):
            if algo.state == "online":
                wb.algorithms.take_offline(people.bob, algo.id)
            wb.algorithms.delete(people.bob, algo.id)
        engine.close()
        wb.close()


def create(bench: Bench, **fields) -> int:
    spec = {"name": "tiny", "purpose": "text", "sub_purpose": "classification", **fields}
    return bench.wb.algorithms.create(bench.bob, AlgorithmCreate.model_validate(spec)).id


def test_a_workspace_tar_becomes_the_training_image_and_runs(bench: Bench, docker_backend):
    bench.project("tiny", DOCKERFILE)
    name = f"tiny-{bench.run}"
    started = time.monotonic()
    tar = bench.build("tiny", "train", name)
    built = time.monotonic() - started

    report = bench.wb.builds.inspect_tar(bench.bob, bench.workspace, tar.name)
    assert report.ok and report.naming_ok and (report.kind, report.name) == ("train", name)
    assert report.config is not None
    assert report.config.cmd == ["python3", "-c", "print('trained')"]
    assert report.config.env.get("LANG") == "C.UTF-8"  # from the environment's image
    assert report.tags == [f"workbench/ws-{bench.workspace}-train-{name}:latest"]
    assert report.layers >= 1 and report.size == tar.stat().st_size

    algo_id = create(bench)
    started = time.monotonic()
    algo = bench.wb.algorithms.image_from_workspace(
        bench.bob, algo_id, "train", bench.workspace, tar.name
    )
    loaded = time.monotonic() - started
    print(f"\nbuild + save {built:.1f} s, check + load {loaded:.1f} s, {report.size / 1e6:.0f} MB")
    image = algo.train
    assert (image.state, image.digest, image.source) == ("ready", report.digest, "workspace")
    assert image.image_ref == f"workbench/algo-{algo_id}-train:{report.digest[7:19]}"
    assert algo.environment_id == bench.environment
    assert docker_backend.inspect_image(image.image_ref).id == report.digest
    assert bench.tags(algo_id) == {image.image_ref}  # the tar's own tag went again

    run_name = f"workbench-test-algo-{bench.run}"
    try:
        info = docker_backend.run(RunSpec(name=run_name, image=image.image_ref))
        deadline = time.monotonic() + 30
        while info.state is not RunState.EXITED and time.monotonic() < deadline:
            time.sleep(0.2)
            info = docker_backend.status(run_name)
        assert (info.exit_code, list(docker_backend.logs(run_name))) == (0, ["trained"])
    finally:
        docker_backend.remove(run_name)
    assert bench.wb.algorithms.publish(bench.bob, algo_id).state == "online"

    bench.wb.algorithms.take_offline(bench.bob, algo_id)
    bench.wb.algorithms.delete(bench.bob, algo_id)
    assert bench.tags(algo_id) == set()
    with pytest.raises(ImageNotFound):
        docker_backend.inspect_image(report.digest)


def test_bad_input_changes_nothing(bench: Bench, docker_backend):
    bench.project("tiny", DOCKERFILE)
    good_tar = bench.build("tiny", "train", f"tiny-{bench.run}")
    algo_id = create(bench)
    algos = bench.wb.algorithms
    good = algos.image_from_workspace(bench.bob, algo_id, "train", bench.workspace, good_tar.name)
    engine_before = bench.tags(algo_id)
    assert engine_before == {good.train.image_ref}

    files = bench.images / "train-files.tar"
    with tarfile.open(files, "w") as archive:  # a tar, but of files: not an image
        archive.add(bench.wb.workspaces.folder(bench.workspace) / "code", arcname="code")
    shutil.copy(good_tar, bench.images / "model.tar")
    shutil.copy(good_tar, bench.images / f"predict-tiny-{bench.run}.tar")
    layerless = _without_a_layer(good_tar, bench.images / "train-layerless.tar")
    bench.project("nocmd", NO_COMMAND, **{"hello.txt": "hello\n"})
    nocmd = bench.build("nocmd", "train", f"nocmd-{bench.run}")
    nocmd_digest = bench.wb.builds.inspect_tar(bench.bob, bench.workspace, nocmd.name).digest

    cases = [
        (files.name, CorruptArchive, "no manifest.json, so it is not a docker save tar"),
        ("model.tar", InvalidInput, "its name must be train-<name>.tar"),
        (f"predict-tiny-{bench.run}.tar", InvalidInput, "its name must be train-<name>.tar"),
        (layerless.name, CorruptArchive, "names files it does not hold"),
        (nocmd.name, InvalidInput, "neither an ENTRYPOINT nor a CMD"),
    ]
    for filename, error, words in cases:
        with pytest.raises(error, match=words):
            algos.image_from_workspace(bench.bob, algo_id, "train", bench.workspace, filename)
        assert algos.get(bench.bob, algo_id) == good, filename
        assert bench.tags(algo_id) == engine_before, filename
    with pytest.raises(ImageNotFound):  # the image without a command was never loaded
        docker_backend.inspect_image(nocmd_digest)

    algos.max_image_bytes = good_tar.stat().st_size - 1
    try:
        with pytest.raises(ArchiveLimitExceeded, match="over the limit"):
            algos.image_from_workspace(bench.bob, algo_id, "train", bench.workspace, good_tar.name)
    finally:
        algos.max_image_bytes = good_tar.stat().st_size
    assert algos.get(bench.bob, algo_id) == good
    assert bench.tags(algo_id) == engine_before
    assert docker_backend.inspect_image(good.train.image_ref).id == good.train.digest

    # the same tar again is fine and changes nothing either
    again = algos.image_from_workspace(bench.bob, algo_id, "train", bench.workspace, good_tar.name)
    assert (again.train.image_ref, again.train.digest) == (good.train.image_ref, good.train.digest)
    assert bench.tags(algo_id) == engine_before


def _without_a_layer(source: Path, dest: Path) -> Path:
    """``source`` with the first layer its manifest names left out."""
    with tarfile.open(source) as archive:
        manifest = archive.extractfile("manifest.json")
        assert manifest is not None
        dropped = json.load(manifest)[0]["Layers"][0]
        with tarfile.open(dest, "w") as out:
            for member in archive.getmembers():
                if member.name != dropped:
                    out.addfile(member, archive.extractfile(member) if member.isfile() else None)
    return dest


def test_a_pull_by_reference_becomes_the_training_image(
    bench: Bench, docker_backend, image_registry
):
    """A real ``docker pull`` from the image registry ``scripts/registry`` runs."""
    bench.project("tiny", DOCKERFILE)
    tar = bench.build("tiny", "train", f"tiny-{bench.run}")
    digest = bench.wb.builds.inspect_tar(bench.bob, bench.workspace, tar.name).digest
    algo_id = create(bench)
    [loaded] = docker_backend.load_image(tar)
    docker_backend.tag_image(loaded, f"wbtest/tiny-train:{bench.run}")
    reference = image_registry.push(
        f"wbtest/tiny-train:{bench.run}", f"team/tiny-train:{bench.run}"
    )
    with pytest.raises(ImageNotFound):  # gone from the engine: the pull downloads it
        docker_backend.inspect_image(loaded)
    algo = bench.wb.algorithms.pull_image(bench.bob, algo_id, "train", reference)
    image = algo.train
    assert (image.state, image.source, image.source_detail) == ("ready", "pull", reference)
    assert image.digest == digest
    assert image.image_ref == f"workbench/algo-{algo_id}-train:{digest[7:19]}"
    assert image.config is not None
    assert image.config.cmd == ["python3", "-c", "print('trained')"]
    with pytest.raises(ImageNotFound):  # the pulled tag was not there before: taken off
        docker_backend.inspect_image(reference)
    assert bench.tags(algo_id) == {image.image_ref}
