"""The provisioner's refusals, without Docker: each one comes before the engine is asked,
out of KernelManager.start_kernel, as an HTTPError (what jupyter_server shows users)
carrying the Workbench error with a message that says what to do."""

from __future__ import annotations

import pytest

from tests.conftest import add_environment, add_people, make_workbench
from tests.kernels.conftest import kernel_manager
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied, WorkbenchError
from workbench.workspaces.schemas import WorkspaceCreate
from workbench_ext.kernels import WorkspaceKernelError


@pytest.fixture
def wb(host_env):
    workbench = make_workbench(host_env, backend="fake")
    yield workbench
    workbench.close()


@pytest.fixture
def env_id(wb):
    people = add_people(wb)
    return add_environment(
        wb,
        name="python",
        framework="python",
        image_ref="workbench/env-python:1",
        owner_id=people.alice.id,
        visibility="preset",
    )


def create_workspace(wb, username, env_id):
    return wb.workspaces.create(
        wb.users.find(username),
        WorkspaceCreate(
            name="ws", purpose="image", sub_purpose="classification", environment_id=env_id
        ),
    )


def refusal(workspace_id, prefix, config=None) -> WorkbenchError:
    km = kernel_manager(workspace_id, prefix, config)
    with pytest.raises(WorkspaceKernelError) as err:
        km.start_kernel()
    assert not km.has_kernel
    error = err.value.error
    assert err.value.__cause__ is error and err.value.status_code == error.status
    assert err.value.log_message == error.message.replace("%", "%%")
    return error


def test_a_stopped_workspace_says_start_it_first(wb, env_id, tmp_path):
    ws = create_workspace(wb, "bob", env_id)
    error = refusal(ws.id, tmp_path)
    assert isinstance(error, Conflict) and error.status == 409
    assert error.message.startswith(f"Workspace {ws.id} (ws) is stopped; start it first")


def test_unknown_and_foreign_workspaces_are_not_found(wb, env_id, tmp_path):
    error = refusal(99, tmp_path)
    assert isinstance(error, NotFound) and "workspace 99 does not exist" in error.message
    alices = create_workspace(wb, "alice", env_id)
    assert isinstance(refusal(alices.id, tmp_path), NotFound)  # bob is not a member


def test_the_owner_must_be_a_workbench_user(wb, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "carol")
    error = refusal(1, tmp_path)
    assert isinstance(error, PermissionDenied)
    assert "'carol' is not a Workbench user" in error.message


def test_without_a_registry_it_says_where_it_looked(host_env, tmp_path):
    error = refusal(1, tmp_path)
    assert isinstance(error, NotFound)
    assert f"No Workbench registry at {host_env}" in error.message
    assert "set WORKBENCH_HOME" in error.message


def test_a_kernelspec_without_a_workspace_is_refused(wb, tmp_path):
    error = refusal(1, tmp_path, {"workspace_id": 0})
    assert isinstance(error, InvalidInput) and "names no workspace" in error.message
