"""The per-workspace kernelspec: what install_kernelspec writes, the template in kernels/,
and jupyter_client finding the provisioner through its entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory

from workbench.errors import InvalidInput
from workbench_ext.kernels import (
    PROVISIONER_NAME,
    WorkspaceKernelProvisioner,
    install_kernelspec,
    kernels_dir,
    kernelspec,
    kernelspec_display_name,
    remove_kernelspec,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "kernels" / PROVISIONER_NAME / "kernel.json"


def test_install_writes_a_kernelspec_per_workspace(tmp_path):
    folder = install_kernelspec(3, display_name=kernelspec_display_name("ws", 3), prefix=tmp_path)
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / "workbench-ws-3"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["display_name"] == "Python (workspace ws #3)"
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": PROVISIONER_NAME,
        "config": {"workspace_id": 3},
    }
    assert spec["argv"][-1] == "{connection_file}"
    assert [p.name for p in folder.iterdir()] == ["kernel.json"]

    # installing again replaces it; a custom name and the default display name
    install_kernelspec(3, display_name="renamed", prefix=tmp_path)
    assert json.loads((folder / "kernel.json").read_text())["display_name"] == "renamed"
    other = install_kernelspec(4, name="my-ws", prefix=tmp_path)
    assert json.loads((other / "kernel.json").read_text())["display_name"] == (
        "Python (workspace #4)"
    )

    assert remove_kernelspec(3, prefix=tmp_path) is True
    assert remove_kernelspec(3, prefix=tmp_path) is False
    assert not folder.exists() and other.exists()


@pytest.mark.parametrize(("workspace_id", "name"), [(0, None), (3, "bad name"), (3, "../x")])
def test_install_refuses_bad_ids_and_names(tmp_path, workspace_id, name):
    with pytest.raises(InvalidInput):
        install_kernelspec(workspace_id, name=name, prefix=tmp_path)
    assert not kernels_dir(tmp_path).exists()


def test_the_template_is_what_install_writes():
    template = json.loads(TEMPLATE.read_text())
    assert template == kernelspec(0, template["display_name"])


def test_jupyter_client_finds_the_provisioner(tmp_path):
    install_kernelspec(5, prefix=tmp_path)
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir(tmp_path))])
    spec = specs.get_kernel_spec("workbench-ws-5")  # NoSuchKernel if no entry point
    factory = KernelProvisionerFactory.instance()
    provisioner = factory.create_provisioner_instance("k1", spec, parent=None)
    assert isinstance(provisioner, WorkspaceKernelProvisioner)
    assert provisioner.workspace_id == 5 and provisioner.encryption == "auto"
