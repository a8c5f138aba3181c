"""The Workspaces panel, driven as a user would, against a real server and Docker Engine:
create from the form, start with progress until JupyterLab answers, open, stop, delete."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import add_environment
from workbench.config import Settings
from workbench.services import Workbench
from workbench.widgets import WorkbenchPanel

#: the panel's tabs, in order
PANEL_TABS = (
    "Datasets",
    "Workspaces",
    "Algorithms",
    "Training",
    "Models",
    "Services",
    "Cluster",
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def env_id(live, python_env_image):
    wb = Workbench.from_settings(Settings(home=live.server.home))
    env_id = add_environment(
        wb,
        name="python-live",
        framework="python",
        image_ref=python_env_image,
        owner_id=1,
        visibility="public",
    )
    wb.close()
    return env_id


def test_create_start_open_stop_delete_from_the_panel(live, env_id):
    panel = WorkbenchPanel(live.client("alice"))
    section = panel.workspaces
    assert panel.tabs.titles == PANEL_TABS
    form = section.form
    form.load_choices()
    assert env_id in [value for _, value in form.environment.options]
    form.name.value = "panel-ws"
    form.environment.value = env_id
    form.code.value = "scaffold"
    assert form.prefix in form.source_fields.children
    form.prefix.value = "demo"
    form.api_names.value = "classify, detect"
    form.create_button.click()
    assert "created panel-ws" in section.status.value, form.message.value
    ws = section.selected
    assert ws.code == {"kind": "scaffold", "prefix": "demo", "api_names": ["classify", "detect"]}

    section.start_button.click()
    assert section.progress.value == 100 and section.progress.bar_style == "success"
    # each action answers under its own buttons, not in the list's status line far above
    assert "panel-ws is running" in section.action_status.value
    assert section.action_status is not section.status
    assert section.selected.state == "running"
    assert f"workbench/proxy/workspaces/{ws.id}/lab" in section.open_link.value
    assert live.client("alice").workspaces.ready(ws.id) is True
    status = httpx.get(
        f"{live.server.url}workbench/proxy/workspaces/{ws.id}/api/status",
        headers={"Authorization": f"token {live.server.jupyter_token}"},
    )
    assert status.status_code == 404  # the Jupyter login is the owner's, not alice's

    section.build_project.value = "demo-api"
    section.build_kind.value = "predict"
    section.build_name.value = "demo"
    section.build_button.click()
    assert "built docker_image/predict-demo.tar" in section.build_status.value
    assert "Step" in section.build_log.value or "FROM" in section.build_log.value
    tars = [t.path for t in live.client("alice").workspaces.images(ws.id)]
    assert tars == ["docker_image/predict-demo.tar"]

    section.stop_button.click()
    assert section.selected.state == "stopped" and section.open_link.value == ""
    assert "stopped; its files are kept" in section.action_status.value
    section.delete_button.click()
    section.delete_button.click()
    assert f"deleted {ws.name}" in section.status.value


def test_form_errors_are_shown(live, env_id):
    section = WorkbenchPanel(live.client("bob")).workspaces
    section.form.load_choices()
    section.form.environment.value = env_id
    section.form.name.value = "too-big"
    section.form.cpus.value = 64
    section.form.create_button.click()
    assert "cpus 64.0 &gt; 4.0" in section.form.message.value
