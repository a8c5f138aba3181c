"""A host KernelManager runs its kernel in a workspace's container on the real Docker
Engine (envs/python image): as the container's user, with its files and limits, reached
on the container's address with encryption, interrupted, restarted in place, and gone
without a trace after shutdown; a kernel that fails to start or dies is reported."""

from __future__ import annotations

import time

import docker
import pytest

from tests.conftest import add_environment, add_people, make_workbench
from tests.kernels.conftest import kernel_manager
from workbench.errors import KernelLaunchFailed
from workbench.workspaces.schemas import WorkspaceCreate
from workbench_ext.kernels import WorkspaceKernelError

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def workspace(host_env, python_env_image):
    wb = make_workbench(host_env, backend="docker")
    people = add_people(wb)
    env_id = add_environment(
        wb,
        name="python",
        framework="python",
        image_ref=python_env_image,
        owner_id=people.alice.id,
        visibility="preset",
    )
    ws = wb.workspaces.create(
        people.bob,
        WorkspaceCreate(
            name="ws",
            purpose="image",
            sub_purpose="classification",
            environment_id=env_id,
            resources={"cpus": 1, "memory_mb": 1024},
        ),
    )
    try:
        wb.workspaces.start(people.bob, ws.id)
        container_id = wb.workspaces.running_container(people.bob, ws.id)
        yield ws, docker.from_env().containers.get(container_id)
    finally:
        wb.workspaces.delete(people.bob, ws.id)
        wb.close()


def run(kc, code, timeout=30):
    """Execute ``code``; (stdout, the reply's content)."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    return "".join(out), reply["content"]


def kernel_processes(container):
    container.reload()
    return [p for p in container.top()["Processes"] if "ipykernel" in " ".join(p)]


def kernel_folders(container):
    return container.exec_run(["sh", "-c", "ls -d /tmp/workbench-kernel-* 2>/dev/null"]).output


def test_a_host_kernel_runs_in_the_workspace_container(workspace, tmp_path):
    ws, container = workspace
    started = time.monotonic()
    km = kernel_manager(ws.id, tmp_path / "prefix")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        ready = time.monotonic() - started

        # reached on the container's address (no published port), with CurveZMQ
        container.reload()
        [network] = container.attrs["NetworkSettings"]["Networks"].values()  # the workspaces'
        ip = network["IPAddress"]
        assert km.ip == ip and km.provisioner.connection_info["ip"] == ip
        assert km.curve_publickey is not None
        assert list(container.attrs["HostConfig"]["PortBindings"]) == ["8888/tcp"]

        # the container's user, files, environment and cgroup (its limits), not the host's
        out, reply = run(
            kc,
            "import os; print(os.getuid(), open('/workspace/help_doc/README.md').readline())\n"
            "print(os.environ.get('WORKBENCH_WORKSPACE'), 'WORKBENCH_HOME' in os.environ)\n"
            "same = open('/proc/self/cgroup').read() == open('/proc/1/cgroup').read()\n"
            "print(same, os.getcwd())",
        )
        assert reply["status"] == "ok", reply
        assert out.splitlines() == [
            "1000 # Your workspace",
            "",
            f"{ws.id} False",
            "True /workspace",
        ]
        assert len(kernel_processes(container)) == 1

        # an interrupt reaches the kernel through `kill` in the container
        kc.execute("import time; time.sleep(60)")
        time.sleep(1)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=10)["content"]
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"

        # a restart stays in the container, on the same ports
        ports, pid = km.ports, run(kc, "print(os.getpid())")[0]
        km.restart_kernel()
        kc.wait_for_ready(timeout=60)
        out, reply = run(kc, "import os; print(os.getpid())")
        assert reply["status"] == "ok" and out != pid and km.ports == ports
        assert len(kernel_processes(container)) == 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel()

    # a clean shutdown leaves no process and no connection file (the key) behind
    assert not km.has_kernel
    assert kernel_processes(container) == []
    assert kernel_folders(container) == b""
    print(f"\nkernel ready in {ready:.1f} s, whole test {time.monotonic() - started:.1f} s")


def test_a_kernel_that_fails_or_gets_killed(workspace, tmp_path):
    ws, container = workspace

    # a kernel that exits at once: its exit code and log tail, nothing left behind
    km = kernel_manager(ws.id, tmp_path / "prefix")
    km.kernel_spec.argv = ["python", "-c", "import sys; print('no kernel here'); sys.exit(3)"]
    with pytest.raises(WorkspaceKernelError) as err:
        km.start_kernel()
    assert isinstance(err.value.error, KernelLaunchFailed)
    assert "exited with code 3" in err.value.error.message
    assert err.value.error.message.endswith("last lines of its log:\nno kernel here")
    assert kernel_folders(container) == b""

    # a kernel killed behind the provisioner's back is seen dead
    km = kernel_manager(ws.id, tmp_path / "prefix")
    km.start_kernel()
    try:
        assert km.is_alive() and len(kernel_processes(container)) == 1
        container.exec_run(["sh", "-c", "kill -9 $(cat /tmp/workbench-kernel-*/pid)"])
        deadline = time.monotonic() + 10
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not km.is_alive()
    finally:
        km.shutdown_kernel(now=True)
    assert kernel_processes(container) == []
    assert kernel_folders(container) == b""
