"""Hostile model files and hostile choices around them, imported as bob (an ordinary second
user) through a real server on the real engine: skops files that would call a function
when the model runs are refused by the check, naming what they need and what to do, with
nothing registered; an ordinary pipeline still imports. An import never runs in another
user's public environment unasked, and runs the image id it was given, not a tag. Without
Docker, nothing falls back to running files unboxed: the server answers 503, and the local
backend, chosen on purpose, refuses the kinds that load a user's files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import add_environment, add_people, make_workbench, server_config
from tests.integration.test_model_import import make_files
from tests.rest.conftest import Api
from tests.security.conftest import API, finished
from tests.server import live_server
from tests.services.test_conversions import version_of
from workbench.backends.docker import DockerBackend
from workbench.enums import Role
from workbench.errors import Unsupported
from workbench.jobs.states import JobState
from workbench.models.schemas import ModelImport
from workbench.registry.models import Job
from workbench.services import Workbench

#: each file is a fitted pipeline whose first step's ``func`` (called on every predict) is
#: what the case names; the loaded model would run it on the caller's inputs
MAKE = """
import functools, json, operator, os, zipfile
import numpy as np, skops.io
import sklearn.utils._testing as testing
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

x, y = load_iris(return_X_y=True)
x = x.astype(np.float32)
skops.io.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y),
              "/out/ordinary.skops")
skops.io.dump(RandomForestClassifier(4, random_state=0).fit(x, y), "/out/forest.skops")
fitted = LogisticRegression(max_iter=500).fit(x, y)
funcs = {
    "eval": eval,
    "system": os.system,
    "numpy-load": np.load,
    "sklearn-testing": testing.assert_run_python_script_without_output,
    "partial": functools.partial(np.add, 1),
    "attrgetter": operator.attrgetter("T"),
    "method": fitted.predict_proba,
}
for name, func in funcs.items():
    model = make_pipeline(FunctionTransformer(), LogisticRegression(max_iter=500)).fit(x, y)
    model.steps[0][1].func = func
    skops.io.dump(model, f"/out/{name}.skops")

# skops records os.system under its defining module (posix): name it as an attacker would
with zipfile.ZipFile("/out/system.skops") as archive:
    members = {n: archive.read(n) for n in archive.namelist()}
schema = json.loads(members["schema.json"])
def rename(node):
    if isinstance(node, dict):
        if node.get("__module__") == "posix" and node.get("__class__") == "system":
            node["__module__"] = "os"
        for value in node.values():
            rename(value)
    elif isinstance(node, list):
        for value in node:
            rename(value)
rename(schema)
members["schema.json"] = json.dumps(schema).encode()
with zipfile.ZipFile("/out/system.skops", "w") as archive:
    for n, data in members.items():
        archive.writestr(n, data)
"""

#: the attack's file -> the type the refusal names
HOSTILE = {
    "eval": "builtins.eval",
    "system": "os.system",
    "numpy-load": "numpy.load",
    "sklearn-testing": "sklearn.utils._testing.assert_run_python_script_without_output",
    "partial": "functools.partial",
    "attrgetter": "operator.attrgetter",
    "method": "sklearn.linear_model._logistic.LogisticRegression.predict_proba",
}


@pytest.fixture(scope="module")
def skops_files(
    tmp_path_factory: pytest.TempPathFactory, docker_backend: DockerBackend, python_env_image: str
) -> Path:
    """The ordinary and the hostile skops files, made by skops itself in the python image."""
    folder = tmp_path_factory.mktemp("skops")
    make_files(docker_backend, python_env_image, MAKE, folder)
    return folder


@pytest.fixture
def jp_server_config(tmp_path: Path) -> Any:
    return server_config(tmp_path / "wbhome", "docker")


@dataclass
class Server:
    wb: Workbench
    bob: Api
    alice: Api
    preset: int


@pytest.fixture
def server(jp_serverapp, jp_fetch, python_env_image: str) -> Iterator[Server]:
    """A real server on the docker backend: alice (admin), bob (member), the python
    environment image as a preset."""
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    wb.jobs.runner.interval = 0.2
    wb.start()
    apis = {}
    for name, role in (("alice", Role.ADMIN), ("bob", Role.MEMBER)):
        info = wb.users.add_user(name, role=role)
        apis[name] = Api(jp_fetch, wb.users.create_token(info.id, "t").secret, name)
    alice = wb.users.find("alice")
    assert alice is not None
    preset = add_environment(
        wb,
        name="python",
        framework="python",
        image_ref=python_env_image,
        owner_id=alice.id,
        visibility="preset",
        state="ready",
    )
    yield Server(wb, apis["bob"], apis["alice"], preset)
    wb.jobs.runner.stop()


async def start_import(api: Api, path: Path, **params: Any) -> tuple[int, Any]:
    query = {"kind": "skops", "filename": path.name, "name": path.stem, **params}
    return await api("PUT", f"{API}/models/import", raw=path.read_bytes(), params=query)


async def registered(api: Api) -> list[dict[str, Any]]:
    code, models = await api("GET", f"{API}/models", params={"mine": "true"})
    assert code == 200, models
    return models


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_a_skops_file_that_needs_a_function_is_refused(
    server: Server, skops_files: Path, attack: str
):
    """The attack: a skops file whose pipeline holds a callable (a function, a method, a
    partial, an operator getter) that the model calls on every prediction. The old check
    trusted any sklearn.*/numpy.*/scipy.* name: numpy.load, scikit-learn's own helpers and
    an estimator's methods went through."""
    code, started = await start_import(server.bob, skops_files / f"{attack}.skops")
    assert code == 202, started
    job = await finished(server.bob, started["job_id"])
    assert job["state"] == "failed", job
    message = job["message"]
    assert HOSTILE[attack] in message, message
    assert "never functions or methods" in message and "ONNX" in message
    assert "nothing was registered" in message
    assert await registered(server.bob) == []
    imports = server.wb.store.path("models/imports")
    assert not imports.exists() or not any(imports.iterdir())


@pytest.mark.docker
@pytest.mark.slow
async def test_ordinary_skops_models_import_in_a_preset_pinned_by_id(
    server: Server, skops_files: Path, docker_backend: DockerBackend, python_env_image: str
):
    """The attack: alice makes her own environment public, newer than the preset and of the
    same framework, so that the imports of everyone who names none run in her image. Bob's
    import takes the preset; its job runs the preset's image id, not a tag."""
    docker_backend.tag_image(python_env_image, "wbtest/alices-python:1")
    alice = server.wb.users.find("alice")
    assert alice is not None
    alices = add_environment(
        server.wb,
        name="alices-python",
        framework="python",
        image_ref="wbtest/alices-python:1",
        owner_id=alice.id,
        visibility="public",
        state="ready",
    )
    assert alices > server.preset  # newer: the old choice took it
    image_id = docker_backend.inspect_image(python_env_image).id
    for name in ("ordinary", "forest"):
        code, started = await start_import(server.bob, skops_files / f"{name}.skops")
        assert code == 202, started
        assert started["environment_id"] == server.preset
        with server.wb.registry.session() as s:
            spec = s.get_one(Job, started["job_id"]).spec
        assert spec["image"] == image_id and spec["image"].startswith("sha256:")
        job = await finished(server.bob, started["job_id"])
        assert job["state"] == "succeeded", job
    assert sorted(m["name"] for m in await registered(server.bob)) == ["forest", "ordinary"]

    # named on purpose, a public environment is bob's choice to make
    code, started = await start_import(
        server.bob, skops_files / "ordinary.skops", environment_id=alices
    )
    assert code == 202 and started["environment_id"] == alices, started
    assert (await finished(server.bob, started["job_id"]))["state"] == "succeeded"


@pytest.mark.slow
def test_auto_without_docker_answers_503_and_never_runs_unboxed(tmp_path: Path):
    """The attack: Docker is down (or made to look down) when the server needs a backend;
    the old `auto` fell back to the local backend, and imports ran as the server's own
    processes. Now the server starts, and what needs runs answers 503 saying what to do."""
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "WORKBENCH_BACKEND": "auto"}
    with live_server(tmp_path, env=env) as live:
        headers = {"Authorization": f"token {live.jupyter_token}"}
        url = f"{live.url}{API}/models/import"
        params = {"kind": "skops", "filename": "m.skops", "name": "m"}
        answer = httpx.put(url, params=params, content=b"PK\x03\x04", headers=headers)
        assert answer.status_code == 503, answer.text
        error = answer.json()
        assert error["error"] == "backend_unavailable"
        assert (
            "scripts/docker" in error["message"] and "WORKBENCH_BACKEND=local" in error["message"]
        )
        assert httpx.get(f"{live.url}{API}/models", headers=headers).status_code == 200
        assert not (live.home / "local-backend").exists()


def test_the_local_backend_refuses_imports_and_conversions(tmp_path: Path):
    """Single-user mode (the local backend, chosen by name): a model import or conversion
    would load a file as the server's own process, so both refuse, saying why."""
    wb = make_workbench(tmp_path / "home", backend="local")
    try:
        people = add_people(wb)
        request = ModelImport(kind="skops", filename="m.skops", name="m")
        with pytest.raises(Unsupported) as refused:
            wb.model_imports.check_import(people.alice, request)
        assert refused.value.status == 501
        assert "docker backend" in refused.value.message
        version = version_of(wb, people.bob, tmp_path)
        wb.jobs.runner.interval = 0.02
        wb.jobs.runner.start()
        started = wb.conversions.convert(people.bob, version)
        job = wb.jobs.wait(started.job_id, timeout=30)
        assert job.state == JobState.FAILED and "docker backend" in job.message
        assert wb.backend().list() == []  # nothing was started
        assert job.result["error"] == "backend_unsupported"
    finally:
        wb.close()
