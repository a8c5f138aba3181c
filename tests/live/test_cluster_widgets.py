"""The Cluster tab against a real server on the Docker Engine: its one node, the engine,
with its resources; a member gets neither the engine's version nor a drain button, and an
admin's drain says why a single engine cannot."""

from __future__ import annotations

from workbench.widgets import WorkbenchPanel


def test_the_engine_is_the_one_node_and_cannot_be_drained(live):
    panel = WorkbenchPanel(live.client("bob"))
    section = panel.cluster
    assert section.title in panel.tabs.titles
    ((label, node_id),) = section.listing.options
    assert " · engine · ready · active · " in label
    section.listing.value = node_id
    assert "CPUs" in section.summary.value
    assert "Docker" not in section.summary.value  # a member is not told the engine's version
    assert section.details.children[-1].layout.display == "none"  # a member's: no actions

    admin = WorkbenchPanel(live.client("alice")).cluster
    admin.listing.value = node_id
    assert "Docker" in admin.summary.value
    assert admin.details.children[-1].layout.display == ""
    assert admin.availability_buttons["active"].disabled  # it is active already
    admin.availability_buttons["drain"].click()
    assert "no other node to move its work to" in admin.action_status.value
