"""The side panel's warm kernels (``WarmKernels``) on a real Jupyter server's kernel manager:
a page gets a kernel whose imports are done, with its own request's environment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from workbench_ext.panel import (
    PanelKernelCuller,
    WarmKernels,
    _TrackingKernelManager,
    notebook_kernel_name,
)

pytestmark = pytest.mark.slow


async def run(kernel_manager: Any, kernel_id: str, expression: str) -> Any:
    """The value of ``expression`` in the kernel (as JSON)."""
    outputs: list[dict[str, Any]] = []
    client = kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute_interactive(
            f"import json as _j; print(_j.dumps({expression}))",
            store_history=False,
            timeout=60,
            output_hook=outputs.append,
        )
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    return json.loads(text)


async def warm_kernels(serverapp: Any) -> WarmKernels:
    """One kernel kept warm, replaced at once when taken; returned once it is ready."""
    warm = WarmKernels(1, refill_after=0)
    warm.start(serverapp.kernel_manager, notebook_kernel_name())
    await warm.wait()
    return warm


async def test_a_page_takes_a_kernel_with_the_panels_imports_done_and_its_own_environment(
    jp_serverapp,
):
    warm = await warm_kernels(jp_serverapp)
    kernel_manager = jp_serverapp.kernel_manager
    [ready] = warm.ready
    assert await run(kernel_manager, ready, "'workbench.widgets' in __import__('sys').modules")

    # a value that would be code if it were pasted into the kernel's source
    hostile = "'); import os; os._exit(3) #\"\\"
    env = {"QUERY_STRING": "model=3&version=5", "SERVER_NAME": hostile}
    taken = await warm.take(notebook_kernel_name(), "", env)
    assert taken == ready
    environ = await run(kernel_manager, taken, "dict(__import__('os').environ)")
    assert environ["QUERY_STRING"] == "model=3&version=5"
    assert environ["SERVER_NAME"] == hostile
    assert "_wb_json" not in await run(kernel_manager, taken, "list(globals())")

    await warm.wait()  # a replacement, not the same kernel twice
    assert len(warm.ready) == 1 and warm.ready[0] != taken


async def test_a_kernel_gone_while_it_waited_is_not_handed_out(jp_serverapp):
    warm = await warm_kernels(jp_serverapp)
    kernel_manager = jp_serverapp.kernel_manager
    [ready] = warm.ready
    await kernel_manager.shutdown_kernel(ready)
    assert await warm.take(notebook_kernel_name(), "", {}) is None
    await warm.wait()
    [replacement] = warm.ready
    assert replacement != ready and replacement in kernel_manager


async def test_another_kernel_or_folder_gets_no_warm_kernel(jp_serverapp):
    warm = await warm_kernels(jp_serverapp)
    assert await warm.take("another-kernel", "", {}) is None
    assert await warm.take(notebook_kernel_name(), "elsewhere", {}) is None
    assert len(warm.ready) == 1  # still there for the panel


async def test_a_kernel_put_to_use_meanwhile_is_left_to_its_user(jp_serverapp):
    """JupyterLab's Running tab can open a console on the idle warm kernel: a page must
    not take it over (nor shut it down)."""
    kernel_manager = jp_serverapp.kernel_manager
    warm = await warm_kernels(jp_serverapp)
    [ready] = warm.ready
    client = kernel_manager.get_kernel(ready).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        client.execute("import time; time.sleep(5)")  # the user's cell, running
        for _ in range(50):
            if kernel_manager.kernel_model(ready)["execution_state"] == "busy":
                break
            await asyncio.sleep(0.1)
        assert await warm.take(notebook_kernel_name(), "", {}) is None
        assert ready in kernel_manager  # still the user's
    finally:
        client.stop_channels()
    await warm.wait()
    assert warm.ready and ready not in warm.ready  # another one warmed for the panel
    await warm.stop()


async def test_stopping_while_a_kernel_launches_leaves_none_behind(jp_serverapp):
    """The server stops its extensions, then its kernels: a launch under way must end up
    a kernel the kernel manager knows (and shuts down), never a process it lost."""
    kernel_manager = jp_serverapp.kernel_manager
    warm = WarmKernels(1, refill_after=0)
    warm.start(kernel_manager, notebook_kernel_name())
    await asyncio.sleep(0.01)  # inside start_kernel
    await warm.stop()
    assert not getattr(kernel_manager, "_pending_kernels", {})
    await kernel_manager.shutdown_all()
    assert list(kernel_manager.list_kernel_ids()) == []
    warm.start(kernel_manager, notebook_kernel_name())  # stopped: no more kernels
    await asyncio.sleep(0.5)
    assert list(kernel_manager.list_kernel_ids()) == []


async def test_when_the_warm_up_fails_pages_start_their_own_kernels(jp_serverapp):
    kernel_manager = jp_serverapp.kernel_manager
    warm = WarmKernels(1, refill_after=0)
    warm.warmup = "raise ImportError('the panel cannot import')"
    warm.start(kernel_manager, notebook_kernel_name())
    await warm.wait()
    assert warm.ready == []
    assert list(kernel_manager.list_kernel_ids()) == []  # the failed one was shut down
    tracking = _TrackingKernelManager(kernel_manager, PanelKernelCuller(cull_after=0), warm)
    kernel_id = await tracking.start_kernel(kernel_name=notebook_kernel_name(), path="", env={})
    assert kernel_id in kernel_manager  # a kernel of its own
    await warm.wait()
    assert warm.ready == []  # and no more attempts


async def test_voila_is_handed_the_warm_kernel_and_the_culler_watches_it(jp_serverapp):
    warm = await warm_kernels(jp_serverapp)
    [ready] = warm.ready
    culler = PanelKernelCuller(cull_after=0)
    tracking = _TrackingKernelManager(jp_serverapp.kernel_manager, culler, warm)
    # what Voila's handler passes: the notebook's kernel, its folder, the request's env
    env = {"QUERY_STRING": "model=1"}
    kernel_id = await tracking.start_kernel(kernel_name=notebook_kernel_name(), path="", env=env)
    assert kernel_id == ready
    assert culler.kernel_ids == {ready}
    await warm.stop()
