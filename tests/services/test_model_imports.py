"""Imports as jobs on the fake backend (the check itself runs for real, in the environment
images, in tests/integration/test_model_import.py): what is refused from the request and
the file's first bytes before a job is queued, the container the job starts, how its
result becomes a version (a state dict's TorchScript with the upload under ``source/``),
and the ends that are not a result, which register nothing and delete the upload."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from tests.conftest import add_environment, add_people, make_workbench
from tests.services.test_conversions import job_folder_of, running_run
from workbench.errors import InvalidInput, NotFound, PermissionDenied, UnsafeArchive
from workbench.jobs.states import JobState
from workbench.models.schemas import ModelFilter, ModelImport
from workbench.services import Workbench
from workbench.store import StoredFile
from workbench.users import Actor

IMAGE = "wbtest/env-torch:1"
SIGNATURE = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]}
FOUND = {**SIGNATURE, "outputs": [{"name": "output_0", "dtype": "float32", "shape": [-1, 2]}]}


@pytest.fixture
def wb(tmp_path, registry_url):
    workbench = make_workbench(tmp_path / "home", registry_url, backend="fake")
    workbench.backend().add_image(IMAGE, cmd=["python"])
    workbench.backend().script(IMAGE, ["checking"], exit_code=None)  # runs until told
    workbench.jobs.runner.interval = 0.02
    workbench.jobs.runner.start()
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def env_id(wb, people):
    """A preset pytorch environment with an image (the one imports default to)."""
    return add_environment(
        wb,
        name="torch",
        framework="pytorch",
        image_ref=IMAGE,
        owner_id=people.alice.id,
        visibility="preset",
    )


def stored(wb: Workbench, data: bytes) -> StoredFile:
    pending = wb.store.begin_upload(1 << 20, len(data))
    pending.write(data)
    return pending.finish()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


TORCHSCRIPT = {"net/code/__torch__.py": b"class Net: ...", "net/data.pkl": b"\x80\x02."}
STATE_DICT = {"weights/data.pkl": b"\x80\x02.", "weights/data/0": b"\0" * 16}


def start(wb: Workbench, actor: Actor, data: bytes, **fields: Any) -> int:
    fields.setdefault("name", "imported")
    fields.setdefault("kind", "torchscript")
    fields.setdefault("filename", "net.pt")
    if fields["kind"] in ("torchscript", "pytorch"):
        fields.setdefault("signature", SIGNATURE)
    return wb.model_imports.import_model(actor, stored(wb, data), ModelImport(**fields)).job_id


def refused(wb: Workbench, actor: Actor, data: bytes, **fields: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        start(wb, actor, data, **fields)
    assert wb.jobs.list(actor) == []
    assert not wb.store.exists("models/imports") or not any(
        wb.store.path("models/imports").iterdir()
    )
    return caught.value.message


def finish(wb: Workbench, job_id: int, result: dict[str, Any], *, scripted: bool = False) -> Any:
    """Play the check's container: write its result (and a state dict's TorchScript)."""
    run = running_run(wb, job_id)
    folder = job_folder_of(wb, run)
    if scripted:
        (folder / "out" / "files").mkdir(parents=True)
        (folder / "out" / "files" / "model.pt").write_bytes(b"scripted")
    (folder / "out" / "result.json").write_text(json.dumps(result))
    wb.backend().finish(run.id, 0)
    return wb.jobs.wait(job_id)


def test_what_is_refused_before_a_job_is_queued(wb, people, env_id):
    bob = people.bob
    script = zip_bytes(TORCHSCRIPT)
    assert "not a kind of model Workbench imports" in refused(wb, bob, script, kind="caffe")
    assert "give a signature" in refused(wb, bob, script, signature={})
    assert "Not a signature" in refused(wb, bob, script, signature={"inputs": []})
    assert "Name the model" in refused(wb, bob, script, name=None)
    assert "upload it as an archive" in refused(
        wb, bob, script, kind="pytorch", entry="net:Net", filename="weights.pt"
    )
    assert "needs its module class" in refused(wb, bob, script, kind="pytorch", filename="n.zip")
    assert "is not named as a onnx file" in refused(wb, bob, b"\x08\x07", kind="onnx")
    assert "is not an ONNX model" in refused(wb, bob, b"hello", kind="onnx", filename="model.onnx")
    assert "looks like a state dict" in refused(wb, bob, zip_bytes(STATE_DICT))
    keras = {"kind": "keras", "filename": "m.keras", "environment_id": env_id}
    assert "not a keras file" in refused(wb, bob, b"HDF", **keras)
    assert "no config.json" in refused(wb, bob, zip_bytes({"x": b"1"}), **keras)
    assert "is empty" in refused(
        wb, bob, b"", kind="pickle", filename="m.pkl", environment_id=env_id
    )
    assert "No environment of yours or preset with an image can check a keras" in refused(
        wb, bob, zip_bytes({"config.json": b"{}"}), kind="keras", filename="m.keras"
    )
    with pytest.raises(PermissionDenied):
        start(wb, bob, script, visibility="preset")
    with pytest.raises(UnsafeArchive):
        start(wb, bob, zip_bytes({"../../evil.pt": b"x"}), filename="evil.zip")
    assert wb.jobs.list(bob) == [] and wb.models.list(bob, ModelFilter(mine=True)) == []

    # someone else's model: 404 when not seen, 403 when only seen
    first = start(wb, people.alice, script, name="alices", visibility="public")
    checked = {"ok": True, "message": "ok", "native": "torchscript", "signature": FOUND}
    alices = finish(wb, first, {**checked, "native_file": "net.pt", "warnings": []})
    model_id = alices.result["model_id"]
    with pytest.raises(PermissionDenied):
        start(wb, bob, script, model_id=model_id)
    with pytest.raises(NotFound):
        start(wb, bob, script, model_id=model_id + 100)


def test_a_checked_import_becomes_a_version(wb, people, env_id):
    bob = people.bob
    job_id = start(wb, bob, zip_bytes(TORCHSCRIPT), description="from my laptop")
    run = running_run(wb, job_id)
    spec = wb.backend()._runs[run.id].spec
    # pinned to the image's id: a tag moved after the request does not change what runs
    assert spec.image == wb.backend().inspect_image(IMAGE).id and spec.user == "1000:1000"
    assert spec.command[1:] == ("/workbench/converter/validate.py", "/workbench/job/request.json")
    assert {m.target: m.read_only for m in spec.mounts} == {
        "/workbench/native": True,  # the upload
        "/workbench/converter": True,
        "/workbench/job": False,
    }
    request = json.loads((job_folder_of(wb, run) / "request.json").read_text())
    assert request["kind"] == "torchscript" and request["in_dir"] == "/workbench/native"
    assert request["signature"]["inputs"][0]["shape"] == [-1, 4] and request["file"] == ""

    result = {
        "ok": True,
        "message": "a torchscript model taking input float32[-1, 4]",
        "native": "torchscript",
        "native_file": "net.pt",
        "signature": FOUND,
        "warnings": ["input has no dynamic batch axis"],
    }
    job = finish(wb, job_id, result)
    assert job.state == JobState.SUCCEEDED, job.message
    assert job.message.startswith("registered imported version 1: a torchscript model")
    assert "warnings: input has no dynamic batch axis" in job.message
    version = wb.models.get_version(bob, job.result["version_id"])
    assert version.framework == "pytorch" and version.signature == FOUND
    assert version.description == "from my laptop" and version.job_id == job_id
    assert version.source["import"] == "torchscript" and version.source["file"] == "net.pt"
    assert version.source["warnings"] == ["input has no dynamic batch axis"]
    assert len(version.source["sha256"]) == 64
    files = wb.model_versions.files(version.id)
    assert [p.name for p in files.iterdir()] == ["net.pt"]
    assert not any(wb.store.path("models/imports").iterdir())  # the upload moved in

    # a state dict with its code: the TorchScript made is the model, the upload under source/
    archive = zip_bytes({"net.py": b"class Net: ...", "weights.pt": b"state"})
    job_id = start(wb, bob, archive, kind="pytorch", filename="net.zip", entry="net:Net")
    job = finish(wb, job_id, {**result, "native_file": "model.pt", "warnings": []}, scripted=True)
    assert job.state == JobState.SUCCEEDED, job.message
    second = wb.models.get_version(bob, job.result["version_id"])
    assert second.version == 2 and second.model_id == version.model_id  # the same name
    files = wb.model_versions.files(second.id)
    assert sorted(p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()) == [
        "model.pt",
        "source/net.py",
        "source/weights.pt",
    ]


def test_an_import_that_fails_its_check_registers_nothing(wb, people, env_id):
    bob = people.bob
    refused_job = start(wb, bob, zip_bytes(TORCHSCRIPT))
    job = finish(wb, refused_job, {"ok": False, "message": "net.pt is not a TorchScript file"})
    assert job.state == JobState.FAILED
    assert job.message == "net.pt is not a TorchScript file; nothing was registered"

    crashed = start(wb, bob, zip_bytes(TORCHSCRIPT))
    run = running_run(wb, crashed)
    wb.backend().emit(run.id, "Traceback (most recent call last):", "MemoryError")
    wb.backend().finish(run.id, 1)
    job = wb.jobs.wait(crashed)
    assert job.state == JobState.FAILED and "MemoryError" in job.message

    wb.conversions.limits.timeout_s = 1  # imports share the conversions' limits
    hung = start(wb, bob, zip_bytes(TORCHSCRIPT))
    running_run(wb, hung)
    job = wb.jobs.wait(hung, timeout=30)
    assert job.state == JobState.FAILED and "time limit (1 s)" in job.message

    assert wb.models.list(bob, ModelFilter(mine=True)) == []
    assert not any(wb.store.path("models/imports").iterdir())
    assert wb.backend().list({"workbench.kind": "model-import"}) == []
