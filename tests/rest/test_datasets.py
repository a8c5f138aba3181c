"""Every dataset route through a real Jupyter server, with good and bad input."""

from __future__ import annotations

import asyncio

import pytest

from tests.archives import (
    image_classes,
    tar_with_device,
    truncated,
    write_zip,
    zip_bomb,
    zip_slip,
    zip_symlink,
)
from tests.rest.conftest import Api

API = "workbench/api/v1"
DIGITS = {
    "name": "digits",
    "purpose": "image",
    "sub_purpose": "classification",
    "format": "dir",
    "split_mode": "independent",
}


async def create(api: Api, **fields) -> dict:
    code, body = await api("POST", f"{API}/datasets", {**DIGITS, **fields})
    assert code == 201, body
    return body


async def upload(api: Api, ds_id: int, split: str, path) -> tuple[int, dict]:
    return await api(
        "PUT",
        f"{API}/datasets/{ds_id}/archives/{split}",
        raw=path.read_bytes(),
        params={"filename": path.name},
    )


async def test_create_list_get_edit(users):
    ds = await create(users.alice, description="handwritten digits")
    assert ds["state"] == "draft" and ds["owner"] == "alice" and ds["splits"] == {}
    code, listed = await users.alice("GET", f"{API}/datasets", params={"purpose": "image"})
    assert code == 200 and [d["id"] for d in listed] == [ds["id"]]
    code, listed = await users.alice("GET", f"{API}/datasets", params={"purpose": "text"})
    assert listed == []
    code, got = await users.alice("GET", f"{API}/datasets/{ds['id']}")
    assert got["description"] == "handwritten digits"
    code, edited = await users.alice(
        "PATCH", f"{API}/datasets/{ds['id']}", {"name": "digits-v2", "train_ratio": 0.9}
    )
    assert code == 200 and (edited["name"], edited["train_ratio"]) == ("digits-v2", 0.9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "purpose"),
        ({**DIGITS, "format": "brat_ann"}, None),
        ({**DIGITS, "train_ratio": 1.5}, "train_ratio"),
        ({**DIGITS, "colour": "red"}, "colour"),
        ({**DIGITS, "name": ""}, "name"),
    ],
)
async def test_create_refuses_bad_bodies(users, body, field):
    code, err = await users.bob("POST", f"{API}/datasets", body)
    assert code == 400 and err["error"] == "invalid_input"
    if field:
        assert field in err["message"]
    assert (await users.bob("GET", f"{API}/datasets"))[1] == []


async def test_not_json_body(users):
    code, err = await users.bob("POST", f"{API}/datasets", raw=b"{nope")
    assert code == 400 and "not valid JSON" in err["message"]


async def test_upload_inspect_preview_publish_offline_delete(users, tmp_path):
    ds = await create(users.alice)
    code, info = await upload(
        users.alice, ds["id"], "train", image_classes(tmp_path / "train.zip", {"3": 4, "7": 2})
    )
    assert code == 200, info
    train = info["splits"]["train"]
    assert train["statistics"]["class_counts"] == {"3": 4, "7": 2}
    assert train["report"]["ok"] is True and train["archive_name"] == "train.zip"

    code, page = await users.alice(
        "GET", f"{API}/datasets/{ds['id']}/samples/train", params={"limit": 3}
    )
    assert code == 200 and page["total"] == 6 and len(page["samples"]) == 3
    sample = page["samples"][0]
    code, raw = await users.alice("GET", f"{API}/datasets/{ds['id']}/files/train/{sample['path']}")
    assert code == 200 and raw[:4] == b"\x89PNG"

    code, err = await users.alice("POST", f"{API}/datasets/{ds['id']}/publish")
    assert code == 409 and "test archive" in err["message"]
    code, _ = await upload(
        users.alice, ds["id"], "test", image_classes(tmp_path / "test.zip", {"3": 1, "7": 1})
    )
    assert code == 200
    code, online = await users.alice("POST", f"{API}/datasets/{ds['id']}/publish")
    assert code == 200 and online["state"] == "online"
    code, listed = await users.alice("GET", f"{API}/datasets", params={"state": "online"})
    assert [d["id"] for d in listed] == [ds["id"]]
    code, err = await upload(users.alice, ds["id"], "train", tmp_path / "train.zip")
    assert code == 409 and "offline" in err["message"]
    code, offline = await users.alice("POST", f"{API}/datasets/{ds['id']}/offline")
    assert offline["state"] == "offline"
    code, _ = await users.alice("DELETE", f"{API}/datasets/{ds['id']}")
    assert code == 204
    assert (await users.alice("GET", f"{API}/datasets/{ds['id']}"))[0] == 404
    assert not (users.workbench.store.root / "datasets" / str(ds["id"])).exists() or not any(
        (users.workbench.store.root / "datasets" / str(ds["id"])).iterdir()
    )


async def test_sample_paths_cannot_escape(users, tmp_path):
    ds = await create(users.alice, split_mode="ratio")
    await upload(users.alice, ds["id"], "train", image_classes(tmp_path / "t.zip", {"a": 1}))
    for bad in ("..%2F..%2Fregistry.db", "%2Fetc%2Fpasswd", "a/../../x"):
        code, err = await users.alice("GET", f"{API}/datasets/{ds['id']}/files/train/{bad}")
        assert code in (400, 404), bad
        assert err["error"] in ("not_found", "invalid_input")


BAD_ARCHIVES = {
    "zip-slip": (zip_slip, 400, "archive_unsafe", ".."),
    "symlink": (zip_symlink, 400, "archive_unsafe", "link"),
    "device": (tar_with_device, 400, "archive_unsafe", "dev"),
    "bomb": (zip_bomb, 413, "archive_too_large", "limit"),
    "truncated": (
        lambda p: truncated(image_classes(p.with_suffix(".ok"), {"a": 30}), p),
        400,
        "archive_corrupt",
        "truncated",
    ),
    "rar": (
        lambda p: (p.write_bytes(b"Rar!\x1a\x07\x00" + b"\0" * 64), p)[1],
        415,
        "archive_format",
        "RAR",
    ),
    "empty-zip": (lambda p: write_zip(p, {}), 400, "archive_empty", ""),
    "zero-bytes": (lambda p: (p.write_bytes(b""), p)[1], 400, "archive_empty", ""),
    "wrong-content": (
        lambda p: write_zip(p, {"d/stray.png": b"x", "d/a/1.png": b"not png"}),
        422,
        "dataset_invalid",
        "does not follow the dir standard",
    ),
    "wrong-format": (
        lambda p: write_zip(p, {"d/a/1.txt": b"some text"}),
        422,
        "dataset_invalid",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
async def test_bad_archives_are_refused_and_nothing_changes(users, tmp_path, case):
    make, status, code_name, words = BAD_ARCHIVES[case]
    ds = await create(users.alice, split_mode="ratio")
    good = image_classes(tmp_path / "good.zip", {"a": 2, "b": 1})
    assert (await upload(users.alice, ds["id"], "train", good))[0] == 200
    _, before = await users.alice("GET", f"{API}/datasets/{ds['id']}")
    store = users.workbench.store.root
    files_before = sorted(str(p.relative_to(store)) for p in (store / "datasets").rglob("*"))

    code, err = await upload(users.alice, ds["id"], "train", make(tmp_path / f"{case}.bin"))
    assert (code, err["error"]) == (status, code_name), err
    assert words in err["message"]
    if code_name == "dataset_invalid":
        assert err["details"]["report"]["errors"], "a per-file report comes with the error"

    _, after = await users.alice("GET", f"{API}/datasets/{ds['id']}")
    assert after == before
    assert (
        sorted(str(p.relative_to(store)) for p in (store / "datasets").rglob("*")) == files_before
    )
    assert list((store / "tmp").iterdir()) == []
    assert not (tmp_path.parent / "evil.txt").exists()


async def test_declared_size_over_the_limit_is_refused_before_reading(users):
    ds = await create(users.alice, split_mode="ratio")
    limit = users.workbench.settings.archive_limits.max_archive_bytes
    reader, writer = await _connect(users)
    writer.write(_put_head(users, ds["id"], limit + 10))
    await writer.drain()
    status = await reader.readline()
    writer.close()
    assert b" 413 " in status


async def test_a_cancelled_upload_leaves_nothing(users, tmp_path):
    ds = await create(users.alice, split_mode="ratio")
    good = image_classes(tmp_path / "good.zip", {"a": 2})
    assert (await upload(users.alice, ds["id"], "train", good))[0] == 200
    _, before = await users.alice("GET", f"{API}/datasets/{ds['id']}")

    _reader, writer = await _connect(users)
    writer.write(_put_head(users, ds["id"], 5_000_000) + b"\0" * 200_000)
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()  # the client goes away mid-upload
    await asyncio.sleep(0.5)

    tmp = users.workbench.store.root / "tmp"
    assert list(tmp.iterdir()) == []
    _, after = await users.alice("GET", f"{API}/datasets/{ds['id']}")
    assert after == before


async def _connect(users):
    return await asyncio.open_connection("127.0.0.1", users.port)


def _put_head(users, ds_id: int, length: int) -> bytes:
    path = f"{users.base_url}{API}/datasets/{ds_id}/archives/train"
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {users.alice.token}"
        f"\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def test_other_users_private_datasets_do_not_exist_for_them(users, tmp_path):
    private = await create(users.alice, name="private-one", split_mode="ratio")
    public = await create(users.alice, name="public-one", visibility="public")
    ids = {d["id"] for d in (await users.bob("GET", f"{API}/datasets"))[1]}
    assert ids == {public["id"]}
    pid = private["id"]
    archive = image_classes(tmp_path / "t.zip", {"a": 1})
    for method, path, body in [
        ("GET", f"{API}/datasets/{pid}", None),
        ("PATCH", f"{API}/datasets/{pid}", {"name": "stolen"}),
        ("DELETE", f"{API}/datasets/{pid}", None),
        ("POST", f"{API}/datasets/{pid}/publish", None),
        ("GET", f"{API}/datasets/{pid}/samples/train", None),
        ("GET", f"{API}/datasets/{pid}/files/train/a/000.png", None),
    ]:
        code, err = await users.bob(method, path, body)
        assert (code, err["error"]) == (404, "not_found"), (method, path)
    code, err = await upload(users.bob, pid, "train", archive)
    assert code == 404
    # public: visible, but only the owner changes it
    code, err = await users.bob("PATCH", f"{API}/datasets/{public['id']}", {"name": "mine"})
    assert (code, err["error"]) == (403, "forbidden")
    code, _ = await users.bob("DELETE", f"{API}/datasets/{public['id']}")
    assert code == 403
    # unknown ids look exactly like other users' private ones
    code, err = await users.bob("GET", f"{API}/datasets/999999")
    assert (
        code == 404
        and err["message"].replace("999999", str(pid))
        == (await users.bob("GET", f"{API}/datasets/{pid}"))[1]["message"]
    )
    _, still = await users.alice("GET", f"{API}/datasets/{pid}")
    assert still["name"] == "private-one"


async def test_only_admins_mark_preset(users):
    code, err = await users.bob("POST", f"{API}/datasets", {**DIGITS, "visibility": "preset"})
    assert (code, err["error"]) == (403, "forbidden")
    ds = await create(users.alice, visibility="preset")
    assert ds["visibility"] == "preset"
    listed = (await users.bob("GET", f"{API}/datasets", params={"visibility": "preset"}))[1]
    assert [d["id"] for d in listed] == [ds["id"]]


async def test_deleting_a_dataset_in_use_is_refused(users):
    from workbench.registry import models as m

    ds = await create(users.alice)
    wb = users.workbench
    with wb.registry.session() as s:
        env = m.Environment(name="py", framework="python", owner_id=1)
        s.add(env)
        s.flush()
        s.add(
            m.Workspace(
                name="w",
                purpose="image",
                sub_purpose="classification",
                environment_id=env.id,
                dataset_id=ds["id"],
                owner_id=1,
            )
        )
    code, err = await users.alice("DELETE", f"{API}/datasets/{ds['id']}")
    assert code == 409 and "workspaces [1]" in err["message"]


async def test_patch_refuses_nulls_and_unknown_projects(users):
    ds = await create(users.alice)
    code, err = await users.alice("PATCH", f"{API}/datasets/{ds['id']}", {"name": None})
    assert code == 400 and "name cannot be null" in err["message"]
    code, err = await users.alice("PATCH", f"{API}/datasets/{ds['id']}", {"project_id": 777})
    assert (code, err["error"]) == (404, "not_found") and "project" in err["message"]
    code, err = await users.alice(
        "POST", f"{API}/datasets", {**DIGITS, "name": "p", "project_id": 777}
    )
    assert (code, err["error"]) == (404, "not_found")


async def test_timestamps_are_utc_and_stable(users):
    ds = await create(users.alice)
    _, got = await users.alice("GET", f"{API}/datasets/{ds['id']}")
    assert got["created_at"] == ds["created_at"]
    assert ds["created_at"].endswith(("Z", "+00:00"))


async def test_a_non_owners_upload_is_refused_before_its_body(users):
    ds = await create(users.alice, split_mode="ratio")
    reader, writer = await _connect(users)
    head = _put_head(users, ds["id"], 3_000_000).replace(
        users.alice.token.encode(), users.bob.token.encode()
    )
    writer.write(head)  # headers only: the refusal must not wait for 3 MB
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert b" 404 " in status
    assert list((users.workbench.store.root / "tmp").glob("upload-*")) == []


async def test_admins_add_users_who_get_a_first_token(users):
    code, carol = await users.alice("POST", f"{API}/users", {"username": "carol"})
    assert code == 201 and carol["token"].startswith("wb_")
    code, me = await Api(users.alice.fetch, carol["token"], "carol")("GET", f"{API}/me")
    assert (code, me["username"], me["role"]) == (200, "carol", "member")
