"""Fixtures of the workspace-kernel tests: the provisioner registered as an entry point,
and a KernelManager for a workspace's kernelspec."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory

from workbench_ext.kernels import (
    PROVISIONER_NAME,
    WorkspaceKernelProvisioner,
    install_kernelspec,
    kernels_dir,
)

GROUP = KernelProvisionerFactory.GROUP_NAME
TARGET = f"{WorkspaceKernelProvisioner.__module__}:{WorkspaceKernelProvisioner.__qualname__}"


@pytest.fixture(scope="session", autouse=True)
def provisioner_entry_point(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The entry point pyproject.toml declares, for an install that predates it: a
    dist-info folder put on sys.path, found by importlib.metadata like an installed one."""
    if entry_points(group=GROUP, name=PROVISIONER_NAME):
        yield
        return
    root = tmp_path_factory.mktemp("entry-points")
    dist = root / "workbench_kernels_test-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: workbench-kernels-test\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\n{PROVISIONER_NAME} = {TARGET}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        yield


@pytest.fixture
def host_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment a host Jupyter server has: WORKBENCH_HOME and the owner (bob)."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("JUPYTERHUB_USER", "bob")
    for name in ("WORKBENCH_DB_URL", "WORKBENCH_STORE", "WORKBENCH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def kernel_manager(
    workspace_id: int, prefix: Path, config: dict[str, object] | None = None
) -> KernelManager:
    """A KernelManager for the workspace's kernelspec, installed under ``prefix``, with
    ``config`` over the provisioner's config."""
    name = install_kernelspec(workspace_id, prefix=prefix).name
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir(prefix))])
    km = KernelManager(kernel_name=name, kernel_spec_manager=specs)
    km.kernel_spec.metadata["kernel_provisioner"]["config"].update(config or {})
    return km
