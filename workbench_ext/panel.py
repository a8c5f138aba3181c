"""The Workbench side panel: a Voila rendering of a notebook shipped inside this package.

JupyterLab's ``@workbench/panel`` extension shows ``{base_url}workbench/panel`` in a
same-origin iframe. This module serves that page with Voila's own request handler, so the
whole panel (every tab of it) is one Voila kernel running the packaged notebook
``workbench_ext/panel/workbench.ipynb``. The reviewers' read-only models dashboard is the
same kind of page, for ``models-dashboard.ipynb``, at ``{base_url}workbench/dashboard/models``.

How it works, against voila 0.5.13 used as a Jupyter server extension:

* ``voila.handler.VoilaHandler`` renders a fixed notebook when given ``notebook_path``
  (this is how standalone ``voila my.ipynb`` works). It reads the notebook through
  ``self.contents_manager``, which is the server's, rooted at the user's ``root_dir``.
  :class:`WorkbenchPanelHandler` overrides that property with a contents manager rooted
  at the package's ``panel`` folder, so the notebook is found wherever the package is
  installed while the kernel still starts in the server's ``root_dir``.
* The handler needs what ``voila.server_extension`` puts in ``web_app.settings``
  (``voila_jinja2_env``) and the routes it registers (``/voila/static``,
  ``/voila/templates``, ``/voila/labextensions``, ``/voila/api/themes``), which the
  rendered page loads. The ``voila`` server extension must therefore be enabled in the
  same server; :func:`panel_handlers` cannot check this, the handler fails with a clear
  500 if it is missing.
* The kernel is an ordinary kernel of the server's ``MappingKernelManager``; the page's
  widgets talk to it over the standard ``/api/kernels/<id>/channels`` websocket.
* Closing or reloading the panel: Voila's page asks ``/voila/api/shutdown/<id>`` to stop
  its kernel on unload, but that never happens when the browser dies, the machine sleeps
  or the tab is discarded. In server-extension mode Voila has no culling of its own (its
  ``VoilaKernelManager`` belongs to the standalone app) and the server-wide
  ``MappingKernelManager.cull_*`` settings would also cull the user's notebook kernels, so
  :class:`PanelKernelCuller` shuts down the kernels this handler started, and only those,
  once no browser has been connected to them for a grace period.
* Opening or reloading the panel: a page needs a kernel that has imported
  ``workbench.widgets`` (about 2 s of a 4 s reload, measured on a warm server).
  :class:`WarmKernels` keeps such kernels started ahead of the request; a page takes one,
  with its request's environment applied, and a new one is warmed once the page is drawn.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.services.contents.filemanager import AsyncFileContentsManager
from jupyter_server.utils import url_path_join
from tornado.ioloop import PeriodicCallback
from traitlets.config import Config
from traitlets.log import get_logger
from voila.configuration import VoilaConfiguration
from voila.paths import collect_template_paths
from voila.server_extension import load_config_file as load_voila_config_file
from voila.tornado.handler import TornadoVoilaHandler

from workbench_ext.handlers.base import FROM_ANOTHER_SITE
from workbench_ext.identity import from_another_site

__all__ = [
    "DASHBOARD_NOTEBOOK",
    "DASHBOARD_URL",
    "PANEL_DIR",
    "PANEL_NOTEBOOK",
    "PANEL_URL",
    "PanelKernelCuller",
    "PanelSettings",
    "WarmKernels",
    "WorkbenchPanelHandler",
    "panel_handlers",
]

#: Folder of the packaged panel notebook (served read-only by the panel handler).
PANEL_DIR: Path = Path(__file__).resolve().parent / "panel"
#: The notebook Voila renders, relative to :data:`PANEL_DIR`.
PANEL_NOTEBOOK: str = "workbench.ipynb"
#: The panel's URL, relative to the server's ``base_url``.
PANEL_URL: str = "workbench/panel"
#: The reviewers' read-only models dashboard: its notebook and stable URL.
DASHBOARD_NOTEBOOK: str = "models-dashboard.ipynb"
DASHBOARD_URL: str = "workbench/dashboard/models"
#: The JupyterLab extension hosting the panel; never loaded inside the panel's own page.
LAB_EXTENSION_NAME: str = "@workbench/panel"

#: Voila's lab template links Font Awesome from a CDN, though its bundle carries the icons;
#: on a machine without the internet each page load logged two failed requests.
CDN_STYLESHEET = re.compile(
    r'\s*<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/npm/@fortawesome/[^"]*"'
    r"[^>]*>"
)
#: What a warm kernel runs before a page takes it: the panels' imports.
WARMUP_CODE: str = "import workbench.widgets"
DEFAULT_CULL_AFTER_SECONDS: float = 180.0
DEFAULT_CULL_INTERVAL_SECONDS: float = 30.0


class PanelKernelCuller:
    """Shuts down panel kernels that no browser has been connected to for a while.

    Only the kernels recorded with :meth:`track` are considered. A kernel is culled when,
    for at least ``cull_after`` seconds, it had no websocket connection, and it is not
    busy (a long first render of the notebook happens without any websocket).
    """

    def __init__(
        self,
        cull_after: float = DEFAULT_CULL_AFTER_SECONDS,
        interval: float = DEFAULT_CULL_INTERVAL_SECONDS,
    ) -> None:
        self.cull_after = cull_after
        self.interval = interval
        self.kernel_ids: set[str] = set()
        self._disconnected_since: dict[str, float] = {}
        self._kernel_manager: Any = None
        self._callback: PeriodicCallback | None = None
        self.log = get_logger()

    def track(self, kernel_manager: Any, kernel_id: str) -> None:
        """Record a kernel started for the panel and make sure culling runs."""
        self.kernel_ids.add(kernel_id)
        self._kernel_manager = kernel_manager
        if self._callback is None and self.cull_after > 0:
            self._callback = PeriodicCallback(self._run, self.interval * 1000)
            self._callback.start()

    def stop(self) -> None:
        """Stop the periodic check (kernels are left alone)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    async def _run(self) -> None:
        if self._kernel_manager is None:
            return
        try:
            await self.cull(self._kernel_manager)
        except Exception:  # the periodic callback must survive any one failure
            self.log.exception("Workbench panel: culling kernels failed")

    async def cull(self, kernel_manager: Any, now: float | None = None) -> list[str]:
        """Shut down the idle, disconnected panel kernels; return their ids."""
        now = time.monotonic() if now is None else now
        culled: list[str] = []
        for kernel_id in sorted(self.kernel_ids):
            if kernel_id not in kernel_manager:  # shut down elsewhere
                self._forget(kernel_id)
                continue
            model = kernel_manager.kernel_model(kernel_id)
            if model["connections"] > 0:
                self._disconnected_since.pop(kernel_id, None)
                continue
            since = self._disconnected_since.setdefault(kernel_id, now)
            if now - since < self.cull_after or model["execution_state"] == "busy":
                continue
            last_activity = kernel_manager.get_kernel(kernel_id).last_activity
            idle = (datetime.now(UTC) - last_activity).total_seconds()
            if idle < self.cull_after:
                continue
            self.log.info(
                "Workbench panel: shutting down kernel %s (no browser for %.0f s)",
                kernel_id,
                now - since,
            )
            await ensure_async(kernel_manager.shutdown_kernel(kernel_id))
            self._forget(kernel_id)
            culled.append(kernel_id)
        return culled

    def _forget(self, kernel_id: str) -> None:
        self.kernel_ids.discard(kernel_id)
        self._disconnected_since.pop(kernel_id, None)


class WarmKernels:
    """Kernels of the server's kernel manager, started ahead of a panel page with
    :data:`WARMUP_CODE` run, so that the page only has to run its notebook.

    ``size`` kernels are kept ready (``0``: none, every page starts its own). A page takes
    one with :meth:`take`, which applies the page's kernel environment (Voila's request
    variables: ``QUERY_STRING`` and the like) and hands it over; a replacement is started
    ``refill_after`` seconds later, once the page has been drawn, so that the two do not
    share the CPU. A kernel that died, was shut down or was put to use from JupyterLab's
    Running tab while it waited is not handed out. If the warm-up code raises (the panel's
    imports fail), warming stops and pages start their own kernels, whose notebook then
    shows the error; any other failure (a timeout, a kernel that died) is logged and the
    next page tries again. Warm kernels are ordinary kernels: JupyterLab lists them among
    the running ones.
    """

    def __init__(self, size: int, *, refill_after: float = 5.0, timeout: float = 120.0) -> None:
        self.size = size
        self.refill_after = refill_after
        self.timeout = timeout
        #: how long a page waits for its environment to be applied in a warm kernel
        self.handover_timeout = 10.0
        self.warmup = WARMUP_CODE
        #: the kernels ready, each with the environment it started with
        self._ready: list[tuple[str, dict[str, str]]] = []
        self._kernel_manager: Any = None
        self._kernel_name = ""
        self._path = ""
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False
        self._stopped = False
        self.log = get_logger()

    @property
    def ready(self) -> list[str]:
        """The ids of the kernels waiting for a page."""
        return [kernel_id for kernel_id, _ in self._ready]

    def start(self, kernel_manager: Any, kernel_name: str, path: str = "") -> None:
        """Keep ``size`` kernels of ``kernel_name``, started in ``path``, warm from now on."""
        self._kernel_manager = kernel_manager
        self._kernel_name = kernel_name
        self._path = path
        self._fill_after(0.0)

    async def stop(self) -> None:
        """Start no more kernels. A launch under way is finished, not cancelled (a kernel
        cancelled mid-launch would be left running and unknown to the kernel manager, whose
        shutdown would then fail); the kernels started stay with the kernel manager."""
        self._stopped = True
        if self._task is None or self._task.done():
            return
        if self._sleeping:
            self._task.cancel()
        await asyncio.wait([self._task])

    async def wait(self) -> None:
        """Until the kernels being started are ready (for tests and benchmarks)."""
        if self._task is not None:
            await asyncio.wait([self._task])

    async def take(self, kernel_name: str, path: str, env: dict[str, str]) -> str | None:
        """A warm kernel of ``kernel_name`` in ``path`` with ``env`` applied, else None."""
        if (kernel_name, path) != (self._kernel_name, self._path):
            return None  # another notebook's kernel, or folder: the pool is not for it
        try:
            while self._ready:
                kernel_id, started_with = self._ready.pop(0)
                if not self._unused(kernel_id):
                    continue
                changed = {k: v for k, v in env.items() if started_with.get(k) != v}
                if not changed or await self._run(
                    kernel_id, _environ_update(changed), self.handover_timeout
                ):
                    return kernel_id
                await self._discard(kernel_id)
            return None
        finally:
            self._fill_after(self.refill_after)

    def _unused(self, kernel_id: str) -> bool:
        """Whether the kernel is still there, idle and connected to nothing (the Running
        tab can open a console on it)."""
        if kernel_id not in self._kernel_manager:
            return False
        model = self._kernel_manager.kernel_model(kernel_id)
        return bool(model["connections"] == 0 and model["execution_state"] == "idle")

    def _fill_after(self, delay: float) -> None:
        if self.size <= 0 or self._stopped or self._kernel_manager is None:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._fill(delay))
            self._task.add_done_callback(self._log_failure)

    def _log_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("Workbench panel: warming kernels failed", exc_info=task.exception())

    async def _fill(self, delay: float) -> None:
        self._sleeping = True
        try:
            await asyncio.sleep(delay)
        finally:
            self._sleeping = False
        while not self._stopped and len(self._ready) < self.size:
            env = dict(os.environ)
            kernel_id = cast(
                str,
                await ensure_async(
                    self._kernel_manager.start_kernel(
                        kernel_name=self._kernel_name, path=self._path, env=env
                    )
                ),
            )
            warmed = await self._run(kernel_id, self.warmup, self.timeout)
            if warmed is None:  # the panel's imports raise: pages will show why
                self.log.warning("Workbench panel: kernels are no longer kept warm")
                self._stopped = True
            if not warmed:
                await self._discard(kernel_id)
                return
            self._ready.append((kernel_id, env))

    async def _discard(self, kernel_id: str) -> None:
        """Shut the kernel down if it is still there (failures logged, not raised)."""
        if kernel_id not in self._kernel_manager:
            return
        try:
            await ensure_async(self._kernel_manager.shutdown_kernel(kernel_id))
        except Exception:  # gone meanwhile, or it would not stop: not the page's problem
            self.log.exception("Workbench panel: shutting down kernel %s failed", kernel_id)

    async def _run(self, kernel_id: str, code: str, timeout: float) -> bool | None:
        """Run ``code`` in the kernel, quietly: True if it ran, None if it raised, False if
        it could not be run (the kernel died, timed out...). Failures are logged."""
        try:
            client = self._kernel_manager.get_kernel(kernel_id).client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=timeout)
                reply = await client.execute_interactive(
                    code,
                    silent=True,
                    store_history=False,
                    timeout=timeout,
                    output_hook=lambda _message: None,
                )
            finally:
                client.stop_channels()
        except Exception as exc:  # any failure of one kernel must not stop the next page
            self.log.warning("Workbench panel: kernel %s: %s: %s", kernel_id, type(exc), exc)
            return False
        content = reply["content"]
        if content["status"] != "ok":
            self.log.warning(
                "Workbench panel: warming kernel %s failed: %s: %s",
                kernel_id,
                content.get("ename"),
                content.get("evalue"),
            )
            return None
        return True


def _environ_update(changed: dict[str, str]) -> str:
    """Code that sets ``changed`` in a kernel's ``os.environ`` (values as JSON, not code)."""
    return (
        "import json as _wb_json, os as _wb_os\n"
        f"_wb_os.environ.update(_wb_json.loads({json.dumps(changed)!r}))\n"
        "del _wb_json, _wb_os"
    )


class _TrackingKernelManager:
    """The server's kernel manager, recording the kernels that Voila starts through it, and
    handing it a warm kernel where one is ready."""

    def __init__(self, inner: Any, culler: PanelKernelCuller, warm: WarmKernels) -> None:
        self._inner = inner
        self._culler = culler
        self._warm = warm

    async def start_kernel(self, **kwargs: Any) -> str:
        kernel_id = await self._warm.take(
            kwargs.get("kernel_name", ""), kwargs.get("path", ""), kwargs.get("env") or {}
        )
        if kernel_id is None:
            kernel_id = cast(str, await ensure_async(self._inner.start_kernel(**kwargs)))
        self._culler.track(self._inner, kernel_id)
        return kernel_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __contains__(self, kernel_id: object) -> bool:
        return kernel_id in self._inner


class PanelSettings:
    """What the panel's handler instances share: where the notebook is, Voila's settings
    (resolved once, from the server's config unless given) and the kernel culler."""

    def __init__(
        self,
        notebook_dir: Path,
        notebook: str,
        culler: PanelKernelCuller,
        warm: WarmKernels,
        config: Config | None,
    ) -> None:
        self.notebook = notebook
        self.contents_manager = AsyncFileContentsManager(root_dir=str(notebook_dir))
        self.culler = culler
        self.warm = warm
        self.config = config
        self._voila: tuple[Config, VoilaConfiguration, list[str]] | None = None

    def voila(self, server_config: Config | None) -> tuple[Config, VoilaConfiguration, list[str]]:
        """(traitlets config, VoilaConfiguration, template paths) for the panel's Voila."""
        if self._voila is None:
            base = self.config if self.config is not None else server_config
            config = copy.deepcopy(base) if base is not None else Config()
            voila_config = load_voila_config_file()  # voila.json/voila.py, as the extension does
            if voila_config is not None:
                config.merge(voila_config)
            voila_configuration = panel_voila_configuration(config)
            template_paths = collect_template_paths(
                ["voila", "nbconvert"], voila_configuration.template
            )
            self._voila = (config, voila_configuration, template_paths)
        return self._voila


class WorkbenchPanelHandler(TornadoVoilaHandler):
    """Voila's page handler, rendering the packaged panel notebook for an authorized user."""

    auth_resource = "workbench:panel"

    def initialize(self, **kwargs: Any) -> None:
        self._panel: PanelSettings = kwargs["panel"]
        config, voila_configuration, template_paths = self._panel.voila(self.settings.get("config"))
        super().initialize(
            notebook_path=self._panel.notebook,
            config=config,
            template_paths=template_paths,
            voila_configuration=voila_configuration,
        )

    @property
    def contents_manager(self) -> AsyncFileContentsManager:
        """Where Voila reads the notebook from: the package, not the user's root_dir."""
        return self._panel.contents_manager

    @property
    def kernel_manager(self) -> Any:
        return _TrackingKernelManager(
            self.settings["kernel_manager"], self._panel.culler, self._panel.warm
        )

    @tornado.web.authenticated
    @authorized
    async def get(self, path: str | None = None) -> None:
        if from_another_site(self.request):  # each page starts a kernel
            raise tornado.web.HTTPError(403, FROM_ANOTHER_SITE)
        if "voila_jinja2_env" not in self.settings:
            raise tornado.web.HTTPError(
                500, "The Workbench panel needs the 'voila' server extension to be enabled."
            )
        # The handler is bound to one notebook: any path in the URL is ignored.
        async for html in self.get_generator(path=None):
            self.write(CDN_STYLESHEET.sub("", html))
            await self.flush()


def notebook_kernel_name(notebook: str = PANEL_NOTEBOOK, notebook_dir: Path = PANEL_DIR) -> str:
    """The kernel a packaged notebook names (what Voila starts for it)."""
    metadata = json.loads((notebook_dir / notebook).read_text(encoding="utf-8"))["metadata"]
    return cast(str, metadata["kernelspec"]["name"])


def panel_voila_configuration(config: Config | None = None) -> VoilaConfiguration:
    """Voila's settings for the panel: ``c.VoilaConfiguration`` from ``config``, plus the
    ``@workbench/panel`` lab extension denied so that the panel never nests itself, and
    the MathJax bundled with Voila's page instead of MathJax 2 from a CDN (which Voila's
    page loads unless both ``fullMathjaxUrl`` and ``mathjaxConfig`` are "null")."""
    voila_configuration = VoilaConfiguration(config=config or Config())
    denied = list(voila_configuration.extension_denylist or [])
    if LAB_EXTENSION_NAME not in denied:
        voila_configuration.extension_denylist = [*denied, LAB_EXTENSION_NAME]
    configured = voila_configuration.page_config_hook

    def offline(page_config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if configured is not None:
            page_config = configured(page_config, **kwargs)
        page_config["fullMathjaxUrl"] = page_config["mathjaxConfig"] = "null"
        return page_config

    voila_configuration.page_config_hook = offline
    return voila_configuration


def panel_handlers(
    base_url: str,
    *,
    config: Config | None = None,
    cull_after: float = DEFAULT_CULL_AFTER_SECONDS,
    cull_interval: float = DEFAULT_CULL_INTERVAL_SECONDS,
    warm: WarmKernels | None = None,
    notebook_dir: Path = PANEL_DIR,
    notebook: str = PANEL_NOTEBOOK,
    url: str = PANEL_URL,
) -> list[tuple[str, type, dict[str, Any]]]:
    """The tornado handlers serving the Voila-rendered panel at ``{base_url}workbench/panel``
    (or another packaged notebook at ``url``: the reviewers' dashboard).

    ``base_url`` is prefixed as given: pass ``"/"`` from an ``ExtensionApp``'s
    ``initialize_handlers`` (``ExtensionApp`` prepends the server's ``base_url`` itself) and
    the server's ``base_url`` when adding the handlers to ``web_app`` directly.
    ``config``: the traitlets config whose ``c.VoilaConfiguration`` applies to the panel;
    by default the server's own (read from the web app's settings on the first request).
    ``cull_after``: seconds a panel kernel may go without any browser connected before it
    is shut down (``0`` disables culling).
    ``warm``: the kernels kept warm for these pages (may be shared by several notebooks);
    none by default.
    """
    culler = PanelKernelCuller(cull_after=cull_after, interval=cull_interval)
    warm = warm if warm is not None else WarmKernels(0)
    panel = PanelSettings(notebook_dir, notebook, culler, warm, config)
    return [(url_path_join(base_url or "/", url), WorkbenchPanelHandler, {"panel": panel})]
