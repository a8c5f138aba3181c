"""The Python client against a real server: every dataset call, errors as exceptions."""

from __future__ import annotations

import pytest

from tests.archives import image_classes, zip_slip
from workbench.client import WorkbenchClient
from workbench.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServerUnreachable,
    UnsafeArchive,
)


def test_dataset_lifecycle_through_the_client(live, tmp_path):
    alice, bob = live.client("alice"), live.client("bob")
    assert alice.me().username == "alice"
    ds = alice.datasets.create(
        name="client-digits",
        purpose="image",
        sub_purpose="classification",
        format="dir",
        split_mode="ratio",
        description="via client",
    )
    seen: list[tuple[int, int]] = []
    archive = image_classes(tmp_path / "t.zip", {"0": 40, "1": 30})
    info = alice.datasets.upload(
        ds.id, "train", archive, progress=lambda sent, total: seen.append((sent, total))
    )
    assert info.splits["train"].statistics.class_counts == {"0": 40, "1": 30}
    assert seen[-1] == (archive.stat().st_size, archive.stat().st_size)
    page = alice.datasets.samples(ds.id, "train", offset=0, limit=5)
    assert page.total == 70 and len(page.samples) == 5
    assert alice.datasets.sample_bytes(ds.id, "train", page.samples[0].path)[:4] == b"\x89PNG"

    with pytest.raises(NotFound):
        bob.datasets.get(ds.id)
    alice.datasets.update(ds.id, visibility="public")
    assert bob.datasets.get(ds.id).name == "client-digits"
    with pytest.raises(PermissionDenied):
        bob.datasets.update(ds.id, name="nope")

    assert alice.datasets.publish(ds.id).state == "online"
    assert [d.id for d in bob.datasets.list(state="online")] == [ds.id]
    assert alice.datasets.take_offline(ds.id).state == "offline"
    with pytest.raises(Conflict):
        alice.datasets.take_offline(ds.id)
    alice.datasets.delete(ds.id)
    with pytest.raises(NotFound):
        alice.datasets.get(ds.id)


def test_errors_arrive_as_the_servers_exception_classes(live, tmp_path):
    alice = live.client("alice")
    with pytest.raises(InvalidInput, match="Sub-purpose ner does not belong"):
        alice.datasets.create(name="x", purpose="image", sub_purpose="ner", format="dir")
    ds = alice.datasets.create(
        name="client-bad", purpose="image", sub_purpose="classification", format="dir"
    )
    with pytest.raises(UnsafeArchive) as err:
        alice.datasets.upload(ds.id, "train", zip_slip(tmp_path / "s.zip"))
    assert err.value.details["entry"].startswith("..")


def test_unreachable_server_and_missing_configuration(tmp_path, monkeypatch):
    with pytest.raises(ServerUnreachable, match="Cannot reach the Workbench"):
        WorkbenchClient("http://127.0.0.1:9", "wb_x").me()
    monkeypatch.delenv("WORKBENCH_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    with pytest.raises(Exception, match="workbench login"):
        WorkbenchClient.from_env()
