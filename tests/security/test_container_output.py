"""Every file a run leaves is hostile input (issue 15, point 1): bob, an ordinary user, imports
model files whose load (in the import's or the conversion's container) leaves links to a
folder of the host, a named pipe, or a hard link where the server collects its results. The
server must fail the job with the reason, register nothing, and leave the host's files as
they were; before RunOutput it moved the host folder's files into bob's version (which he
then downloaded), or hung its job runner on the pipe."""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import add_algorithm, add_online_dataset
from tests.security.conftest import API, SECRET_WORDS, Tenants, finished
from workbench.backends.base import Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SIGNATURE = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]}

#: run by the pickle's load, in the container: the request's path is the script's argument
PRELUDE = "import json, os, sys\nrequest = json.load(open(sys.argv[1]))\nout = request['out_dir']\n"


class _Runs:
    """A pickle whose load runs ``code`` (then, if ``model`` is given, gives that model)."""

    def __init__(self, code: str, model: bytes = b"") -> None:
        self.code, self.model = code, model

    def __reduce__(self) -> tuple[Any, ...]:
        if not self.model:
            return (exec, (self.code,))
        expression = f"exec({self.code!r}) or __import__('pickle').loads({self.model!r})"
        return (eval, (expression,))


def hostile_pickle(code: str) -> bytes:
    return pickle.dumps(_Runs(PRELUDE + code))


def model_pickle(backend: DockerBackend, image: str, folder: Path) -> bytes:
    """A real fitted scikit-learn model, pickled by the environment's own scikit-learn."""
    folder.mkdir()
    folder.chmod(0o777)
    script = (
        "import pickle, numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "x = np.random.default_rng(0).normal(size=(40, 4)).astype('float32')\n"
        "y = (x[:, 0] > 0).astype(int)\n"
        "open('/out/model.pkl', 'wb').write(pickle.dumps(LogisticRegression().fit(x, y)))\n"
    )
    (folder / "make.py").write_text(script)
    run = backend.run(
        RunSpec(
            name=f"wbtest-secmodel-{int(time.time() * 1000)}",
            image=image,
            command=("python", "/out/make.py"),
            mounts=(Mount(folder, "/out"),),
        )
    )
    deadline = time.monotonic() + 120
    while (info := backend.status(run.id)).state == RunState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    logs = "\n".join(backend.logs(run.id))
    backend.remove(run.id)
    assert info.exit_code == 0, logs
    return (folder / "model.pkl").read_bytes()


def ok_result(native: str) -> str:
    """The line of a hostile load that writes the result of an import that went well."""
    result = {"ok": True, "message": "fine", "native": native, "signature": SIGNATURE}
    return f"json.dump({result | {'warnings': []}!r}, open(out + '/result.json', 'w'))\n"


async def bob_imports(t: Tenants, data: bytes, name: str) -> dict[str, Any]:
    params = {
        "kind": "pickle",
        "filename": f"{name}.pkl",
        "name": name,
        "environment_id": t.python_env,
        "signature": json.dumps(SIGNATURE),
    }
    code, started = await t.bob("PUT", f"{API}/models/import", raw=data, params=params)
    assert code == 202, started
    return await finished(t.bob, started["job_id"])


async def bobs_models(t: Tenants) -> list[dict[str, Any]]:
    code, models = await t.bob("GET", f"{API}/models")
    assert code == 200
    return models["items"] if isinstance(models, dict) else models


async def test_an_import_that_links_its_files_to_a_host_folder_registers_nothing(
    tenants: Tenants,
) -> None:
    """The escape found: out/files is a link to a host folder; the server followed it and
    moved that folder's files (a root-owned 0600 secret) into bob's new version."""
    secret = str(tenants.host_secret)
    code = f"os.symlink({secret!r}, out + '/files')\n" + ok_result("sklearn") + "os._exit(0)\n"
    job = await bob_imports(tenants, hostile_pickle(code), "escape-files")
    assert job["state"] == "failed"
    assert "symbolic link at out/files" in job["message"], job["message"]
    assert await bobs_models(tenants) == []
    assert tenants.secret_intact()


async def test_a_result_that_links_to_a_host_file_is_not_read(tenants: Tenants) -> None:
    """result.json as a link to a host file: the server would read (and parse, and quote in
    its errors) whatever file of the host the link names."""
    target = str(tenants.host_secret / "secret.txt")
    code = f"os.symlink({target!r}, out + '/result.json')\nos._exit(0)\n"
    job = await bob_imports(tenants, hostile_pickle(code), "escape-result")
    assert job["state"] == "failed"
    assert "symbolic link at out/result.json" in job["message"]
    assert tenants.secret_intact()
    assert await bobs_models(tenants) == []


async def test_a_named_pipe_as_the_result_does_not_hang_the_server(tenants: Tenants) -> None:
    """Opening a FIFO for reading blocks until someone writes: the job runner's thread
    would wait forever and every later job with it."""
    job = await bob_imports(
        tenants, hostile_pickle("os.mkfifo(out + '/result.json')\nos._exit(0)\n"), "fifo"
    )
    assert job["state"] == "failed"
    assert "named pipe at out/result.json" in job["message"]
    assert await bobs_models(tenants) == []


async def test_a_hard_link_among_the_made_files_is_refused(tenants: Tenants) -> None:
    """A second name for a file (one the run made elsewhere in its folder, here; with the
    kernel's protected_hardlinks off, any file of the same filesystem) is not a file of the
    run's own: hard links fail the job like links do."""
    code = (
        "os.makedirs(out + '/files')\n"
        "open(out + '/elsewhere.bin', 'wb').write(b'not a model')\n"
        "os.link(out + '/elsewhere.bin', out + '/files/model.pt')\n"
        + ok_result("torchscript")
        + "os._exit(0)\n"
    )
    job = await bob_imports(tenants, hostile_pickle(code), "hardlink")
    assert job["state"] == "failed"
    assert "hard link at out/files/model.pt" in job["message"], job["message"]
    assert await bobs_models(tenants) == []


async def test_a_conversion_that_links_its_format_to_a_host_folder_takes_nothing(
    tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path
) -> None:
    """The same escape through a conversion: the model loads normally when imported, and
    when converted leaves out/onnx as a link to the host folder with a "verified" result.
    The server moved the link into the store, and the format's download zipped the host's
    files through it."""
    model = model_pickle(docker_backend, tenants.python_image, tmp_path / "made")
    code = (
        "if 'formats' in request:\n"
        "    __import__('shutil').rmtree(out + '/onnx', ignore_errors=True)\n"
        f"    os.symlink({str(tenants.host_secret)!r}, out + '/onnx')\n"
        "    json.dump({'formats': {'onnx': {'state': 'verified', 'file': 'secret.txt', "
        "'message': 'ok', 'check': {}}}}, open(out + '/result.json', 'w'))\n"
        "    os._exit(0)\n"
    )
    job = await bob_imports(tenants, pickle.dumps(_Runs(PRELUDE + code, model)), "sleeper")
    assert job["state"] == "succeeded", job["message"]
    version_id = job["result"]["version_id"]
    status, started = await tenants.bob(
        "POST", f"{API}/model-versions/{version_id}/conversions", {"formats": ["onnx"]}
    )
    assert status == 202, started
    conversion = await finished(tenants.bob, started["job_id"])
    assert conversion["state"] == "failed"
    assert "symbolic link at out/onnx" in conversion["message"], conversion["message"]
    status, formats = await tenants.bob("GET", f"{API}/model-versions/{version_id}/formats")
    assert status == 200
    onnx = [f for f in formats if f["format"] == "onnx"]
    assert all(f["state"] != "verified" for f in onnx), onnx
    status, _ = await tenants.bob(
        "GET", f"{API}/model-versions/{version_id}/download", params={"format": "onnx"}
    )
    assert status == 404
    # the native download holds the uploaded pickle alone
    status, body = await tenants.bob("GET", f"{API}/model-versions/{version_id}/download")
    assert status == 200
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert names == ["sleeper.pkl"], names
    assert tenants.secret_intact()


# --- a training run ------------------------------------------------------------------------

#: bob's training code: $MODEL_DIR becomes a link to a folder of the host (or, with
#: METRICS_LINK, the metrics file a link to a host file), then it exits 0
TRAIN_PY = r"""
import os, shutil
model = os.environ["MODEL_DIR"]
if os.environ.get("METRICS_LINK"):
    os.symlink(os.environ["TARGET"] + "/secret.txt", os.environ["METRICS_FILE"])
    os.makedirs(model, exist_ok=True)
    open(model + "/weights.bin", "wb").write(b"real weights")
else:
    shutil.rmtree(model)
    os.symlink(os.environ["TARGET"], model)
print("done")
"""


@pytest.fixture
def escaping_algorithm(tenants: Tenants, docker_backend: DockerBackend, tmp_path: Path) -> int:
    """Bob's online algorithm whose training image runs TRAIN_PY (built FROM the python
    environment; how its image came is not the attack: what it leaves is)."""
    context = tmp_path / "train-image"
    context.mkdir()
    (context / "train.py").write_text(TRAIN_PY)
    (context / "Dockerfile").write_text(
        'ARG BASE\nFROM ${BASE}\nCOPY train.py /app/train.py\nCMD ["python", "/app/train.py"]\n'
    )
    tag = f"wbtest/escape-train:{tmp_path.name.lower()[-12:]}"
    list(docker_backend.build_image(context, tag, build_args={"BASE": tenants.python_image}))
    params = {
        "TARGET": {"type": "str", "default": str(tenants.host_secret)},
        "METRICS_LINK": {"type": "str", "default": ""},
    }
    return add_algorithm(
        tenants.wb,
        tenants.actors["bob"].id,
        {"image_ref": tag, "env": params},
        name="escape",
        visibility="private",
    )


async def bob_trains(
    t: Tenants, algorithm_id: int, tmp_path: Path, **params: str
) -> dict[str, Any]:
    dataset = add_online_dataset(t.wb, t.actors["alice"], tmp_path, {"0": 4, "1": 4})
    code, task = await t.bob(
        "POST",
        f"{API}/training/tasks",
        {
            "name": "escape",
            "purpose": "image",
            "sub_purpose": "classification",
            "algorithm_id": algorithm_id,
            "dataset_id": dataset,
            "memory_mb": 512,
            "parameters": params,
            "start": True,
        },
    )
    assert code == 201, task
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    while True:
        code, task = await t.bob("GET", f"{API}/training/tasks/{task['id']}")
        if task["state"] in ("succeeded", "failed", "stopped"):
            return task
        assert loop.time() < deadline, task
        await asyncio.sleep(0.3)


async def test_a_training_run_that_links_its_model_folder_to_the_host_registers_nothing(
    tenants: Tenants, escaping_algorithm: int, tmp_path: Path
) -> None:
    """$MODEL_DIR as a link to a host folder: the server renamed the link into the store as
    the version's folder, and the version's download zipped the host's files through it."""
    task = await bob_trains(tenants, escaping_algorithm, tmp_path)
    assert task["state"] == "failed", task
    assert "symbolic link at model" in task["state_reason"], task["state_reason"]
    assert await bobs_models(tenants) == []
    assert tenants.secret_intact()


async def test_a_metrics_file_linked_to_a_host_file_is_not_read(
    tenants: Tenants, escaping_algorithm: int, tmp_path: Path
) -> None:
    """metrics.jsonl as a link to a host file: its lines would be stored as the run's
    metrics, which bob reads. The run's model is still taken; the metrics are not."""
    task = await bob_trains(tenants, escaping_algorithm, tmp_path, METRICS_LINK="1")
    assert task["state"] == "succeeded", task
    code, metrics = await tenants.bob("GET", f"{API}/training/tasks/{task['id']}/metrics")
    assert code == 200
    assert SECRET_WORDS not in json.dumps(metrics)
    assert tenants.secret_intact()
