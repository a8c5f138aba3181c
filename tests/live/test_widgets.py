"""The Datasets panel's actions, driven as a user would (values set, buttons clicked),
against a real server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.archives import image_classes, write_zip, zip_slip
from workbench.widgets import WorkbenchPanel


@pytest.fixture
def panel(live):
    return WorkbenchPanel(live.client("alice"))


def test_create_upload_publish_share_from_the_panel(panel, live, tmp_path):
    section = panel.datasets
    form = section.create_form
    form.purpose.value = "text"
    assert list(form.sub_purpose.options) == ["classification", "ner"]
    form.sub_purpose.value = "classification"
    assert list(form.format.options) == ["dir", "single_text"]
    form.purpose.value = "image"
    form.name.value = "panel-digits"
    form.create_button.click()
    assert "created panel-digits" in section.status.value
    ds = section.selected
    assert ds is not None and ds.name == "panel-digits"
    assert section.details.layout.display == ""

    archive = image_classes(tmp_path / "train.zip", {"0": 5, "1": 3, "2": 4})
    section.server_path.value = str(archive)
    section.upload_button.click()
    assert section.progress.value == 100 and section.progress.bar_style == "success"
    assert "12 samples in 3 classes" in section.upload_status.value  # beside its button
    assert "12 files checked, all fine" in section.report.value
    bar = section.histogram.figure.data[0]
    assert list(bar.x) == ["0", "1", "2"] and list(bar.y) == [5, 3, 4]
    assert len(section.previews.children) == 8
    assert "panel-digits" in section.summary.value

    section.publish_button.click()
    assert section.selected.state == "online"
    assert "panel-digits is online" in section.action_status.value
    assert section.upload_box.layout.display == "none"  # an online dataset takes no upload
    section.visibility.value = "public"
    section.visibility_button.click()
    assert live.client("bob").datasets.get(ds.id).visibility == "public"

    section.state.value = "online"
    assert next(label for label, _ in section.listing.options).startswith(f"#{ds.id} ")
    section.state.value = "draft"
    assert all(f"#{ds.id} " not in label for label, _ in section.listing.options)


def test_the_panel_shows_errors_and_keeps_going(panel, tmp_path):
    section = panel.datasets
    section.create_form.name.value = ""
    section.create_form.create_button.click()
    assert "invalid_input" in section.create_form.message.value
    section.create_form.name.value = "panel-bad"
    section.create_form.create_button.click()
    section.server_path.value = str(zip_slip(tmp_path / "s.zip"))
    section.upload_button.click()
    assert "archive_unsafe" in section.upload_status.value
    assert section.progress.bar_style == "danger"
    bad = write_zip(tmp_path / "bad.zip", {"d/stray.png": b"x", "d/a/1.png": b"not a png"})
    section.server_path.value = str(bad)
    section.upload_button.click()
    assert "dataset_invalid" in section.upload_status.value
    assert "Validation report" in section.report.value
    assert "stray.png" in section.report.value and "a/1.png" in section.report.value
    section.server_path.value = str(tmp_path / "missing.zip")
    section.upload_button.click()
    assert "Cannot read the file" in section.upload_status.value


def test_file_upload_widget_path(panel, tmp_path):
    section = panel.datasets
    section.create_form.name.value = "panel-fileupload"
    section.create_form.create_button.click()
    data = image_classes(tmp_path / "t.zip", {"a": 2}).read_bytes()
    section.file.value = (
        {
            "name": "t.zip",
            "type": "application/zip",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.now(UTC),
        },
    )
    section.upload_button.click()
    assert "2 samples in 1 classes" in section.upload_status.value
    assert section.file.value == ()


def test_delete_asks_for_confirmation(panel, live):
    section = panel.datasets
    section.create_form.name.value = "panel-delete-me"
    section.create_form.create_button.click()
    ds = section.selected
    section.delete_button.click()
    assert section.delete_button.description == "Confirm delete"
    assert live.client("alice").datasets.get(ds.id).name == "panel-delete-me"
    section.delete_button.click()
    assert f"deleted {ds.name}" in section.status.value
    assert all(f"#{ds.id} " not in label for label, _ in section.listing.options)


def test_only_admins_are_offered_preset(live):
    bob = WorkbenchPanel(live.client("bob")).datasets
    assert "preset" not in bob.visibility.options
    assert "preset" not in bob.create_form.visibility.options
    alice = WorkbenchPanel(live.client("alice")).datasets
    assert "preset" in alice.create_form.visibility.options
