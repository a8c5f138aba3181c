"""The model registry on SQLite and PostgreSQL: filters and search, tags, aliases that move
atomically, side-by-side comparison, download, and deletes that are refused while something
uses a version (nothing changed then) and never reuse a version's number."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import add_people
from workbench.enums import Visibility
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.models.schemas import ModelFilter, ModelUpdate, NewVersion, VersionUpdate
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.users import Actor


@pytest.fixture
def people(wb):
    return add_people(wb)


def register(
    wb: Workbench,
    owner: Actor,
    tmp_path: Path,
    name: str,
    *,
    model_id: int | None = None,
    visibility: Visibility = Visibility.PRIVATE,
    purpose: str = "image",
    **lineage: Any,
) -> tuple[int, int]:
    """A version with one weights file (and a nested one) of a new model, or of
    ``model_id``; (model id, version id)."""
    if model_id is None:
        with wb.registry.session() as s:
            model_id = wb.model_versions.model_for(
                s, name=name, owner_id=owner.id, visibility=visibility, purpose=purpose
            ).id
    source = tmp_path / f"{name}-{model_id}-{len(list(tmp_path.iterdir()))}"
    (source / "sub").mkdir(parents=True)
    weights = WEIGHTS.get(lineage.get("framework", ""), "model.pt")  # the kind is by name
    (source / weights).write_bytes(f"weights of {name}".encode())
    (source / "sub" / "labels.txt").write_text("0\n1\n")
    made = wb.model_versions.register_version(
        model_id, source, NewVersion(**lineage), staging=source.name
    )
    return model_id, made.id


#: a version's framework comes from its model file's name
WEIGHTS = {"pytorch": "model.pt", "onnx": "model.onnx", "sklearn": "model.joblib"}
EVAL_A = {"accuracy": 0.9, "precision": 0.8, "recall": 0.85, "f1": 0.82, "metrics": {"loss": 0.3}}
EVAL_B = {"accuracy": 0.95, "precision": 0.9, "recall": 0.9, "f1": 0.9, "metrics": {"loss": 0.2}}


def test_list_filters_and_search(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    cnn, _ = register(wb, alice, tmp_path, "digits-cnn", framework="pytorch")
    register(wb, alice, tmp_path, "digits-cnn", model_id=cnn, framework="onnx")
    bayes, _ = register(
        wb,
        bob,
        tmp_path,
        "texts-bayes",
        purpose="text",
        framework="sklearn",
        visibility=Visibility.PUBLIC,
    )
    secret, _ = register(wb, bob, tmp_path, "secret", framework="pytorch")
    wb.models.update(bob, bayes, ModelUpdate(description="spam or not"))
    wb.models.set_tag(alice, cnn, "team", "vision")
    wb.models.set_version_tag(bob, wb.models.get(bob, bayes).versions[0].id, "stage", "prod")

    def names(actor: Actor, **filters: Any) -> list[str]:
        return [info.name for info in wb.models.list(actor, ModelFilter(**filters))]

    assert names(alice) == ["texts-bayes", "digits-cnn"]  # bob's private one does not exist
    assert names(bob) == ["secret", "texts-bayes"]
    assert names(alice, framework="onnx") == ["digits-cnn"]  # any version's framework
    assert names(alice, framework="pytorch") == ["digits-cnn"]
    assert names(bob, framework="pytorch") == ["secret"]
    assert names(alice, purpose="text") == ["texts-bayes"]
    assert names(alice, owner="bob") == ["texts-bayes"]
    assert names(alice, mine=True) == ["digits-cnn"]
    assert names(alice, q="SPAM") == ["texts-bayes"]  # the description, any case
    assert names(alice, name="digits-cnn") == ["digits-cnn"]
    assert names(alice, tag="team") == ["digits-cnn"]
    assert names(alice, tag="team=vision") == ["digits-cnn"]
    assert names(alice, tag="team=nlp") == []
    assert names(alice, tag="stage=prod") == ["texts-bayes"]  # a version's tag
    assert names(alice, visibility="public") == ["texts-bayes"]
    detail = wb.models.get(alice, cnn)
    assert [v.version for v in detail.versions] == [1, 2]
    assert [v.framework for v in detail.versions] == ["pytorch", "onnx"]
    assert detail.tags == {"team": "vision"} and detail.purpose == "image"
    with pytest.raises(NotFound):
        wb.models.get(alice, secret)


def test_tags_on_models_and_versions(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    model, version = register(wb, alice, tmp_path, "tagged", visibility=Visibility.PUBLIC)
    assert wb.models.set_tag(alice, model, "owner team", "vision") == {"owner team": "vision"}
    assert wb.models.set_tag(alice, model, "owner team", "ml") == {"owner team": "ml"}
    assert wb.models.set_version_tag(alice, version, "validated", "yes") == {"validated": "yes"}
    assert wb.models.get_version(alice, version).tags == {"validated": "yes"}
    assert wb.models.delete_tag(alice, model, "owner team") == {}
    with pytest.raises(NotFound) as missing:
        wb.models.delete_tag(alice, model, "owner team")
    assert "No tag 'owner team'" in missing.value.message
    with pytest.raises(InvalidInput):
        wb.models.set_tag(alice, model, "bad\nkey", "x")
    with pytest.raises(NotFound):
        wb.models.set_version_tag(alice, version + 100, "k", "v")
    with pytest.raises(NotFound):
        wb.models.delete_version_tag(alice, version, "nope")
    with pytest.raises(PermissionDenied):  # bob sees the public model but may not change it
        wb.models.set_tag(bob, model, "mine", "no")
    assert wb.models.get(alice, model).tags == {}


def test_an_alias_moves_atomically_and_resolves(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    model, first = register(wb, alice, tmp_path, "aliased", visibility=Visibility.PUBLIC)
    _, second = register(wb, alice, tmp_path, "aliased", model_id=model)
    assert wb.models.set_alias(alice, model, "champion", 1) == {"champion": 1}
    assert wb.models.by_alias(bob, model, "champion").id == first  # readers see it
    assert wb.models.set_alias(alice, model, "champion", 2) == {"champion": 2}
    assert wb.models.set_alias(alice, model, "challenger", 1) == {"challenger": 1, "champion": 2}
    assert wb.models.by_alias(alice, model, "champion").id == second
    assert wb.models.get_version(alice, second).aliases == ["champion"]
    assert wb.models.get(alice, model).aliases == {"challenger": 1, "champion": 2}
    with wb.registry.session() as s:  # moved, not added
        assert s.scalar(sa.select(sa.func.count()).select_from(m.ModelAlias)) == 2
    for bad in ("1", "-x", "has space", "x" * 65):
        with pytest.raises(InvalidInput):
            wb.models.set_alias(alice, model, bad, 1)
    with pytest.raises(NotFound) as no_version:
        wb.models.set_alias(alice, model, "champion", 9)
    assert "has no version 9" in no_version.value.message
    with pytest.raises(PermissionDenied):
        wb.models.set_alias(bob, model, "champion", 1)
    assert wb.models.delete_alias(alice, model, "challenger") == {"champion": 2}
    with pytest.raises(NotFound) as gone:
        wb.models.by_alias(alice, model, "challenger")
    assert "['champion']" in gone.value.message


def test_compare_versions_side_by_side(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    model, a = register(
        wb, alice, tmp_path, "cmp", parameters={"EPOCHS": 2, "LR": 0.1}, evaluation=EVAL_A
    )
    _, b = register(
        wb,
        alice,
        tmp_path,
        "cmp",
        model_id=model,
        parameters={"EPOCHS": 5, "LR": 0.1, "AUGMENT": True},
        evaluation=EVAL_B,
    )
    _, other = register(wb, alice, tmp_path, "other-model")
    table = wb.models.compare(alice, [a, b, other])
    assert [v.id for v in table.versions] == [a, b, other]
    assert table.models == ["cmp", "cmp", "other-model"]
    assert table.parameters == {
        "AUGMENT": [None, True, None],
        "EPOCHS": [2, 5, None],
        "LR": [0.1, 0.1, None],
    }
    assert table.differing == ["AUGMENT", "EPOCHS", "LR"]
    assert table.metrics["accuracy"] == [0.9, 0.95, None]
    assert table.metrics["loss"] == [0.3, 0.2, None]
    assert wb.models.compare(alice, [a, b]).differing == ["AUGMENT", "EPOCHS"]
    for bad in ([a], [a, a]):
        with pytest.raises(InvalidInput):
            wb.models.compare(alice, bad)
    with pytest.raises(NotFound):  # bob does not see alice's private versions
        wb.models.compare(bob, [a, b])


def test_download_is_a_zip_of_the_native_files(wb, people, tmp_path):
    _, version = register(wb, people.alice, tmp_path, "my model/v")
    path, name = wb.model_versions.archive(people.alice, version)
    try:
        assert name == "my-model-v-v1.zip"
        with zipfile.ZipFile(path) as zf:
            assert sorted(zf.namelist()) == ["model.pt", "sub/labels.txt"]
            assert zf.read("model.pt") == b"weights of my model/v"
    finally:
        path.unlink()
    with pytest.raises(NotFound):
        wb.model_versions.archive(people.bob, version)


def test_deletes_refused_while_used_change_nothing(wb, people, tmp_path):
    alice = people.alice
    model, first = register(wb, alice, tmp_path, "used")
    _, second = register(wb, alice, tmp_path, "used", model_id=model, base_version_id=first)
    files = wb.model_versions.files(first)
    wb.models.set_alias(alice, model, "champion", 1)
    with pytest.raises(Conflict) as aliased:
        wb.models.delete_version(alice, first)
    assert "'champion' (version 1)" in aliased.value.message
    with pytest.raises(Conflict):  # the whole model: the alias goes with it, the service not
        with wb.registry.session() as s:
            s.add(m.Service(name="api", owner_id=alice.id, model_version_id=second))
        wb.models.delete(alice, model)
    assert wb.models.get(alice, model).aliases == {"champion": 1}  # nothing changed
    assert files.is_dir() and (files / "model.pt").is_file()
    with wb.registry.session() as s:
        s.execute(sa.delete(m.Service))
        task = s.get_one(m.TrainingTask, add_task(s, alice, base=first))
        task_id = task.id
    wb.models.delete_alias(alice, model, "champion")
    with pytest.raises(Conflict) as tasked:
        wb.models.delete_version(alice, first)
    assert f"'task {task_id}: t' (version 1)" in tasked.value.message
    with wb.registry.session() as s:
        s.get_one(m.TrainingTask, task_id).state = "succeeded"
    wb.models.delete_version(alice, first)
    assert not files.exists()
    with wb.registry.session() as s:
        assert s.get_one(m.TrainingTask, task_id).base_model_version_id is None
    assert wb.models.get_version(alice, second).base_version_id is None
    # a deleted number is not given again
    with pytest.raises(NotFound):
        wb.models.get_version(alice, first)
    _, third = register(wb, alice, tmp_path, "used", model_id=model)
    assert wb.models.get_version(alice, third).version == 3


def test_delete_a_model_with_its_versions(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    model, _ = register(wb, alice, tmp_path, "doomed", visibility=Visibility.PUBLIC)
    register(wb, alice, tmp_path, "doomed", model_id=model)
    wb.models.set_alias(alice, model, "champion", 2)
    with wb.registry.session() as s:
        task_id = add_task(s, alice, model_id=model, state="succeeded")
    folder = wb.store.path(f"models/{model}")
    assert folder.is_dir()
    with pytest.raises(PermissionDenied):
        wb.models.delete(bob, model)
    wb.models.delete(alice, model)
    assert not folder.exists()
    with pytest.raises(NotFound):
        wb.models.get(alice, model)
    with wb.registry.session() as s:
        assert s.get_one(m.TrainingTask, task_id).model_id is None
        assert s.scalar(sa.select(sa.func.count()).select_from(m.ModelVersion)) == 0


def test_owner_updates_and_visibility_rules(wb, people, tmp_path):
    alice, bob = people.alice, people.bob
    model, version = register(wb, bob, tmp_path, "bobs")
    info = wb.models.update(bob, model, ModelUpdate(name="renamed", visibility="public"))
    assert (info.name, info.visibility) == ("renamed", "public")
    with pytest.raises(PermissionDenied):
        wb.models.update(bob, model, ModelUpdate(visibility="preset"))  # admins only
    with pytest.raises(PermissionDenied):
        wb.models.update(alice, model, ModelUpdate(description="not mine"))
    updated = wb.models.update_version(bob, version, VersionUpdate(description="first try"))
    assert updated.description == "first try"
    assert wb.models.get(alice, model).visibility == "public"


def add_task(
    s: Any,
    owner: Actor,
    *,
    base: int | None = None,
    model_id: int | None = None,
    state: str = "draft",
) -> int:
    """A training task row (with its algorithm and dataset) that refers to a model."""
    algorithm = m.Algorithm(
        name=f"algo-{base}-{model_id}",
        owner_id=owner.id,
        purpose="image",
        sub_purpose="classification",
    )
    dataset = m.Dataset(
        name=f"data-{base}-{model_id}",
        owner_id=owner.id,
        purpose="image",
        sub_purpose="classification",
        annotation_type="label",
        format="dir",
        split_mode="ratio",
    )
    s.add_all([algorithm, dataset])
    s.flush()
    task = m.TrainingTask(
        name="t",
        owner_id=owner.id,
        purpose="image",
        sub_purpose="classification",
        algorithm_id=algorithm.id,
        dataset_id=dataset.id,
        base_model_version_id=base,
        model_id=model_id,
        state=state,
    )
    s.add(task)
    s.flush()
    return task.id


def test_the_listing_reads_all_models_in_a_few_queries(wb, people, tmp_path):
    """GET /models costs the same handful of queries for 2 models as for 12 (owners,
    latest versions, aliases, formats are each read once for all of them)."""
    bob = people.bob

    def queries_of_listing() -> tuple[int, list[Any]]:
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(wb.registry.engine, "before_cursor_execute", count)
        try:
            listed = wb.models.list(bob)
        finally:
            sa.event.remove(wb.registry.engine, "before_cursor_execute", count)
        return len(statements), listed

    for n in range(2):
        model_id, _ = register(wb, bob, tmp_path, f"m{n}", framework="onnx")
        wb.models.set_alias(bob, model_id, "champion", 1)
    few, listed = queries_of_listing()
    for n in range(2, 12):
        model_id, _ = register(wb, bob, tmp_path, f"m{n}")
        register(wb, bob, tmp_path, f"m{n}", model_id=model_id)  # a second version
    many, listed = queries_of_listing()
    assert len(listed) == 12 and few == many, (few, many)
    latest = {m.name: m.latest_version for m in listed}
    assert latest["m5"] is not None and latest["m5"].version == 2
    assert latest["m0"] is not None and latest["m0"].aliases == ["champion"]
    assert {m.name: m.aliases for m in listed}["m1"] == {"champion": 1}
    assert {m.name: m.owner for m in listed}["m7"] == "bob"
