"""The model registry over REST, through the Python client, against a real server process:
search, tags (keys with spaces), aliases, comparison, download as a zip, edits, and the
errors a user gets for other people's models, bad aliases and versions still in use."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.live.test_cli import run
from tests.services.test_models import EVAL_A, EVAL_B
from workbench.config import Settings
from workbench.enums import Visibility
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.models.schemas import NewVersion
from workbench.registry.models import User
from workbench.services import Workbench


@pytest.fixture(scope="module")
def model(live, tmp_path_factory) -> Iterator[tuple[int, int, int]]:
    """alice's public model 'digits-cnn' with two versions: (model id, v1 id, v2 id)."""
    tmp = tmp_path_factory.mktemp("models")
    wb = Workbench.from_settings(Settings(home=live.server.home))
    try:
        with wb.registry.session() as s:
            owner = s.scalar(sa.select(User.id).where(User.username == "alice"))
            assert owner is not None
            model_id = wb.model_versions.model_for(
                s,
                name="digits-cnn",
                owner_id=owner,
                visibility=Visibility.PUBLIC,
                purpose="image",
            ).id
        ids = []
        for n, (epochs, evaluation) in enumerate(((2, EVAL_A), (5, EVAL_B)), 1):
            source = tmp / f"v{n}"
            source.mkdir()
            (source / "model.pt").write_bytes(b"w" * n)
            lineage = NewVersion(
                parameters={"EPOCHS": epochs}, evaluation=evaluation, framework="pytorch"
            )
            ids.append(
                wb.model_versions.register_version(model_id, source, lineage, staging=f"v{n}").id
            )
    finally:
        wb.close()
    yield model_id, ids[0], ids[1]


def test_search_tags_and_aliases(live, model):
    model_id, _, second = model
    alice, bob = live.client("alice"), live.client("bob")
    assert alice.models.set_tag(model_id, "owner team", "vision") == {"owner team": "vision"}
    assert alice.models.set_version_tag(second, "stage", "prod") == {"stage": "prod"}
    assert [m.id for m in bob.models.list(tag="owner team=vision")] == [model_id]
    assert [m.id for m in bob.models.list(tag="stage=prod", framework="pytorch")] == [model_id]
    assert bob.models.list(tag="stage=dev") == []
    assert [m.name for m in bob.models.list(owner="alice", purpose="image")] == ["digits-cnn"]

    assert alice.models.set_alias(model_id, "champion", 1) == {"champion": 1}
    assert alice.models.set_alias(model_id, "champion", 2) == {"champion": 2}
    assert bob.models.alias(model_id, "champion").id == second
    assert bob.models.get(model_id).aliases == {"champion": 2}
    with pytest.raises(PermissionDenied):
        bob.models.set_alias(model_id, "champion", 1)
    with pytest.raises(InvalidInput) as bad:
        alice.models.set_alias(model_id, "c" * 65, 1)
    assert "at most 64 characters" in bad.value.message
    with pytest.raises(NotFound):
        alice.models.set_alias(model_id, "challenger", 9)
    with pytest.raises(Conflict) as used:
        alice.models.delete_version(second)
    assert "'champion' (version 2)" in used.value.message
    assert alice.models.delete_version_tag(second, "stage") == {}
    assert alice.models.delete_tag(model_id, "owner team") == {}


def test_compare_and_download(live, model, tmp_path: Path):
    _, first, second = model
    bob = live.client("bob")
    table = bob.models.compare(first, second)
    assert table.parameters == {"EPOCHS": [2, 5]} and table.differing == ["EPOCHS"]
    assert table.metrics["accuracy"] == [0.9, 0.95]
    with pytest.raises(InvalidInput):
        bob.models.compare(first)
    saved = bob.models.download(second, tmp_path)
    assert saved.name == "digits-cnn-v2.zip"
    with zipfile.ZipFile(saved) as zf:
        assert zf.read("model.pt") == b"ww"
    with pytest.raises(NotFound):
        bob.models.download(second + 1000, tmp_path)


def test_edits_belong_to_the_owner(live, model):
    model_id, first, _ = model
    alice, bob = live.client("alice"), live.client("bob")
    assert alice.models.update(model_id, description="a small CNN").description == "a small CNN"
    assert alice.models.update_version(first, description="baseline").description == "baseline"
    with pytest.raises(PermissionDenied):
        bob.models.update(model_id, name="mine now")
    with pytest.raises(PermissionDenied):
        bob.models.delete(model_id)
    assert alice.models.get(model_id).name == "digits-cnn"


def test_the_model_commands(live, model, tmp_path: Path):
    model_id, first, second = model
    listed = run(live, "model", "list", "--owner", "alice", "--purpose", "image")
    assert "digits-cnn" in listed
    assert run(live, "model", "list", "--tag", "nothing=here") == ""
    assert json.loads(run(live, "model", "tag", str(model_id), "reviewed by", "carol")) == {
        "reviewed by": "carol"
    }
    out = run(live, "model", "tag", str(model_id), "stage", "qa", "--version-id", str(first))
    assert json.loads(out) == {"stage": "qa"}
    assert "is v1 of model" in run(
        live, "model", "tag", str(model_id + 1), "k", "v", "--version-id", str(first), ok=False
    )
    assert json.loads(run(live, "model", "alias", str(model_id), "canary", "1")) == {
        "canary": 1,
        **live.client().models.get(model_id).aliases,
    }
    shown = run(live, "model", "show", str(model_id))
    assert "v1" in shown and "v2" in shown and "canary" in shown and "reviewed by" in shown
    assert f"id {first}" in run(live, "model", "alias", str(model_id), "canary")
    table = run(live, "model", "compare", str(first), str(second))
    assert "*EPOCHS" in table.replace(" ", "") and "accuracy" in table
    saved = Path(run(live, "model", "download", str(first), "--to", str(tmp_path)).strip())
    assert saved.name == "digits-cnn-v1.zip" and zipfile.is_zipfile(saved)
    refused = run(live, "model", "delete", str(model_id), "--version-id", str(first), ok=False)
    assert "'canary' (version 1)" in refused and "[conflict]" in refused
    run(live, "model", "alias", str(model_id), "canary", "--delete")
    assert run(live, "model", "untag", str(model_id), "reviewed by").strip() == "{}"
    assert json.loads(run(live, "model", "version", str(first)))["tags"] == {"stage": "qa"}


def test_a_conversion_is_refused_with_what_to_do(live, model):
    """The fixture's versions declare no signature: the conversion says how to give one;
    once given, an unknown format is refused by name (nothing queued either time)."""
    _, first, _ = model
    alice = live.client("alice")
    with pytest.raises(InvalidInput) as unsigned:
        alice.models.convert(first)
    assert "declares no signature" in unsigned.value.message
    out = run(live, "model", "convert", str(first), ok=False)
    assert "declares no signature" in out and "[invalid_input]" in out
    signature = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]}
    version = alice.models.update_version(first, description="baseline", signature=signature)
    assert version.signature["inputs"][0]["shape"] == [-1, 4]
    with pytest.raises(InvalidInput) as unknown:
        alice.models.convert(first, ["savedmodel"])
    assert "converts to onnx, onnx-optimized" in unknown.value.message
    assert alice.models.formats(first) == []
    assert [j for j in alice.jobs.list() if j.kind == "model-convert"] == []
