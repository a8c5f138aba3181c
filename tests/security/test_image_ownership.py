"""Images belong to their owner (issue 15, point 2): bob uploads image tars whose tags name
the preset environment's image, or whose labels are Workbench's own, and asks to pull
references in Workbench's namespace. The preset must keep its image for every user, bob's
image is tagged under his own names, and images that could pass their containers off as
Workbench's runs never reach the engine. Before the fix, an environment upload tagged
``workbench/env-python:<tag>`` retagged the preset: every user's workspaces, imports,
conversions and replicas on that preset ran bob's image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.security.conftest import API, Tenants, finished
from workbench.backends.docker import DockerBackend
from workbench.errors import ImageNotFound

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def bobs_image(backend: DockerBackend, folder: Path, *, tags: list[str], labels: str = "") -> Path:
    """A small image of bob's (his marker file, a command) saved to a tar whose manifest
    carries ``tags`` (any names: the tar is his to write)."""
    folder.mkdir()
    marker = uuid.uuid4().hex
    (folder / "marker.txt").write_text(marker)
    (folder / "Dockerfile").write_text(
        f'FROM scratch\nCOPY marker.txt /marker.txt\n{labels}\nCMD ["/bin/sh"]\n'
    )
    tag = f"wbtest/bob-{marker[:12]}:1"
    list(backend.build_image(folder, tag))
    saved = folder / "saved.tar"
    backend.save_image(tag, saved)
    backend.remove_image(tag)
    out = folder / "image.tar"
    with tarfile.open(saved) as source, tarfile.open(out, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name == "manifest.json" and data is not None:
                manifest = json.load(data)
                manifest[0]["RepoTags"] = tags
                raw = json.dumps(manifest).encode()
                member.size = len(raw)
                data = io.BytesIO(raw)
            target.addfile(member, data)
    return out


async def bobs_environment(t: Tenants) -> int:
    code, env = await t.bob("POST", f"{API}/environments", {"name": "mine", "framework": "python"})
    assert code == 201, env
    return env["id"]


async def test_an_environment_upload_tagged_as_the_preset_leaves_the_preset_alone(
    tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path
) -> None:
    preset = docker_backend.inspect_image(tenants.python_image).id
    tar = bobs_image(docker_backend, tmp_path / "img", tags=[tenants.python_image, "corp/x:1"])
    env_id = await bobs_environment(tenants)
    code, started = await tenants.bob(
        "PUT", f"{API}/environments/{env_id}/image", raw=tar.read_bytes()
    )
    assert code == 202, started
    job = await finished(tenants.bob, started["job_id"])
    assert job["state"] == "succeeded", job["message"]
    code, env = await tenants.bob("GET", f"{API}/environments/{env_id}")
    assert env["image_ref"].startswith(f"workbench/env-{env_id}:")
    # the preset's tag still names the preset's image, for everyone
    assert docker_backend.inspect_image(tenants.python_image).id == preset
    assert docker_backend.inspect_image(env["image_ref"]).id == env["image_id"] != preset
    with pytest.raises(ImageNotFound):
        docker_backend.inspect_image("corp/x:1")
    docker_backend.remove_image(env["image_ref"])


async def test_an_algorithm_upload_tagged_as_the_preset_leaves_the_preset_alone(
    tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path
) -> None:
    preset = docker_backend.inspect_image(tenants.python_image).id
    tar = bobs_image(docker_backend, tmp_path / "img", tags=[tenants.python_image])
    code, algo = await tenants.bob(
        "POST",
        f"{API}/algorithms",
        {"name": "mine", "purpose": "image", "sub_purpose": "classification"},
    )
    assert code == 201, algo
    code, info = await tenants.bob(
        "PUT", f"{API}/algorithms/{algo['id']}/images/train", raw=tar.read_bytes()
    )
    assert code == 202, info
    job = await finished(tenants.bob, info["train"]["job_id"])
    assert job["state"] == "succeeded", job["message"]
    code, algo = await tenants.bob("GET", f"{API}/algorithms/{algo['id']}")
    train = algo["train"]
    assert train["state"] == "ready", train
    assert train["image_ref"].startswith(f"workbench/algo-{algo['id']}-train:")
    assert docker_backend.inspect_image(tenants.python_image).id == preset
    docker_backend.remove_image(train["image_ref"])


@pytest.mark.parametrize(
    "label",
    ["workbench.service=1", "workbench.managed=true", "Workbench.Replica=0"],
)
async def test_images_with_workbenchs_labels_never_reach_the_engine(
    tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path, label: str
) -> None:
    """Docker merges an image's labels into its containers' labels, where Workbench finds
    its runs: a container of this image would pass for alice's service's replica."""
    tar = bobs_image(docker_backend, tmp_path / "img", tags=["bob/app:1"], labels=f"LABEL {label}")
    with tarfile.open(tar) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    image_id = "sha256:" + manifest[0]["Config"].removesuffix(".json").split("/")[-1]
    env_id = await bobs_environment(tenants)
    code, error = await tenants.bob(
        "PUT", f"{API}/environments/{env_id}/image", raw=tar.read_bytes()
    )
    assert (code, error["error"]) == (400, "invalid_input"), error
    assert "labels starting with 'workbench.'" in error["message"]
    code, algo = await tenants.bob(
        "POST",
        f"{API}/algorithms",
        {"name": "labelled", "purpose": "image", "sub_purpose": "classification"},
    )
    code, error = await tenants.bob(
        "PUT", f"{API}/algorithms/{algo['id']}/images/predict", raw=tar.read_bytes()
    )
    assert (code, error["error"]) == (400, "invalid_input"), error
    with pytest.raises(ImageNotFound):
        docker_backend.inspect_image(image_id)


@pytest.mark.parametrize(
    "reference",
    [
        "workbench/env-python:latest",
        "docker.io/workbench/env-python:latest",
        "index.docker.io/library/workbench/base:bookworm",
    ],
)
async def test_a_pull_may_not_name_workbenchs_namespace(tenants: Tenants, reference: str) -> None:
    """A pull tags what it pulls under the reference: workbench/env-python would take the
    preset's tag for everyone."""
    env_id = await bobs_environment(tenants)
    code, error = await tenants.bob(
        "POST", f"{API}/environments/{env_id}/pull", {"reference": reference}
    )
    assert (code, error["error"]) == (400, "invalid_input"), error
    assert "Workbench's own namespace" in error["message"]


def smuggling_tar(path: Path, stolen: str, name: str = "x/../manifest.json") -> Path:
    """A tar whose checked manifest is benign (one unlabelled image) and whose member
    ``name`` is a second manifest that Docker's untar cleans into ``manifest.json``,
    overwriting the first: it tags a second, labelled image as ``stolen`` (found by review:
    the checks read only the member literally named manifest.json)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("hello")
        info.size = 3
        t.addfile(info, io.BytesIO(b"hi\n"))
    diff = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()

    def config(labels: dict[str, str]) -> bytes:
        document = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        }
        return json.dumps(document).encode()

    benign, evil = config({}), config({"workbench.service": "1"})
    b, e = hashlib.sha256(benign).hexdigest(), hashlib.sha256(evil).hexdigest()
    checked = [{"Config": f"{b}.json", "RepoTags": ["bob/app:1"], "Layers": ["l1/layer.tar"]}]
    smuggled = [
        {"Config": f"{e}.json", "RepoTags": [stolen], "Layers": ["l1/layer.tar"]},
        {"Config": f"{b}.json", "RepoTags": None, "Layers": ["l1/layer.tar"]},
    ]
    members = [
        ("manifest.json", json.dumps(checked).encode()),
        (f"{b}.json", benign),
        (f"{e}.json", evil),
        ("l1/layer.tar", layer.getvalue()),
        (name, json.dumps(smuggled).encode()),
    ]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["x/../manifest.json", "./manifest.json", "/manifest.json"])
async def test_a_second_manifest_smuggled_under_another_name_takes_no_tag(
    tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path, name: str
) -> None:
    preset = docker_backend.inspect_image(tenants.python_image).id
    tar = smuggling_tar(tmp_path / "smuggle.tar", tenants.python_image, name)
    env_id = await bobs_environment(tenants)
    code, error = await tenants.bob(
        "PUT", f"{API}/environments/{env_id}/image", raw=tar.read_bytes()
    )
    assert code == 400, error
    assert docker_backend.inspect_image(tenants.python_image).id == preset
