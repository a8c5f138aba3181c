"""``WorkbenchApp``: the jupyter_server extension that serves the Workbench."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Bool, Enum, Float, Int, Unicode

from workbench.config import Settings, WorkspaceLimits
from workbench.datasets.types import ArchiveLimits
from workbench.enums import Role
from workbench.errors import BackendError, WorkbenchError
from workbench.services import Workbench
from workbench_ext import proxy
from workbench_ext.handlers.base import API, NotFoundHandler
from workbench_ext.identity import WorkbenchIdentityProvider
from workbench_ext.panel import (
    DASHBOARD_NOTEBOOK,
    DASHBOARD_URL,
    WarmKernels,
    notebook_kernel_name,
    panel_handlers,
)
from workbench_ext.routes import api_routes

SESSION_TOKEN = "jupyterlab-session"
#: the name workspace containers reach this server by
WORKSPACE_HOST = "workbench-host"


class WorkbenchApp(ExtensionApp):
    name = "workbench_ext"
    description = "Workbench: datasets, workspaces, algorithms, training and serving."

    home = Unicode(
        None,
        allow_none=True,
        help="Folder holding the embedded registry (registry.db) and the artifact store. "
        "Default: $WORKBENCH_HOME, else ~/.workbench.",
        config=True,
    )
    db_url = Unicode(
        None,
        allow_none=True,
        help="SQLAlchemy URL of the registry, e.g. postgresql+psycopg://user@host/db. "
        "Default: $WORKBENCH_DB_URL, else SQLite in `home`.",
        config=True,
    )
    store_dir = Unicode(
        None,
        allow_none=True,
        help="Folder of the artifact store (datasets, images, models). "
        "Default: $WORKBENCH_STORE, else `home`/store.",
        config=True,
    )
    backend = Unicode(
        None,
        allow_none=True,
        help="Where workspaces and tasks run: docker (auto is the same), local (single-user "
        "mode: plain processes, no isolation, no model imports) or fake (tests). Default: "
        "$WORKBENCH_BACKEND, else auto.",
        config=True,
    )
    workspace_api_url = Unicode(
        None,
        allow_none=True,
        help="The URL a workspace container uses to reach this server's REST API "
        "(WORKBENCH_URL inside the workspace). Default: $WORKBENCH_WORKSPACE_API_URL.",
        config=True,
    )
    max_workspace_cpus = Float(
        None,
        allow_none=True,
        config=True,
        help=f"Most CPUs one workspace may ask for. Default: {WorkspaceLimits.max_cpus}.",
    )
    max_workspace_memory_mb = Int(
        None,
        allow_none=True,
        config=True,
        help="Most memory (MiB) one workspace may ask for. "
        f"Default: {WorkspaceLimits.max_memory_mb}.",
    )
    max_workspace_gpus = Int(
        None,
        allow_none=True,
        config=True,
        help=f"Most GPUs one workspace may ask for. Default: {WorkspaceLimits.max_gpus}.",
    )
    workspace_origins = Enum(
        ["port", "shared"],
        default_value="port",
        help="""Where a workspace's JupyterLab pages run. "port": on an origin of the
        workspace's own, a port of this server's address opened on first use, so a script
        in a workspace never runs with this server's origin. "shared": on this server's
        origin, for a server behind a proxy that exposes one port only; a workspace's
        owner can then run script as the members who open it (docs/security.md).""",
        config=True,
    )
    upgrade_on_start = Bool(
        False,
        help="Apply registry migrations when the server starts (otherwise run "
        "`workbench db upgrade`; the server refuses to serve an out-of-date schema).",
        config=True,
    )
    max_archive_bytes = Int(
        None,
        allow_none=True,
        config=True,
        help=f"Largest archive accepted by an upload. Default: {ArchiveLimits.max_archive_bytes}.",
    )
    max_unpacked_bytes = Int(
        None,
        allow_none=True,
        config=True,
        help="Largest total size of an archive's files once unpacked. "
        f"Default: {ArchiveLimits.max_total_bytes}.",
    )
    max_archive_files = Int(
        None,
        allow_none=True,
        config=True,
        help=f"Most files one archive may hold. Default: {ArchiveLimits.max_files}.",
    )
    max_compression_ratio = Float(
        None,
        allow_none=True,
        config=True,
        help="Largest unpacked size / archive size (zip bombs). "
        f"Default: {ArchiveLimits.max_ratio}.",
    )

    panel_warm_kernels = Int(
        1,
        config=True,
        help="Kernels kept started for the side panel and the dashboard, their imports "
        "done, so that a page opens in about a second; 0: each page starts its own.",
    )

    def workbench_settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of this server: the environment's (``Settings.from_env``, the one
        source of every ``WORKBENCH_*`` variable), then the traits a user set over them."""

        def given(**values: Any) -> dict[str, Any]:
            return {name: value for name, value in values.items() if value not in (None, "")}

        return Settings.from_env(
            environ,
            **given(
                home=self.home and Path(self.home),
                db_url=self.db_url,
                store_dir=self.store_dir and Path(self.store_dir),
                backend=self.backend,
                workspace_api_url=self.workspace_api_url,
            ),
            workspace_limits=WorkspaceLimits(
                **given(
                    max_cpus=self.max_workspace_cpus,
                    max_memory_mb=self.max_workspace_memory_mb,
                    max_gpus=self.max_workspace_gpus,
                )
            ),
            archive_limits=ArchiveLimits(
                **given(
                    max_archive_bytes=self.max_archive_bytes,
                    max_total_bytes=self.max_unpacked_bytes,
                    max_files=self.max_archive_files,
                    max_ratio=self.max_compression_ratio,
                )
            ),
        )

    def _link_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """Install the Workbench's identity provider unless another one was configured.

        Config files in ``jupyter_server_config.d`` can only enable extensions, so this is
        the one place that can make a plain ``jupyter lab`` use it (linking happens before
        the server builds its identity provider).
        """
        super()._link_jupyter_server_extension(serverapp)
        if serverapp.identity_provider_class is PasswordIdentityProvider:
            serverapp.identity_provider_class = WorkbenchIdentityProvider

    def initialize_settings(self) -> None:
        wb = Workbench.from_settings(self.workbench_settings())
        wb.workspaces.proxy_prefix = proxy.proxy_prefix(self.serverapp.base_url)
        if self.upgrade_on_start:
            wb.registry.upgrade()
        wb.registry.check_schema()
        self.settings["workbench"] = wb
        self.settings["workbench_warm_kernels"] = WarmKernels(self.panel_warm_kernels)
        if self.workspace_origins == "port":
            self.settings["workbench_origins"] = proxy.WorkspaceOrigins(self.serverapp)
            app = self.serverapp
            if app.allow_origin or app.allow_origin_pat or app.disable_check_xsrf:
                self.log.warning(
                    "Workbench: allow_origin, allow_origin_pat or disable_check_xsrf is set: "
                    "a workspace's pages, on their own origin, may then call this server's "
                    "API as whoever opens them (docs/security.md)."
                )
        self._export_session_credentials(wb)

    def _export_session_credentials(self, wb: Workbench) -> None:
        """Give this server's kernels (the side panel's included) the owner's identity.

        Kernels inherit the server's environment: ``WORKBENCH_URL`` and a fresh token of
        the owner let the ``workbench`` client in them call this API as the owner.
        """
        provider = self.serverapp.identity_provider
        if not isinstance(provider, WorkbenchIdentityProvider):
            self.log.warning(
                "Workbench: ServerApp.identity_provider_class is not "
                "WorkbenchIdentityProvider; kernels get no Workbench token."
            )
            return
        owner = wb.users.ensure_owner(provider.owner)
        url = self.serverapp.connection_url
        # one session token per server address: a restart replaces its own, not another's
        token = wb.users.replace_token(
            owner.id, f"{SESSION_TOKEN} {url}", expires_in=timedelta(days=30)
        )
        os.environ["WORKBENCH_URL"] = url
        os.environ["WORKBENCH_TOKEN"] = token.secret
        self.log.info("Workbench: registry %s, acting owner %r", wb.registry.url, owner.username)

    def initialize_handlers(self) -> None:
        self.handlers.extend(api_routes())
        warm: WarmKernels = self.settings["workbench_warm_kernels"]
        self.handlers.extend(panel_handlers("/", warm=warm))  # ExtensionApp prefixes base_url
        self.handlers.extend(
            panel_handlers("/", warm=warm, notebook=DASHBOARD_NOTEBOOK, url=DASHBOARD_URL)
        )
        self.handlers.extend(proxy.handlers)
        self.handlers.append((rf"{API}/(.*)", NotFoundHandler))

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """Register the preset environments, let workspaces reach this server, then
        :meth:`Workbench.start`: reconcile the registry with what the backend really runs
        and start the job runner, which takes up the jobs a stopped server left."""
        wb: Workbench = self.settings["workbench"]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._sync_presets, wb)
        if not wb.workspaces.api_url:
            gateway = await loop.run_in_executor(None, self._host_gateway, wb)
            if gateway:
                self._listen_for_workspaces(wb, gateway)
        changed = await loop.run_in_executor(None, wb.start)
        for area, ids in changed.items():
            if ids:
                self.log.warning("Workbench: reconciled %s: %s", area, ids)
        warm: WarmKernels = self.settings["workbench_warm_kernels"]
        if serverapp.shutdown_no_activity_timeout > 0 and warm.size > 0:
            # a kernel kept warm would keep the server from ever stopping for inactivity
            self.log.info("Workbench: no panel kernel kept warm (shutdown_no_activity_timeout)")
        else:
            warm.start(serverapp.kernel_manager, notebook_kernel_name())

    def _host_gateway(self, wb: Workbench) -> str | None:
        """The host's address as the backend's runs reach it (Docker's bridge), if any."""
        try:
            return wb.backend().host_gateway()
        except BackendError as exc:
            self.log.warning("Workbench: workspaces cannot reach this server: %s", exc.message)
            return None

    def _listen_for_workspaces(self, wb: Workbench, gateway: str) -> None:
        """Let workspace containers reach this server's REST API (their WORKBENCH_URL).

        The server usually listens on 127.0.0.1, which a container cannot reach, so the
        same web application also listens on the host's bridge address, and containers
        know it under the name ``workbench-host``. Requests there are authenticated like
        any other. Skipped when ``workspace_api_url`` is configured.
        """
        try:
            sockets = bind_sockets(0, address=gateway)
        except OSError as exc:
            self.log.warning("Workbench: workspaces cannot reach this server: %s", exc)
            return
        HTTPServer(self.serverapp.web_app).add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        self.serverapp.web_app.settings.setdefault("local_hostnames", ["localhost"]).append(
            WORKSPACE_HOST
        )
        wb.workspaces.api_url = f"http://{WORKSPACE_HOST}:{port}{self.serverapp.base_url}"
        wb.workspaces.extra_hosts = {WORKSPACE_HOST: gateway}
        self.log.info("Workbench: workspaces reach this server at %s", wb.workspaces.api_url)

    def _sync_presets(self, wb: Workbench) -> None:
        """Register envs/ as preset environments, so a fresh install lists them."""
        admin = next((u for u in wb.users.list_users() if u.role is Role.ADMIN and u.active), None)
        actor = wb.users.find(admin.username) if admin else None
        if actor is None:
            return
        try:
            presets = wb.environments.sync_presets(actor)
        except WorkbenchError as exc:
            self.log.warning("Workbench: preset environments not registered: %s", exc.message)
            return
        self.log.info("Workbench: preset environments %s", ", ".join(p.name for p in presets))

    async def stop_extension(self) -> None:
        warm: WarmKernels | None = self.settings.get("workbench_warm_kernels")
        if warm is not None:
            await warm.stop()
        origins: proxy.WorkspaceOrigins | None = self.settings.get("workbench_origins")
        if origins is not None:
            origins.close()
        wb: Any = self.settings.get("workbench")
        if wb is not None:
            wb.close()  # stops the job runner; its containers and the proxy run on
