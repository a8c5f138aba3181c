"""One real build of envs/python on the Docker Engine, then runs of the image through the
DockerBackend: the imports a workspace needs, the user, and JupyterLab behind its token.

The build is skipped when the image already carries the same hash (EnvBuilder's cache), so
only the first run on a machine pays for it (about a minute, plus about 45 s for the base
image). Set WORKBENCH_PIP_INDEX_URL to build from another index.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from importlib import metadata

import httpx
import pytest

from tests.cleanup import SESSION, SUITE_LABEL
from tests.docker_fixtures import env_builder
from workbench.backends.base import RunSpec, RunState
from workbench.backends.docker import DockerBackend
from workbench.environments.builder import HASH_VARIABLE
from workbench.environments.definition import EnvDefinition
from workbench.errors import BuildFailed, ImageNotFound

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LABELS = {SUITE_LABEL: SESSION}  # removed at the session's end whatever happens
START_TIMEOUT_S = 90

CHECK = """
import json, os
import anywidget, jupyterlab, numpy, pandas, sklearn, workbench.client
print(json.dumps({
    "uid": os.getuid(), "cwd": os.getcwd(), "anywidget": anywidget.__version__,
    "jupyterlab": jupyterlab.__version__, "numpy": numpy.__version__,
    "client": workbench.client.WorkbenchClient.__name__,
}))
"""


@pytest.fixture(scope="module")
def python_image(python_env_image: str) -> str:
    return python_env_image


@pytest.fixture
def runs(docker_backend: DockerBackend) -> Iterator[list[str]]:
    """Run ids to remove after the test; their logs are printed when it fails."""
    started: list[str] = []
    yield started
    for run_id in started:
        print(f"--- logs of {run_id[:12]}:")
        print("\n".join(docker_backend.logs(run_id, tail=40)))
        docker_backend.remove(run_id)


def start(backend: DockerBackend, runs: list[str], image: str, **options: object) -> str:
    name = f"wb-envtest-{uuid.uuid4().hex[:8]}"
    info = backend.run(RunSpec(name=name, image=image, labels=LABELS, **options))  # type: ignore[arg-type]
    runs.append(info.id)
    return info.id


def test_the_image_carries_what_a_workspace_needs(docker_backend, python_image, runs):
    run_id = start(docker_backend, runs, python_image, command=("python", "-c", CHECK))
    deadline = time.monotonic() + 60
    while (info := docker_backend.status(run_id)).state is not RunState.EXITED:
        assert time.monotonic() < deadline, "the check did not finish in 60 s"
        time.sleep(0.2)

    output = list(docker_backend.logs(run_id))
    assert info.exit_code == 0, output
    found = json.loads(output[-1])
    assert found["uid"] == 1000
    assert found["cwd"] == "/workspace"
    assert found["jupyterlab"] == "4.6.6"
    server_minor = metadata.version("anywidget").split(".")[:2]
    assert found["anywidget"].split(".")[:2] == server_minor

    image = docker_backend.inspect_image(python_image)
    assert image.cmd == ("start-jupyterlab",)
    assert image.exposed_ports == (8888,)
    assert image.env["WORKBENCH_ENV"] == "python"
    assert len(image.env[HASH_VARIABLE]) == 64


def test_jupyterlab_answers_on_its_port_with_the_token(docker_backend, python_image, runs):
    token = secrets.token_hex(16)
    run_id = start(
        docker_backend,
        runs,
        python_image,
        env={"JUPYTER_TOKEN": token, "JUPYTER_BASE_URL": "/workspaces/7/"},
        ports={8888: 0},
    )
    port = docker_backend.status(run_id).ports[8888]
    api = f"http://127.0.0.1:{port}/workspaces/7/api"
    auth = {"Authorization": f"token {token}"}

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert docker_backend.status(run_id).state is RunState.RUNNING, "JupyterLab exited"
        try:
            status = httpx.get(f"{api}/status", headers=auth, timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"no answer on port {port} in {START_TIMEOUT_S} s"
            time.sleep(0.3)

    assert status.status_code == 200, status.text
    assert httpx.get(f"{api}/status", timeout=5).status_code == 403
    wrong = {"Authorization": "token not-the-token"}
    assert httpx.get(f"{api}/status", headers=wrong, timeout=5).status_code == 403
    lab = httpx.get(f"http://127.0.0.1:{port}/workspaces/7/lab", headers=auth, timeout=10)
    assert lab.status_code == 200
    assert "JupyterLab" in lab.text
    kernel = httpx.post(f"{api}/kernels", headers=auth, json={"name": "python3"}, timeout=30)
    assert kernel.status_code == 201, kernel.text
    assert httpx.get(f"{api}/kernels/{kernel.json()['id']}", headers=auth).status_code == 200
    assert not any("workbench_ext" in line for line in docker_backend.logs(run_id))


def test_a_failing_pip_install_is_a_build_failed_with_the_last_lines(
    docker_backend, base_image, envs_root, tmp_path
):
    text = (envs_root / "python" / "env.toml").read_text()
    broken = tmp_path / "broken" / "env.toml"
    broken.parent.mkdir()
    broken.write_text(text.replace('"python"', '"broken"', 1).replace("2.4.6", "0.0.1"))
    definition = EnvDefinition.from_toml(broken)
    tag = "workbench/env-broken:test"

    with pytest.raises(BuildFailed) as caught:
        list(env_builder(docker_backend).build(definition, tag))

    assert "last lines of the build" in caught.value.message
    assert "numpy==0.0.1" in caught.value.message
    with pytest.raises(ImageNotFound):
        docker_backend.inspect_image(tag)
