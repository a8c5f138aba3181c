"""The way into a workspace's JupyterLab: ``{base_url}workbench/proxy/workspaces/<id>/...``.

A workspace's JupyterLab listens on a port published on 127.0.0.1 only; users reach it
through this reverse proxy alone, HTTP (bodies streamed both ways) and websockets.

- Who: jupyter_server's login (cookie, or this server's own token); a Workbench API token
  (``wb_...``) does not open it. The Jupyter user is the registry user of the same name;
  only the workspace's owner and members get in (anyone else: 404).
- Toward the container the proxy sends the workspace's token (``Authorization: token``),
  which the browser never sees (it is blanked out of HTML pages), and drops the browser's
  ``Authorization``, ``Cookie``, ``Origin`` and XSRF headers and ``token`` query argument:
  this server's credentials never reach code running in a workspace.
- Cookies and XSRF: the container's ``Set-Cookie`` headers are dropped, so the browser
  holds one login cookie and one ``_xsrf`` cookie, this server's. The container needs none:
  each request carries its token, and token-authenticated requests skip its XSRF check. Its
  JupyterLab sends this server's ``_xsrf`` back as ``X-XSRFToken``, checked here on
  cookie-authenticated POST/PUT/PATCH/DELETE exactly as on this server's own routes.
- An origin per workspace: JupyterLab cannot run sandboxed (it reads the ``_xsrf``
  cookie and ``localStorage`` and calls ``api/`` with the login cookie, all refused to an
  opaque origin), and on this server's origin the script of a workspace's pages would run
  as whoever opens them, calling this server's API with their cookies (a member opening a
  workspace whose owner changed its JupyterLab, say). So JupyterLab's application pages
  (:data:`APP_PAGES`) are served on an origin of the workspace's own: a port of this
  server's address, opened on first use by :class:`WorkspaceOrigins`, that serves that
  workspace's relay and nothing else. This server's routes refuse requests from it (their
  origin check), and a request for ``lab`` or ``doc/...`` here is redirected there. The
  login cookie is the same (browsers send a host's cookies to all its ports), so a user
  logged in here is logged in there. ``c.WorkbenchApp.workspace_origins = "shared"`` keeps
  every page on this origin, for a server behind a proxy that exposes one port only
  (docs/security.md says what that costs).
- Pages in a sandbox: every other relayed response, on either origin, gets
  ``Content-Security-Policy:`` :data:`SANDBOX` (no ``allow-same-origin``: the page runs in
  an opaque origin, without cookies, storage or API), the container's own policies dropped;
  the application pages get ``frame-ancestors 'self'`` only.
- Errors are JSON: not running 409; JupyterLab not answering yet 503 with ``Retry-After``.

The container's JupyterLab must serve under the same path: its base URL is
:func:`proxy_prefix` of this server's base URL plus ``<id>/``.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlencode

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    WebSocketHandler,
    websocket_connect,
)

from workbench.errors import Conflict, PermissionDenied, WorkbenchError, WorkspaceNotReady
from workbench.services import Workbench
from workbench_ext.handlers.base import FROM_ANOTHER_SITE
from workbench_ext.identity import from_another_site, workbench_secret

PROXY_PATH = "workbench/proxy/workspaces/"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade"}
)
#: never forwarded: this server's credentials, and what the proxy sets itself
DROPPED = HOP_BY_HOP | {"host", "authorization", "cookie", "origin", "accept-encoding"}
DROPPED |= {"x-xsrftoken", "x-csrftoken", "expect"}
DROPPED_WS = DROPPED | {"sec-websocket-key", "sec-websocket-version"}
DROPPED_WS |= {"sec-websocket-extensions", "sec-websocket-protocol"}
#: never returned: the container sets no cookie, clears no site data, registers no service
#: worker beyond its own path in the browsers of this server's users, and sets no policy
NOT_RETURNED = HOP_BY_HOP | {"set-cookie", "clear-site-data", "service-worker-allowed"}
NOT_RETURNED |= {"content-security-policy", "content-security-policy-report-only"}
#: the policy of every relayed response (module doc): scripts run, in an opaque origin
SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
#: JupyterLab's application pages (``lab``, ``lab/...``, ``doc/...``), relative to the
#: workspace's prefix: served on the workspace's own origin (module doc)
APP_PAGES = ("lab", "doc")
#: their policy: framed by this server's pages only
APP_POLICY = "frame-ancestors 'self'"
#: headers of a request that came through a reverse proxy, which would not reach the
#: workspace's port (nor, over TLS, keep the login cookie off the network)
BEHIND_A_PROXY = frozenset({"forwarded", "x-forwarded-for", "x-forwarded-host"})
BEHIND_A_PROXY |= {"x-forwarded-proto", "x-real-ip"}
BEHIND_A_PROXY_MESSAGE = (
    "This server is reached through a reverse proxy, which cannot reach the port of the "
    "workspace's own origin. Ask the server's admin to set "
    "c.WorkbenchApp.workspace_origins = 'shared' (see docs/security.md for what it costs)."
)


def proxy_prefix(base_url: str) -> str:
    """The path under which this server proxies workspaces (``WorkspaceService.proxy_prefix``)."""
    return url_path_join(base_url, PROXY_PATH)


class Route(NamedTuple):
    upstream: str  # host:port of the workspace's JupyterLab
    token: str  # its token
    identity: str  # which workspace of that id (WorkspaceService.identity)


def route(wb: Workbench, username: str, workspace_id: int) -> Route:
    """Where the workspace's JupyterLab is and its token, for this Jupyter user."""
    actor = wb.users.find(username)
    if actor is None:
        raise PermissionDenied(
            f"Jupyter user {username!r} has no Workbench account; ask an admin to run "
            f"`workbench user add {username}`.",
            username=username,
        )
    host, port = wb.workspaces.endpoint(actor, workspace_id)
    return Route(
        f"{host}:{port}",
        wb.workspaces.jupyter_token(workspace_id),
        wb.workspaces.identity(workspace_id),
    )


def proxy_client(settings: dict[str, Any]) -> AsyncHTTPClient:
    """The HTTP client of every relay, made once per server: more connections than
    tornado's default, no size cap."""
    if "workbench_proxy_client" not in settings:
        settings["workbench_proxy_client"] = AsyncHTTPClient(
            force_instance=True, max_clients=64, max_body_size=2**50
        )
    return settings["workbench_proxy_client"]


class WorkspaceOrigins:
    """An origin per workspace: a port of this server's address (``ServerApp.ip``), opened
    the first time someone is sent there, whose only route is that workspace's relay. Its
    web application has this server's settings (login, XSRF, authorization, the
    Workbench; not its static files), and ``workbench_login_port`` tells the identity
    provider which port's login cookie to read.

    An origin belongs to one workspace (:class:`Route` ``identity``), not to its id: a
    workspace made later with a deleted one's id gets an origin of its own, and what the
    old one's pages left in the browser there (storage, service workers) never runs on
    it. The least recently opened are closed past :attr:`limit`.
    """

    limit: ClassVar[int] = 256

    def __init__(self, serverapp: ServerApp) -> None:
        self.serverapp = serverapp
        #: identity -> (port, its server), the most recently opened last
        self._open: OrderedDict[str, tuple[int, HTTPServer]] = OrderedDict()

    def port(self, workspace_id: int, identity: str) -> int:
        if identity in self._open:
            self._open.move_to_end(identity)
            return self._open[identity][0]
        app = self.serverapp
        path = url_path_join(app.base_url, rf"{PROXY_PATH}({workspace_id})(/.*)?")
        settings = {k: v for k, v in app.web_app.settings.items() if not k.startswith("static")}
        settings.update(
            workbench_origin=identity,
            workbench_login_port=app.port,
            workbench_proxy_client=proxy_client(app.web_app.settings),
        )
        sockets = bind_sockets(0, address=app.ip if app.ip not in ("", "*") else None)
        server = HTTPServer(
            web.Application([(path, WorkspaceProxyHandler)], **settings),
            ssl_options=app.ssl_options,
            xheaders=app.trust_xheaders,
        )
        server.add_sockets(sockets)
        stale = [k for k in self._open if k.split("@")[0] == str(workspace_id)]
        for key in stale + list(self._open)[: max(0, len(self._open) - self.limit + 1)]:
            if key in self._open:
                self._close(key)
        self._open[identity] = sockets[0].getsockname()[1], server
        return self._open[identity][0]

    def _close(self, identity: str) -> None:
        _, server = self._open.pop(identity)
        server.stop()  # and, soon after, the open tabs' connections
        IOLoop.current().add_callback(server.close_all_connections)

    def close(self) -> None:
        for identity in list(self._open):
            self._close(identity)


@web.stream_request_body
class WorkspaceProxyHandler(WebSocketHandler, JupyterHandler):
    """Every check happens in :meth:`prepare`, before a request body is read; the HTTP
    relay to the container starts there too, and the verbs wait for it."""

    auth_resource = "workbench:workspaces"  # authorizer: "execute" on it
    connect_timeout: ClassVar[float] = 10
    request_timeout: ClassVar[float] = 3600

    workspace_id: int
    upstream: str  # host:port of the container's JupyterLab
    container_token: str
    _body: asyncio.Queue[bytes | None]  # the request body on its way (None: its end)
    _relay: asyncio.Future[None] | None = None
    _status: httputil.ResponseStartLine
    _upstream_headers: httputil.HTTPHeaders
    _html: list[bytes]
    _ws: WebSocketClientConnection | None = None
    _pump: asyncio.Future[None]  # container -> browser
    _started = _scrub = _gone = False

    async def prepare(self) -> None:  # type: ignore[override]
        if from_another_site(self.request):
            raise web.HTTPError(403, FROM_ANOTHER_SITE)
        upgrade = self.request.headers.get("Upgrade", "").lower() == "websocket"
        # no user: a page goes to the login page; the API, websockets and a workspace's own
        # origin (which has no login page) get 403
        own_origin = "workbench_origin" in self.settings
        api = upgrade or (self.path_args[1] or "").startswith("/api/")
        await super().prepare(_redirect_to_login=not (api or own_origin))
        if self._finished:
            return
        user = self.current_user
        if user is None or not await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", self.auth_resource)
        ):
            raise web.HTTPError(403)
        if not self.check_origin():
            raise web.HTTPError(404)
        self.workspace_id = int(self.path_args[0])
        self.upstream, self.container_token, identity = await IOLoop.current().run_in_executor(
            None, route, self.settings["workbench"], user.username, self.workspace_id
        )
        if own_origin and identity != self.settings["workbench_origin"]:
            raise web.HTTPError(404)  # an origin of an earlier workspace with this id
        origins: WorkspaceOrigins | None = self.settings.get("workbench_origins")
        if origins is not None and self._app_page() and not own_origin:
            if BEHIND_A_PROXY & {h.lower() for h in self.request.headers}:
                raise Conflict(BEHIND_A_PROXY_MESSAGE)
            port = origins.port(self.workspace_id, identity)
            where = f"{self.request.protocol}://{self.request.host_name}:{port}"
            self.redirect(where + self._uri())
            return
        if not upgrade:
            self._body = asyncio.Queue(maxsize=4)
            self._relay = asyncio.ensure_future(self._fetch())

    def check_origin(self, origin: str = "") -> bool:
        return JupyterHandler.check_origin(self)

    @web.authenticated
    async def get(self, workspace_id: str, path: str | None) -> None:
        if self._relay is not None:
            return await self._respond()
        await self._open_websocket()
        try:  # returns when the websocket closes, or at once if the handshake is refused
            await WebSocketHandler.get(self, workspace_id, path)
        finally:
            assert self._ws is not None
            self._ws.close()

    @web.authenticated
    async def head(self, workspace_id: str, path: str | None) -> None:
        await self._respond()

    post = put = patch = delete = options = head

    # --- HTTP -----------------------------------------------------------------------------

    async def data_received(self, chunk: bytes) -> None:
        await self._feed(chunk)

    async def _feed(self, chunk: bytes | None) -> None:
        """Pass a piece of the request body on; dropped once the relay has ended."""
        assert self._relay is not None
        if not self._relay.done():
            put = asyncio.ensure_future(self._body.put(chunk))
            await asyncio.wait({put, self._relay}, return_when=asyncio.FIRST_COMPLETED)
            put.cancel()

    async def _produce(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        while (chunk := await self._body.get()) is not None:
            if self._gone:
                raise StreamClosedError()  # the container must not keep half a body
            await write(chunk)

    async def _respond(self) -> None:
        assert self._relay is not None
        await self._feed(None)
        await self._relay

    async def _fetch(self) -> None:
        method = self.request.method or "GET"
        has_body = method in ("POST", "PUT", "PATCH") or any(
            h in self.request.headers for h in ("Content-Length", "Transfer-Encoding")
        )
        request = HTTPRequest(
            f"http://{self.upstream}{self._uri()}",
            method=method,
            headers=self._forwarded_headers(DROPPED),
            body_producer=self._produce if has_body else None,
            header_callback=self._on_header,
            streaming_callback=self._on_chunk,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
        )
        client = proxy_client(self.settings)
        try:  # the container's error statuses are answers too: only lost connections raise
            await client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # HTTPClientError: 599, no answer
            if not self._started:  # JupyterLab does not listen (yet)
                raise WorkspaceNotReady(self.workspace_id) from exc
            self.log.warning("workspace %s: cut off midway: %s", self.workspace_id, exc)
            self.request.connection.close()  # type: ignore[union-attr]  # not a whole body
            return
        if self._scrub:
            self.write(b"".join(self._html).replace(self.container_token.encode(), b""))

    def _on_header(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if line.startswith("HTTP/"):
            self._status = httputil.parse_response_start_line(line)
            self._upstream_headers = httputil.HTTPHeaders()
        elif line:
            self._upstream_headers.parse_line(line)
        elif self._status.code >= 200:  # not an interim 1xx
            self._start_response(self._status, self._upstream_headers)

    def _start_response(
        self, status: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> None:
        self._started = True
        self.set_status(status.code, status.reason)
        self.clear_header("Content-Type")
        # JupyterLab's pages carry the container's token: HTML is rewritten whole
        self._scrub, self._html = headers.get("Content-Type", "").startswith("text/html"), []
        seen: set[str] = set()
        for name, value in headers.get_all():
            key = name.lower()
            if key in NOT_RETURNED or (self._scrub and key == "content-length"):
                continue
            if key == "location":
                value = value.removeprefix(f"http://{self.upstream}")
            (self.add_header if key in seen else self.set_header)(name, value)
            seen.add(key)
        self.set_header("Content-Security-Policy", self._policy())

    def _app_page(self) -> bool:
        """Whether the request is for one of JupyterLab's application pages."""
        return (self.path_args[1] or "/").lstrip("/").split("/", 1)[0] in APP_PAGES

    def _policy(self) -> str:
        """:data:`APP_POLICY` for JupyterLab's application pages, :data:`SANDBOX` for the
        rest (module doc)."""
        return APP_POLICY if self._app_page() else SANDBOX

    def _on_chunk(self, chunk: bytes) -> None:
        if self._gone:
            raise StreamClosedError()  # the browser left: stop reading
        if self._scrub:
            self._html.append(chunk)
        else:
            self.write(chunk)
            self.flush()

    def on_connection_close(self) -> None:
        self._gone = True
        if self._relay is not None:
            with suppress(asyncio.QueueFull):
                self._body.put_nowait(b"")  # wake _produce, which then aborts
        super().on_connection_close()

    # --- websockets -----------------------------------------------------------------------

    async def _open_websocket(self) -> None:
        offered = self.request.headers.get("Sec-WebSocket-Protocol", "")
        request = HTTPRequest(
            f"ws://{self.upstream}{self._uri()}",
            headers=self._forwarded_headers(DROPPED_WS),
            connect_timeout=self.connect_timeout,
        )
        try:
            self._ws = await websocket_connect(
                request,
                subprotocols=[p.strip() for p in offered.split(",") if p.strip()] or None,
                max_message_size=self.max_message_size,
            )
        except HTTPClientError as exc:
            if exc.code != 599:  # the container answered: pass its refusal on
                raise web.HTTPError(exc.code) from exc
            raise WorkspaceNotReady(self.workspace_id) from exc
        except (OSError, WebSocketError) as exc:
            raise WorkspaceNotReady(self.workspace_id) from exc

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self._ws.selected_subprotocol if self._ws is not None else None

    def open(self, *args: str, **kwargs: str) -> None:
        self._pump = asyncio.ensure_future(self._from_container())

    async def _from_container(self) -> None:
        assert self._ws is not None
        while (message := await self._ws.read_message()) is not None:
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                break
        self.close(self._ws.close_code, self._ws.close_reason)

    async def on_message(self, message: str | bytes) -> None:
        assert self._ws is not None
        try:
            await self._ws.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self._ws is not None:
            self._ws.close()

    # --- helpers --------------------------------------------------------------------------

    def _uri(self) -> str:
        """The request's path and query, less a ``token`` argument (this server's token)."""
        args = self.request.query_arguments
        if "token" not in args:
            return self.request.uri or "/"
        kept = [(k, v) for k, values in args.items() if k != "token" for v in values]
        return f"{self.request.path}?{urlencode(kept)}" if kept else self.request.path

    def _forwarded_headers(self, dropped: frozenset[str]) -> httputil.HTTPHeaders:
        headers = httputil.HTTPHeaders()
        for name, value in self.request.headers.get_all():
            if name.lower() not in dropped:
                headers.add(name, value)
        headers["Authorization"] = f"token {self.container_token}"
        return headers

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, WorkbenchError):
            body, status_code = exc.to_dict(), exc.status
            if isinstance(exc, WorkspaceNotReady):
                self.set_header("Retry-After", str(exc.retry_after_s))
        else:
            message = getattr(exc, "log_message", None) or self._reason
            if status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
                message = "Log in to JupyterLab first."
                if workbench_secret(self):
                    message += " Workbench API tokens (wb_...) are for the REST API only."
            body = {"error": f"http_{status_code}", "message": message, "details": {}}
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, WorkbenchError):  # expected: one line, and its cause
            why = f" ({value.__cause__!r})" if value.__cause__ else ""
            self.log.info("%s %s -> %s%s", self.request.method, self.request.path, value.code, why)
            return
        super().log_exception(typ, value, tb)


handlers = [(rf"/{PROXY_PATH}(\d+)(/.*)?", WorkspaceProxyHandler)]
