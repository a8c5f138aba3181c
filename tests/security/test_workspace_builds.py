"""A workspace's build may start only from its environment's image (found by review): the
engine resolves a Dockerfile's FROM (and COPY --from) against every image it holds, a short
id prefix included, so bob's project could build FROM alice's private algorithm image and
the build's docker save would hand him all of it in his docker_image/ folder. The check
refuses such a Dockerfile through REST before anything is built; the build context is a
copy of the server's, taken without following links (test_container_output.py has those)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import API, Tenants
from workbench.backends.docker import DockerBackend

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def alices_image(docker_backend: DockerBackend, base_image: str, tmp_path: Path) -> Iterator[str]:
    """A private image of alice's in the engine (as her algorithm's would be)."""
    context = tmp_path / "alice"
    context.mkdir()
    (context / "weights.bin").write_text("alice's trained weights")
    (context / "Dockerfile").write_text(f"FROM {base_image}\nCOPY weights.bin /weights.bin\n")
    tag = f"workbench/algo-9{uuid.uuid4().int % 1000}-predict:{uuid.uuid4().hex[:12]}"
    list(docker_backend.build_image(context, tag))
    yield docker_backend.inspect_image(tag).id
    docker_backend.remove_image(tag)


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM {short}\n",
        "FROM {tag}\n",
        "ARG BASE={short}\nFROM $BASE\n",
        "ARG WORKBENCH_ENV_IMAGE\nFROM ${{WORKBENCH_ENV_IMAGE}}\nCOPY --from={short} / /stolen\n",
        "FROM \\\n  {short}\n",
    ],
)
async def test_a_build_from_another_users_image_is_refused(
    tenants: Tenants, docker_backend: DockerBackend, alices_image: str, dockerfile: str
) -> None:
    tag = docker_backend.inspect_image(alices_image).tags[0]
    code, ws = await tenants.bob(
        "POST",
        f"{API}/workspaces",
        {
            "name": "thief",
            "purpose": "image",
            "sub_purpose": "classification",
            "environment_id": tenants.python_env,
        },
    )
    assert code == 201, ws
    project = tenants.wb.workspaces.folder(ws["id"]) / "code" / "steal"
    project.mkdir(parents=True)
    (project / "Dockerfile").write_text(dockerfile.format(short=alices_image[7:13], tag=tag))
    code, error = await tenants.bob(
        "POST",
        f"{API}/workspaces/{ws['id']}/builds",
        {"project": "steal", "kind": "predict", "name": "stolen"},
    )
    assert code == 400, error
    assert "earlier stage" in error["message"], error
    assert not list((tenants.wb.workspaces.folder(ws["id"]) / "docker_image").glob("*.tar"))
