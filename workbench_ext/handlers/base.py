"""The base of every Workbench REST handler: who is acting, what a scoped token may do
(:mod:`workbench.scopes`: each handler names the scope a method needs in
:attr:`WorkbenchHandler.token_scopes`, checked in :meth:`WorkbenchHandler.prepare` for
every route), what each method is (:func:`operation`: the one place an operation is
declared; the OpenAPI document is generated from it), uploads streamed to disk
(:class:`UploadHandler`), JSON in and out, errors. The handlers that are each one call of
a service are declared in :mod:`workbench_ext.handlers.resource`.

Errors are rendered in one place (:meth:`WorkbenchHandler.write_error`) as
``{"error": code, "message": ..., "details": {...}}``; internals never leak.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.ioloop import IOLoop

from workbench import scopes
from workbench.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    WorkbenchError,
)
from workbench.services import Workbench
from workbench.store import StoredFile, Upload
from workbench.users import Actor
from workbench_ext.identity import from_another_site

API = "/workbench/api/v1"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """What one method of a route does, as its users and the OpenAPI document see it."""

    summary: str
    #: the JSON body's type (pydantic), if it takes one
    request: Any = None
    #: the reply's type (a pydantic model, ``list[...]``), if it has a JSON body
    response: Any = None
    #: the status of a success
    status: int = 200
    #: the query parameters it reads
    query: tuple[str, ...] = ()
    #: ``archive``: the body is a zip or tar(.gz) upload, not JSON
    body: Literal["json", "archive"] = "json"


def operation(
    summary: str,
    request: Any = None,
    response: Any = None,
    status: int = 200,
    *,
    query: tuple[str, ...] = (),
    body: Literal["json", "archive"] = "json",
) -> Callable[[F], F]:
    """Declare a handler method's operation, on the method (outermost decorator)::

        @operation("Create a dataset (state draft)", DatasetCreate, DatasetInfo, 201)
        @web.authenticated
        @authorized
        async def post(self) -> None: ...

    ``workbench_ext.routes`` walks every route's methods and reads it back; a served
    method without one fails the docs test."""

    def declare(method: F) -> F:
        method.operation = Operation(summary, request, response, status, query, body)  # type: ignore[attr-defined]
        return method

    return declare


NO_AUTH = Unauthenticated(
    "Authentication required: send 'Authorization: token <Workbench token>' "
    "(create one with `workbench token create`) or log in to JupyterLab."
)

#: why a browser's request for a page of another origin is refused (identity.py)
FROM_ANOTHER_SITE = (
    "Refused: the browser sent this request for a page of another origin (a workspace's "
    "JupyterLab, say). Call the Workbench API from its own pages, the client or the CLI."
)


class WorkbenchHandler(APIHandler):
    auth_resource = "workbench"
    #: the scope (:mod:`workbench.scopes`) a scoped token needs for each method; a method
    #: not named here is closed to scoped tokens (a workspace's), whatever their user may
    token_scopes: ClassVar[Mapping[str, str]] = scopes.needs()
    actor: Actor

    @property
    def workbench(self) -> Workbench:
        return self.settings["workbench"]

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking service code on the executor, off the event loop."""
        return await IOLoop.current().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def authenticate_workbench_token(self, secret: str) -> Actor | None:
        """Called by the identity provider for requests with a Workbench token."""
        try:
            self.actor = await self.run(self.workbench.users.authenticate, secret)
        except Unauthenticated as exc:
            self._auth_error = exc
            return None
        return self.actor

    async def prepare(self) -> None:  # type: ignore[override]
        if from_another_site(self.request):
            raise PermissionDenied(FROM_ANOTHER_SITE)
        await super().prepare()
        if self.current_user is None:
            return
        if not hasattr(self, "actor"):  # a Jupyter login, not a Workbench token
            username = self.current_user.username
            actor = await self.run(self.workbench.users.find, username)
            if actor is None:
                raise PermissionDenied(
                    f"Jupyter user {username!r} has no Workbench account; ask an admin to "
                    f"run `workbench user add {username}`.",
                    username=username,
                )
            self.actor = actor
        if self.actor.scope != "full":
            await self.run(
                scopes.check,
                self.workbench.registry,
                scope=self.actor.scope,
                user_id=self.actor.id,
                needed=self.token_scopes.get(self.request.method or ""),
                route=f"{self.request.method} {self.request.path}",
                target=self.scope_target(),
                visibility=scopes.visibility_asked(self.request.query_arguments, self.request.body),
            )

    def scope_target(self) -> int | None:
        """The id a filtered scope (``!workspace``, ``!mounted``) is checked against: the
        route's first id; a route that names its workspace elsewhere says so."""
        first = self.path_args[0] if self.path_args else ""
        return int(first) if isinstance(first, str) and first.isdigit() else None

    # --- input and output -----------------------------------------------------------------

    def parse(self, model: type[M]) -> M:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise InvalidInput(f"The request body is not valid JSON: {exc}.") from exc
        return validate(model, data)

    def query(self, model: type[M]) -> M:
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        return validate(model, args)

    async def send_zip(self, path: Path, name: str) -> None:
        """Stream the zip at ``path`` as the download ``name``, then delete it."""
        try:
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            with path.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    self.write(chunk)
                    await self.flush()
        finally:
            path.unlink(missing_ok=True)
        self.finish()

    def reply(self, payload: BaseModel | list[Any] | dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        if isinstance(payload, BaseModel):
            body = payload.model_dump_json()
        else:
            body = json.dumps(_jsonable(payload))
        self.finish(body)

    # --- errors ---------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, WorkbenchError):
            error = exc
        elif status_code == 403 and self.current_user is None:
            error = getattr(self, "_auth_error", NO_AUTH)
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            error = WorkbenchError(exc.log_message or exc.reason or self._reason)
            self.set_status(status_code)
            self.finish(json.dumps({**error.to_dict(), "error": f"http_{status_code}"}))
            return
        else:
            error = WorkbenchError("Internal error; the server log has the details.")
        self.set_status(error.status)
        self.finish(json.dumps(error.to_dict(), default=str))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, WorkbenchError) and value.status < 500:
            self.log.info(
                "%s %s -> %s: %s", self.request.method, self.request.path, value.code, value.message
            )
            return
        super().log_exception(typ, value, tb)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False)
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        raise InvalidInput(f"Invalid request: {summary}.", problems=problems) from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


#: a refused upload of at most this many bytes is read (and dropped) before the answer: a
#: client that has sent it whole then reads the error, where closing on its unread bytes
#: would reset the connection under it; a larger one is answered at once, without waiting
DRAIN_BYTES = 1024**2


@web.stream_request_body
class UploadHandler(WorkbenchHandler):
    """Base of the PUT routes whose body is a file: it is streamed to a temporary file in
    the store as it arrives (never held in memory), refused from its headers when
    :meth:`check_upload` says no or it is too large, and discarded if the client goes away.
    """

    upload: Upload | None = None
    upload_error: WorkbenchError | None = None

    async def check_upload(self, *path_args: str) -> None:
        """Raise to refuse the upload before its body is read (unknown id, not yours...)."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method != "PUT" or self.current_user is None:
            return
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.isdigit() else None
        try:
            await self.check_upload(*self.path_args)
            # the owner's upload_bytes quota: refused from the declared size before any
            # byte is stored, else once the body passes the room left
            allowance = await self.run(self.workbench.quotas.upload_allowance, self.actor.id)
            if size is not None and size > allowance.room:
                raise allowance.refused(size)
        except WorkbenchError as exc:
            if size is None or size > DRAIN_BYTES:
                raise  # answered at once; the connection closes on the rest of the body
            # a small body is read and dropped first, so the client, still sending it,
            # reads the error rather than a reset connection
            self.upload_error = exc
            return
        limit = self.workbench.settings.archive_limits.max_archive_bytes
        self.request.connection.set_max_body_size(limit + 1)  # type: ignore[union-attr]
        if allowance.room < limit:
            self.upload = self.workbench.store.begin_upload(
                allowance.room, size, too_large=allowance.refused
            )
        else:
            self.upload = self.workbench.store.begin_upload(limit, size)

    def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self.upload_error is not None:
            return
        try:
            self.upload.write(chunk)
        except WorkbenchError as exc:  # over the limit: keep reading, refuse at the end
            self.upload_error = exc

    @contextmanager
    def received(self) -> Iterator[StoredFile]:
        """The finished upload, deleted when the block ends (the error that refused it,
        raised)."""
        if self.upload_error is not None:
            raise self.upload_error
        assert self.upload is not None
        try:
            yield self.upload.finish()
        finally:
            self.upload.discard()

    def on_connection_close(self) -> None:
        if self.upload is not None:
            self.upload.discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.discard()


class NotFoundHandler(WorkbenchHandler):
    """Any other path under the API: a JSON 404 naming the path."""

    @web.authenticated
    def get(self, path: str) -> None:
        raise NotFound(f"No API route {self.request.path}; see {API}/openapi.json.")

    post = put = patch = delete = get
