"""The base of every Workbench REST handler: who is acting, what a scoped token may do
(:mod:`workbench.scopes`: each handler names the scope a method needs in
:attr:`WorkbenchHandler.token_scopes`, checked in :meth:`WorkbenchHandler.prepare` for
every route), what each method is (:func:`operation`: the one place an operation is
declared; the OpenAPI document is generated from it), the methods that are one call of a
service (:func:`service_call`) and the handlers made of them (:class:`Resource`: an area's
standard routes and its actions, declared as data), JSON in and out, errors.

Errors are rendered in one place (:meth:`WorkbenchHandler.write_error`) as
``{"error": code, "message": ..., "details": {...}}``; internals never leak.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from jupyter_server.auth.decorator import authorized
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


def service_call(
    summary: str,
    service: Callable[[Workbench], Callable[..., Any]],
    request: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    *,
    path: Mapping[str, Callable[[str], Any]] | None = None,
    query: type[BaseModel] | None = None,
    spread: bool = False,
    keywords: Mapping[str, Any] | None = None,
) -> Callable[..., Awaitable[None]]:
    """A handler method that is one call of a service method, declared as :func:`operation`
    declares a written one (``query``'s fields are the query parameters)::

        get = service_call(
            "One environment",
            lambda wb: wb.environments.get,
            response=EnvironmentInfo,
            path={"env_id": int},
        )

    It calls ``service(workbench)`` off the event loop with the actor, the route's path
    parameters (``path``: their names, as the document gives them, and types, in order),
    the body parsed as ``request`` and the query parsed as ``query``, each whole or, with
    ``spread``, field by field as keywords, then ``keywords``; what that returns is the
    reply (none for a 204). Each call makes a new method, so a route's method is its own
    (and declares its own operation)."""
    converters = dict(path or {})

    async def method(self: WorkbenchHandler, *args: str) -> None:
        values: list[Any] = [
            convert(arg) for convert, arg in zip(converters.values(), args, strict=True)
        ]
        parsed = [self.parse(request)] if request is not None else []
        if query is not None:
            parsed.append(self.query(query))
        named = dict(keywords or {})
        if spread:
            named.update(field for model in parsed for field in model)
        else:
            values += parsed
        result = await self.run(service(self.workbench), self.actor, *values, **named)
        if status == 204:
            self.set_status(204)
            self.finish()
        else:
            self.reply(result, status=status)

    params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in converters]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    fields = tuple(query.model_fields) if query is not None else ()
    declare = operation(summary, request, response, status, query=fields)
    return declare(web.authenticated(authorized(method)))


#: the standard actions of an area (:meth:`Resource.standard`): the HTTP method of each,
#: and whether it is a method of the collection's route or of an item's
STANDARD_ACTIONS = {
    "list": ("get", False),
    "create": ("post", False),
    "get": ("get", True),
    "update": ("patch", True),
    "delete": ("delete", True),
}


@dataclass(frozen=True)
class Resource:
    """An area's items and the handlers of its routes that are each one call of its service,
    declared as data, as a Django REST framework ViewSet declares a model's routes::

        ALGORITHMS = Resource("Algorithm", AlgorithmHandlerBase, lambda wb: wb.algorithms,
                              {"algorithm_id": int}, AlgorithmInfo)
        AlgorithmsHandler, AlgorithmHandler = ALGORITHMS.standard({...summaries...}, ...)
        PublishHandler = ALGORITHMS.action("publish", "Put it online")

    Each method is a :func:`service_call` of the service's method of its name; each handler
    is a new subclass of ``base`` (its ``auth_resource`` and shared behaviour), with the
    ``token_scopes`` its methods are given. The module's URL table places them."""

    #: the stem of the handlers' class names
    name: str
    base: type[WorkbenchHandler]
    #: the area's service
    service: Callable[[Workbench], Any]
    #: the path parameters of one item's routes (:func:`service_call`'s ``path``)
    path: Mapping[str, Callable[[str], Any]]
    #: the reply of an item's standard routes: the item
    info: Any = None

    def standard(
        self,
        summaries: Mapping[str, str],
        *,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        filter: type[BaseModel] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        methods: Mapping[str, str] | None = None,
        scopes: Mapping[str, str] | None = None,
    ) -> tuple[type[WorkbenchHandler], type[WorkbenchHandler]]:
        """The collection's handler and the item's, with the standard actions that
        ``summaries`` names (:data:`STANDARD_ACTIONS`), each with its summary: ``list``
        (``list[info]``; ``filter``, its query), ``create`` (the body a ``create``; 201 with
        the new item), ``get``, ``update`` (the body an ``update``) and ``delete`` (204);
        ``overrides`` changes an action's other :func:`service_call` arguments. Each calls
        the service's method of its action's name (or the one ``methods`` gives it) and is
        open to the scoped tokens with the scope that ``scopes`` gives its action."""
        calls: dict[str, dict[str, Any]] = {
            "list": {"response": list[self.info], "query": filter},
            "create": {"request": create, "response": self.info, "status": 201},
            "get": {"response": self.info},
            "update": {"request": update, "response": self.info},
            "delete": {"status": 204},
        }
        members: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        needs: tuple[dict[str, str], dict[str, str]] = ({}, {})
        for action, summary in summaries.items():
            http, on_item = STANDARD_ACTIONS[action]
            method = (methods or {}).get(action, action)
            path = self.path if on_item else None
            call = {**calls[action], **(overrides or {}).get(action, {})}
            members[on_item][http] = self.call(method, summary, path=path, **call)
            if scopes and action in scopes:
                needs[on_item][http.upper()] = scopes[action]
        return (
            self.handler(f"{self.name}sHandler", members[0], needs[0]),
            self.handler(f"{self.name}Handler", members[1], needs[1]),
        )

    def action(
        self,
        method: str,
        summary: str,
        response: Any = None,
        status: int = 200,
        *,
        http: str = "post",
        scope: str | None = None,
        **call: Any,
    ) -> type[WorkbenchHandler]:
        """The handler of one more route of an item, as a ViewSet's
        ``@action(detail=True)``: its ``http`` method (POST by default) calls the service's
        ``method`` with the item's path parameters; ``call`` holds :func:`service_call`'s
        other arguments. It is open to the scoped tokens with ``scope``, if given."""
        call.setdefault("path", self.path)
        members = {http: self.call(method, summary, response=response, status=status, **call)}
        needs = {http.upper(): scope} if scope else {}
        camel = "".join(part.title() for part in method.split("_"))
        return self.handler(f"{self.name}{camel}Handler", members, needs)

    def call(self, method: str, summary: str, **call: Any) -> Callable[..., Awaitable[None]]:
        """A :func:`service_call` of the service's ``method``."""
        return service_call(summary, lambda wb: getattr(self.service(wb), method), **call)

    def handler(
        self, name: str, members: Mapping[str, Any], needs: Mapping[str, str]
    ) -> type[WorkbenchHandler]:
        """A subclass of ``base`` with ``members``; ``needs``, if any, its ``token_scopes``."""
        attrs = {"__module__": self.base.__module__, **members}
        if needs:
            attrs["token_scopes"] = scopes.needs(**needs)
        return type(name, (self.base,), attrs)


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
