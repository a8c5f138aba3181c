"""Models trained elsewhere, imported for real: each file is made by its framework in an
environment image (as a modeler's own machine would), uploaded, checked in a container of
an environment image, registered with the signature the check found, then converted (each
format verified) and benchmarked. Files that are not what they claim are refused, at once
where their first bytes tell, else by the check, and nothing is registered."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import add_people, add_preset_environments, make_workbench
from workbench.backends.base import Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend
from workbench.errors import InvalidInput, WorkbenchError
from workbench.jobs.states import JobState
from workbench.models.schemas import (
    BenchmarkRequest,
    ModelFilter,
    ModelImport,
    ModelVersionInfo,
)
from workbench.services import Workbench
from workbench.store import StoredFile
from workbench.users import Actor

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: a 4-feature classifier (a small MLP on the iris measurements) and an 8x8 image CNN
IRIS = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]}
IMAGE = {"inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, 8, 8]}]}

MAKE_SKLEARN = """
import joblib, numpy as np, skops.io
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
x, y = load_iris(return_X_y=True)
x = x.astype(np.float32)
model = MLPClassifier((32,), max_iter=2000, random_state=0).fit(x, y)
skops.io.dump(model, "/out/iris.skops")
joblib.dump(model, "/out/iris.joblib")
onx = to_onnx(
    model,
    initial_types=[("input", FloatTensorType([None, 4]))],
    options={id(model): {"zipmap": False}},
    target_opset=17,
)
open("/out/iris.onnx", "wb").write(onx.SerializeToString())
held = np.random.default_rng(0).permutation(len(x))[:60]
np.savez("/out/samples.npz", input=x[held], labels=y[held])
"""

MAKE_WIDE = """
import onnx
from onnx import TensorProto, helper
# x [N, 64] -> tiled to [N, 64 x 100000] (25.6 MB a sample) -> summed to [N, 1]: memory
# grows with the batch size, the weights stay tiny
nodes = [
    helper.make_node("Tile", ["x", "repeats"], ["wide"]),
    helper.make_node("ReduceSum", ["wide"], ["y"], keepdims=1),
]
graph = helper.make_graph(
    nodes,
    "wide",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
    initializer=[helper.make_tensor("repeats", TensorProto.INT64, [2], [1, 100000])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(model)
onnx.save(model, "/out/wide.onnx")
"""

MAKE_TORCH = """
import torch
from torch import nn
import sys
sys.path.insert(0, "/out")
from net import Net
torch.manual_seed(0)
model = Net().eval()
torch.save(model.state_dict(), "/out/weights.pt")
torch.jit.save(torch.jit.script(model), "/out/net.pt")
"""

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))
"""

MAKE_KERAS = """
import numpy as np, keras
keras.utils.set_random_seed(0)
inputs = keras.Input((8, 8, 1), name="image")
x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
x = keras.layers.Flatten()(x)
outputs = keras.layers.Dense(3, name="scores")(x)
model = keras.Model(inputs, outputs)
model.save("/out/cnn.keras")
model.export("/out/savedmodel", format="tf_saved_model", verbose=False)
"""


@dataclass
class Setup:
    wb: Workbench
    bob: Actor
    alice: Actor
    files: Path
    environments: dict[str, int]


def make_files(backend: DockerBackend, image: str, script: str, folder: Path) -> None:
    """Run ``script`` in ``image`` with ``folder`` at /out (a modeler's own training)."""
    (folder / "make.py").write_text(script)
    folder.chmod(0o777)
    run = backend.run(
        RunSpec(
            name=f"wbtest-make-{int(time.time() * 1000)}",
            image=image,
            command=("python", "/out/make.py"),
            mounts=(Mount(folder, "/out"),),
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    )
    deadline = time.monotonic() + 600
    while (info := backend.status(run.id)).state == RunState.RUNNING:
        assert time.monotonic() < deadline, "making the model files timed out"
        time.sleep(0.5)
    logs = "\n".join(backend.logs(run.id))
    backend.remove(run.id)
    assert info.exit_code == 0, logs


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    docker_backend: DockerBackend,
    python_env_image: str,
    pytorch_env_image: str,
    tensorflow_env_image: str,
) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("imports")
    files = home / "files"
    files.mkdir()
    (files / "net.py").write_text(NET)
    make_files(docker_backend, python_env_image, MAKE_SKLEARN, files)
    make_files(docker_backend, python_env_image, MAKE_WIDE, files)
    make_files(docker_backend, pytorch_env_image, MAKE_TORCH, files)
    make_files(docker_backend, tensorflow_env_image, MAKE_KERAS, files)
    wb = make_workbench(home / "home", backend="docker")
    wb.jobs.runner.interval = 0.2
    wb.start()
    people = add_people(wb)
    environments = add_preset_environments(
        wb,
        people.alice.id,
        {
            "python": python_env_image,
            "pytorch": pytorch_env_image,
            "tensorflow": tensorflow_env_image,
        },
    )
    yield Setup(wb, people.bob, people.alice, files, environments)
    wb.close()


def upload(setup: Setup, path: Path) -> StoredFile:
    """``path`` as a finished upload (what the REST handler hands the service)."""
    pending = setup.wb.store.begin_upload(1 << 30, path.stat().st_size)
    pending.write(path.read_bytes())
    return pending.finish()


def start(setup: Setup, path: Path, kind: str, actor: Actor | None = None, **fields: Any) -> int:
    """Bob's (or ``actor``'s) import of ``path``; its job."""
    fields.setdefault("name", f"imported-{kind}")
    request = ModelImport(kind=kind, filename=fields.pop("filename", path.name), **fields)
    return setup.wb.model_imports.import_model(
        actor or setup.bob, upload(setup, path), request
    ).job_id


def imported(
    setup: Setup, path: Path, kind: str, actor: Actor | None = None, **fields: Any
) -> ModelVersionInfo:
    actor = actor or setup.bob
    job = setup.wb.jobs.wait(start(setup, path, kind, actor, **fields), timeout=600)
    log = setup.wb.jobs.tail(actor, job.id).text[-3000:]
    assert job.state == JobState.SUCCEEDED, log
    return setup.wb.models.get_version(actor, job.result["version_id"])


def refused_by_check(setup: Setup, path: Path, kind: str, **fields: Any) -> str:
    """The import's job fails with why; nothing is registered and the upload is gone."""
    before = len(setup.wb.models.list(setup.bob, ModelFilter(mine=True)))
    job = setup.wb.jobs.wait(start(setup, path, kind, **fields), timeout=600)
    assert job.state == JobState.FAILED
    assert "nothing was registered" in job.message
    assert len(setup.wb.models.list(setup.bob, ModelFilter(mine=True))) == before
    assert not any((setup.wb.store.path("models/imports")).iterdir())
    return job.message


def convert(setup: Setup, version: int) -> dict[str, Any]:
    started = setup.wb.conversions.convert(setup.bob, version)
    job = setup.wb.jobs.wait(started.job_id, timeout=600)
    print(f"conversion of version {version}: {job.message}")
    formats = {f.format: f for f in setup.wb.conversions.formats(setup.bob, version)}
    for fmt in formats.values():
        print(f"  {fmt.format:<15} {fmt.state:<10} {fmt.message}")
    return formats


def zipped(folder: Path, dest: Path, names: dict[str, Path]) -> Path:
    with zipfile.ZipFile(dest, "w") as archive:
        for name, path in names.items():
            archive.write(path, name)
    return dest


def test_an_onnx_file_with_held_out_samples_is_imported_converted_and_checked_on_them(
    setup: Setup, tmp_path: Path
):
    archive = zipped(
        setup.files,
        tmp_path / "iris-onnx.zip",
        {"iris.onnx": setup.files / "iris.onnx", "samples.npz": setup.files / "samples.npz"},
    )
    version = imported(setup, archive, "onnx", name="iris", description="from skl2onnx")
    assert version.framework == "onnx" and version.source["import"] == "onnx"
    assert version.environment_id == setup.environments["python"]  # chosen by framework
    assert version.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]
    assert [o["name"] for o in version.signature["outputs"]] == ["label", "probabilities"]
    formats = convert(setup, version.id)
    for fmt in ("onnx-optimized", "onnx-int8"):
        assert formats[fmt].state == "verified", formats[fmt].message
        check = formats[fmt].check
        assert check["inputs"] == "held-out" and check["samples"] == 60
        assert check["evaluation"]["native"] > 0.9
    assert formats["onnx-int8"].check["evaluation"]["allowed_drop"] > 0


def test_scikit_learn_from_skops_and_from_a_pickle_with_a_warning(setup: Setup):
    skops = imported(setup, setup.files / "iris.skops", "skops", name="iris-skops")
    assert skops.framework == "sklearn" and skops.source["warnings"] == []
    assert skops.signature["inputs"] == IRIS["inputs"]
    pickled = imported(setup, setup.files / "iris.joblib", "pickle", name="iris-skops")
    assert pickled.model_id == skops.model_id and pickled.version == 2  # the same model
    assert any("runs any code" in w for w in pickled.source["warnings"])
    formats = convert(setup, skops.id)
    assert formats["onnx"].state == "verified", formats["onnx"].message


def test_torchscript_and_a_state_dict_with_its_code(setup: Setup, tmp_path: Path):
    with pytest.raises(InvalidInput) as no_signature:
        start(setup, setup.files / "net.pt", "torchscript")
    assert "give a signature" in no_signature.value.message
    scripted = imported(setup, setup.files / "net.pt", "torchscript", signature=IMAGE)
    assert scripted.framework == "pytorch" and scripted.signature["outputs"][0]["shape"] == [-1, 3]

    # a state dict is not TorchScript: told at once, from the file's entries
    with pytest.raises(InvalidInput) as state_dict:
        start(setup, setup.files / "weights.pt", "torchscript", signature=IMAGE)
    assert "import it as kind pytorch" in state_dict.value.message.replace("Import", "import")

    archive = zipped(
        setup.files,
        tmp_path / "net-state.zip",
        {"net.py": setup.files / "net.py", "weights.pt": setup.files / "weights.pt"},
    )
    version = imported(setup, archive, "pytorch", entry="net:Net", signature=IMAGE)
    folder = setup.wb.model_versions.files(version.id)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.p*")) == [
        "model.pt",
        "source/net.py",
        "source/weights.pt",
    ]
    formats = convert(setup, version.id)
    assert formats["onnx"].state == "verified", formats["onnx"].message
    assert formats["onnx"].check["max_abs_error"] < 1e-4

    # the wrong class for the weights: the check says which keys do not fit
    (tmp_path / "other.py").write_text(NET.replace("nn.Linear(4 * 8 * 8, 3)", "nn.Linear(256, 5)"))
    wrong = zipped(
        setup.files,
        tmp_path / "wrong.zip",
        {"other.py": tmp_path / "other.py", "weights.pt": setup.files / "weights.pt"},
    )
    message = refused_by_check(setup, wrong, "pytorch", entry="other:Net", signature=IMAGE)
    assert "does not fit Net" in message and "size mismatch" in message


def test_a_keras_model_and_its_savedmodel_convert_verify_and_benchmark(
    setup: Setup, tmp_path: Path
):
    keras = imported(setup, setup.files / "cnn.keras", "keras", name="keras-cnn")
    assert keras.framework == "tensorflow"
    assert keras.environment_id == setup.environments["tensorflow"]
    assert keras.signature["inputs"] == [
        {"name": "image", "dtype": "float32", "shape": [-1, 8, 8, 1]}
    ]
    formats = convert(setup, keras.id)
    for fmt in ("savedmodel", "onnx", "onnx-optimized", "onnx-int8"):
        assert formats[fmt].state == "verified", (fmt, formats[fmt].message)
    assert formats["onnx"].check["max_abs_error"] < 1e-4
    started = setup.wb.conversions.benchmark(
        setup.bob, keras.id, BenchmarkRequest(max_batch=32, window_s=0.2, point_cap_s=3)
    )
    job = setup.wb.jobs.wait(started.job_id, timeout=900)
    assert job.state == JobState.SUCCEEDED, setup.wb.jobs.tail(setup.bob, job.id).text[-3000:]
    report = setup.wb.conversions.benchmarks(setup.bob, keras.id)
    measured = {(p.format, p.batch_size) for p in report.points}
    wanted = ("native", "savedmodel", "onnx", "onnx-optimized", "onnx-int8")
    assert measured == {(f, b) for f in wanted for b in (1, 2, 4, 8, 16, 32)}, job.message
    assert report.software.get("tensorflow-cpu") and report.software.get("keras")
    for p in report.points:
        print(f"  {p.format:<15} {p.batch_size:>3} p50 {p.p50_ms:8.3f} ms {p.throughput:9.0f}/s")

    # the SavedModel folder, imported from an archive
    buffer = tmp_path / "savedmodel.tar.gz"
    with tarfile.open(buffer, "w:gz") as tar:
        tar.add(setup.files / "savedmodel", arcname="savedmodel")
    saved = imported(setup, buffer, "savedmodel", name="keras-cnn")
    assert saved.model_id == keras.model_id and saved.signature["inputs"][0]["name"] == "image"
    formats = convert(setup, saved.id)
    assert formats["onnx"].state == "verified", formats["onnx"].message


def test_files_that_are_not_what_they_claim(setup: Setup, tmp_path: Path):
    models_before = len(setup.wb.models.list(setup.bob, ModelFilter(mine=True)))
    text = tmp_path / "notes.onnx"
    text.write_text("not a model at all")
    with pytest.raises(InvalidInput) as not_onnx:
        start(setup, text, "onnx")
    assert "is not an ONNX model" in not_onnx.value.message
    with pytest.raises(InvalidInput) as misnamed:
        start(setup, setup.files / "iris.skops", "keras")
    assert "is not named as a keras file" in misnamed.value.message
    with pytest.raises(InvalidInput) as unknown:
        start(setup, setup.files / "iris.skops", "caffe")
    assert "is not a kind of model Workbench imports" in unknown.value.message
    with pytest.raises(InvalidInput) as folder_kind:
        start(setup, setup.files / "weights.pt", "pytorch", entry="net:Net", signature=IMAGE)
    assert "upload it as an archive" in folder_kind.value.message

    # an archive that climbs out of its folder is refused before anything is written
    climbing = tmp_path / "climb.zip"
    with zipfile.ZipFile(climbing, "w") as archive:
        archive.writestr("../../evil.onnx", b"\x08\x07")
    with pytest.raises(WorkbenchError) as unsafe:
        start(setup, climbing, "onnx")
    assert unsafe.value.status == 400 and "evil.onnx" in unsafe.value.message
    assert not (tmp_path / "evil.onnx").exists()

    # protocol-buffer bytes that are no ONNX model pass the first look, not the check
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    assert "is not a valid ONNX model" in refused_by_check(setup, garbage, "onnx")
    # a Keras file whose model does not load: told by the check
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Nothing"}))
        archive.writestr("metadata.json", "{}")
    assert "is not a Keras model file" in refused_by_check(setup, broken, "keras")
    # an ONNX model with held-out samples that do not fit its signature
    bad_samples = io.BytesIO()
    np.savez(bad_samples, x=np.zeros((2, 4), np.float32))
    archive_path = tmp_path / "bad-samples.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.write(setup.files / "iris.onnx", "iris.onnx")
        archive.writestr("samples.npz", bad_samples.getvalue())
    assert "samples.npz does not fit" in refused_by_check(setup, archive_path, "onnx")

    # someone else's private model is not a target: bob does not even see alice's
    alices = imported(setup, setup.files / "iris.onnx", "onnx", setup.alice, name="alices")
    with pytest.raises(WorkbenchError) as not_yours:
        start(setup, setup.files / "iris.onnx", "onnx", model_id=alices.model_id)
    assert not_yours.value.status == 404
    assert len(setup.wb.models.list(setup.bob, ModelFilter(mine=True))) == models_before


def test_a_benchmark_that_runs_out_of_memory_keeps_the_smaller_sizes(setup: Setup):
    wide = imported(setup, setup.files / "wide.onnx", "onnx", name="wide")
    assert wide.signature["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 64]}]
    memory = setup.wb.conversions.limits.memory_mb
    setup.wb.conversions.limits.memory_mb = 384  # 25.6 MB a sample: batch 16 cannot fit
    try:
        request = BenchmarkRequest(formats=[], max_batch=64, window_s=0.1, point_cap_s=1)
        started = setup.wb.conversions.benchmark(setup.bob, wide.id, request)
        job = setup.wb.jobs.wait(started.job_id, timeout=600)
    finally:
        setup.wb.conversions.limits.memory_mb = memory
    log = setup.wb.jobs.tail(setup.bob, job.id).text[-3000:]
    print(job.message)
    assert job.state == JobState.SUCCEEDED, log  # the sizes that fit are kept
    report = setup.wb.conversions.benchmarks(setup.bob, wide.id)
    sizes = sorted(p.batch_size for p in report.points)
    assert sizes[:3] == [1, 2, 4] and sizes[-1] < 16, (sizes, job.message)
    stopped = job.result["notes"]["native"]
    assert f"batch size {sizes[-1] * 2}" in stopped, stopped
    assert "out of memory" in stopped or "failed" in stopped
    assert "the smaller sizes' results are kept" in stopped or "failed" in stopped
