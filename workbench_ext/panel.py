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
"""

from __future__ import annotations

import copy
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


class _TrackingKernelManager:
    """The server's kernel manager, recording the kernels that Voila starts through it."""

    def __init__(self, inner: Any, culler: PanelKernelCuller) -> None:
        self._inner = inner
        self._culler = culler

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        kernel_id = cast(str, await ensure_async(self._inner.start_kernel(*args, **kwargs)))
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
        self, notebook_dir: Path, notebook: str, culler: PanelKernelCuller, config: Config | None
    ) -> None:
        self.notebook = notebook
        self.contents_manager = AsyncFileContentsManager(root_dir=str(notebook_dir))
        self.culler = culler
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
        return _TrackingKernelManager(self.settings["kernel_manager"], self._panel.culler)

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
            self.write(html)
            await self.flush()


def panel_voila_configuration(config: Config | None = None) -> VoilaConfiguration:
    """Voila's settings for the panel: ``c.VoilaConfiguration`` from ``config``, plus the
    ``@workbench/panel`` lab extension denied so that the panel never nests itself."""
    voila_configuration = VoilaConfiguration(config=config or Config())
    denied = list(voila_configuration.extension_denylist or [])
    if LAB_EXTENSION_NAME not in denied:
        voila_configuration.extension_denylist = [*denied, LAB_EXTENSION_NAME]
    return voila_configuration


def panel_handlers(
    base_url: str,
    *,
    config: Config | None = None,
    cull_after: float = DEFAULT_CULL_AFTER_SECONDS,
    cull_interval: float = DEFAULT_CULL_INTERVAL_SECONDS,
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
    """
    culler = PanelKernelCuller(cull_after=cull_after, interval=cull_interval)
    panel = PanelSettings(notebook_dir, notebook, culler, config)
    return [(url_path_join(base_url or "/", url), WorkbenchPanelHandler, {"panel": panel})]
