"""The dataset service against the real registry (SQLite and PostgreSQL) and store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archives import image_classes, write_zip, zip_slip
from tests.conftest import add_people
from workbench.datasets.schemas import DatasetCreate, DatasetFilter, DatasetUpdate
from workbench.enums import PublishState, Split, SplitMode, Visibility
from workbench.errors import (
    Conflict,
    DatasetInvalid,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UnsafeArchive,
)
from workbench.registry import models as m
from workbench.store import StoredFile


def spec(**kw) -> DatasetCreate:
    base = {
        "name": "digits",
        "purpose": "image",
        "sub_purpose": "classification",
        "format": "dir",
        "split_mode": "independent",
    }
    return DatasetCreate.model_validate({**base, **kw})


def stored(wb, path: Path) -> StoredFile:
    with path.open("rb") as f:
        return wb.store.save_stream(f, 10**9)


def test_lifecycle_create_upload_publish_share_delete(wb, tmp_path):
    people = add_people(wb)
    ds = wb.datasets.create(people.alice, spec(description="handwritten"))
    assert ds.state is PublishState.DRAFT and ds.annotation_type == "label"

    train = stored(wb, image_classes(tmp_path / "t.zip", {"0": 3, "1": 2}))
    info = wb.datasets.upload(people.alice, ds.id, Split.TRAIN, train, "t.zip")
    st = info.splits[Split.TRAIN].statistics
    assert (st.samples, st.classes, st.class_counts) == (5, ["0", "1"], {"0": 3, "1": 2})
    assert st.image_sizes == {"8x8": 5}
    assert info.splits[Split.TRAIN].sha256 == train.sha256

    with pytest.raises(Conflict, match="upload its test archive"):
        wb.datasets.publish(people.alice, ds.id)
    test = stored(wb, image_classes(tmp_path / "v.zip", {"0": 1, "1": 1}))
    wb.datasets.upload(people.alice, ds.id, Split.TEST, test, "v.zip")
    assert wb.datasets.publish(people.alice, ds.id).state is PublishState.ONLINE

    # others see it only once public
    with pytest.raises(NotFound):
        wb.datasets.get(people.bob, ds.id)
    wb.datasets.update(people.alice, ds.id, DatasetUpdate(visibility=Visibility.PUBLIC))
    assert wb.datasets.get(people.bob, ds.id).owner == "alice"
    with pytest.raises(PermissionDenied):
        wb.datasets.update(people.bob, ds.id, DatasetUpdate(name="mine now"))

    page = wb.datasets.samples(people.bob, ds.id, Split.TRAIN, offset=1, limit=2)
    assert page.total == 5 and len(page.samples) == 2
    assert wb.datasets.sample_file(people.bob, ds.id, Split.TRAIN, page.samples[0].path).is_file()

    key_dirs = list((wb.store.root / "datasets" / str(ds.id)).iterdir())
    assert len(key_dirs) == 2
    wb.datasets.delete(people.alice, ds.id)
    assert not any((wb.store.root / "datasets" / str(ds.id)).iterdir())
    with pytest.raises(NotFound):
        wb.datasets.get(people.alice, ds.id)


def test_filters(wb):
    people = add_people(wb)
    a = wb.datasets.create(people.alice, spec(name="imgs", visibility="public"))
    wb.datasets.create(people.alice, spec(name="secret"))
    wb.datasets.create(
        people.bob, spec(name="texts", purpose="text", format="single_text", split_mode="ratio")
    )
    names = lambda f: sorted(d.name for d in wb.datasets.list(people.bob, f))  # noqa: E731
    assert names(DatasetFilter()) == ["imgs", "texts"]
    assert names(DatasetFilter(mine=True)) == ["texts"]
    assert names(DatasetFilter(purpose="image")) == ["imgs"]
    assert names(DatasetFilter(q="TEX")) == ["texts"]
    assert names(DatasetFilter(state="online")) == []
    assert a.id in {
        d.id for d in wb.datasets.list(people.alice, DatasetFilter(visibility="public"))
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sub_purpose": "ner"}, "does not belong to purpose image"),
        ({"format": "json"}, "use dir"),
        ({"visibility": "preset"}, "Only admins"),
    ],
)
def test_create_refuses_bad_kinds(wb, fields, message):
    people = add_people(wb)
    with pytest.raises((InvalidInput, PermissionDenied), match=message):
        wb.datasets.create(people.bob, spec(**fields))
    assert wb.datasets.list(people.bob) == []


def test_admin_may_set_preset_and_names_are_unique_per_owner(wb):
    people = add_people(wb)
    wb.datasets.create(people.alice, spec(visibility="preset"))
    with pytest.raises(Conflict, match="already have a dataset named"):
        wb.datasets.create(people.alice, spec())
    assert wb.datasets.create(people.bob, spec()).name == "digits"


def test_failed_upload_keeps_previous_state(wb_sqlite, tmp_path):
    wb = wb_sqlite
    people = add_people(wb)
    ds = wb.datasets.create(people.alice, spec(split_mode="ratio"))
    good = stored(wb, image_classes(tmp_path / "g.zip", {"a": 2, "b": 2}))
    before = wb.datasets.upload(people.alice, ds.id, Split.TRAIN, good, "g.zip")
    files_before = sorted(
        p.relative_to(wb.store.root) for p in wb.store.root.rglob("*") if "tmp" not in p.parts
    )

    bad_content = write_zip(
        tmp_path / "b.zip", {"x/stray.png": b"not an image", "x/a/1.png": b"junk"}
    )
    with pytest.raises(DatasetInvalid) as err:
        wb.datasets.upload(people.alice, ds.id, Split.TRAIN, stored(wb, bad_content), "b.zip")
    assert err.value.details["report"]["ok"] is False
    with pytest.raises(UnsafeArchive):
        wb.datasets.upload(
            people.alice, ds.id, Split.TRAIN, stored(wb, zip_slip(tmp_path / "s.zip")), "s.zip"
        )
    with pytest.raises(InvalidInput, match="takes no test archive"):
        wb.datasets.upload(people.alice, ds.id, Split.TEST, good, "g.zip")

    assert wb.datasets.get(people.alice, ds.id) == before
    files_after = sorted(
        p.relative_to(wb.store.root) for p in wb.store.root.rglob("*") if "tmp" not in p.parts
    )
    assert files_after == files_before
    assert not (tmp_path.parent / "evil.txt").exists()
    assert [p.name for p in (wb.store.root / "tmp").iterdir() if p.name.startswith("stage-")] == []


def test_replacing_a_split_swaps_files_and_removes_the_old_ones(wb_sqlite, tmp_path):
    wb = wb_sqlite
    people = add_people(wb)
    ds = wb.datasets.create(people.alice, spec(split_mode="ratio"))
    first = wb.datasets.upload(
        people.alice,
        ds.id,
        Split.TRAIN,
        stored(wb, image_classes(tmp_path / "1.zip", {"a": 2})),
        "1.zip",
    )
    second = wb.datasets.upload(
        people.alice,
        ds.id,
        Split.TRAIN,
        stored(wb, image_classes(tmp_path / "2.zip", {"a": 1, "b": 4})),
        "2.zip",
    )
    assert first.splits[Split.TRAIN].statistics.samples == 2
    assert second.splits[Split.TRAIN].statistics.class_counts == {"a": 1, "b": 4}
    folders = list((wb.store.root / "datasets" / str(ds.id)).iterdir())
    assert len(folders) == 1


def test_online_datasets_refuse_uploads_and_used_datasets_refuse_deletion(wb, tmp_path):
    people = add_people(wb)
    ds = wb.datasets.create(people.alice, spec(split_mode=SplitMode.RATIO))
    archive = stored(wb, image_classes(tmp_path / "1.zip", {"a": 2}))
    wb.datasets.upload(people.alice, ds.id, Split.TRAIN, archive, "1.zip")
    wb.datasets.publish(people.alice, ds.id)
    with pytest.raises(Conflict, match="take it offline"):
        wb.datasets.upload(people.alice, ds.id, Split.TRAIN, archive, "1.zip")
    with wb.registry.session() as s:
        env = m.Environment(name="py", framework="python", owner_id=people.alice.id)
        s.add(env)
        s.flush()
        s.add(
            m.Workspace(
                name="w",
                purpose="image",
                sub_purpose="classification",
                environment_id=env.id,
                dataset_id=ds.id,
                owner_id=people.alice.id,
            )
        )
    with pytest.raises(Conflict, match="used by training tasks"):
        wb.datasets.delete(people.alice, ds.id)
    assert wb.datasets.get(people.alice, ds.id).state is PublishState.ONLINE


def test_replacing_a_named_token_revokes_the_old_one(wb):
    people = add_people(wb)
    first = wb.users.replace_token(people.bob.id, "workbench lab")
    second = wb.users.replace_token(people.bob.id, "workbench lab")
    assert [t.id for t in wb.users.list_tokens(people.bob)] == [second.id]
    assert wb.users.authenticate(second.secret).username == "bob"
    with pytest.raises(Exception, match="unknown or revoked"):
        wb.users.authenticate(first.secret)
