"""The handlers whose methods are each one call of a service, declared as data: a method
(:func:`service_call`), an area's standard routes and its item actions (:class:`Resource`,
as a Django REST framework ViewSet declares a model's routes), and the request types they
take (:class:`Strict`, :class:`Schemas`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from workbench import scopes
from workbench.services import Workbench
from workbench_ext.handlers.base import UploadHandler, WorkbenchHandler, operation


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
    upload: bool = False,
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
    ``spread``, field by field as keywords, then ``keywords``; with ``upload`` (a method of
    an :class:`UploadHandler`), the stored file comes after the path parameters. What that
    returns is the reply (none for a 204). Each call makes a new method, so a route's method
    is its own (and declares its own operation)."""
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
            parsed = []
        call = functools.partial(service(self.workbench), self.actor, *values)
        if upload:
            assert isinstance(self, UploadHandler)
            with self.received() as stored:
                result = await self.run(call, stored, *parsed, **named)
        else:
            result = await self.run(call, *parsed, **named)
        if status == 204:
            self.set_status(204)
            self.finish()
        else:
            self.reply(result, status=status)

    params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in converters]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    fields = tuple(query.model_fields) if query is not None else ()
    body: Literal["json", "archive"] = "archive" if upload else "json"
    declare = operation(summary, request, response, status, query=fields, body=body)
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


class Strict(BaseModel):
    """A request's body or query that refuses fields it does not name."""

    model_config = ConfigDict(extra="forbid")


class Schemas(NamedTuple):
    """The wire types of an area's items (:meth:`Resource.standard`): the item, the body of
    a create and of an update, the query of the list."""

    info: Any
    create: type[BaseModel] | None = None
    update: type[BaseModel] | None = None
    filter: type[BaseModel] | None = None


@dataclass(frozen=True)
class Resource:
    """An area's items and the handlers of its routes that are each one call of its service,
    declared as data, as a Django REST framework ViewSet declares a model's routes::

        ALGORITHMS = Resource(
            "Algorithm", AlgorithmHandlerBase, "algorithms", ALGORITHM, read=scopes.READ_ALGORITHMS
        )
        AlgorithmsHandler, AlgorithmHandler = ALGORITHMS.standard(
            Schemas(AlgorithmInfo, AlgorithmCreate, AlgorithmUpdate, AlgorithmFilter),
            {...summaries...},
        )
        AlgorithmPublishHandler = ALGORITHMS.action("publish", "Put it online", AlgorithmInfo)

    Each method is a :func:`service_call` of the service's method of its name; each handler
    is a new subclass of ``base`` (its ``auth_resource`` and shared behaviour), with the
    ``token_scopes`` its methods are given. The module's URL table places them."""

    #: the stem of the handlers' class names
    name: str
    base: type[WorkbenchHandler]
    #: the area's service: its attribute of :class:`Workbench`
    service: str
    #: the path parameters of one item's routes (:func:`service_call`'s ``path``)
    path: Mapping[str, Callable[[str], Any]]
    #: the scope a scoped token needs to read the items (their GET routes), if it may
    read: str | None = None

    def standard(
        self,
        schemas: Schemas,
        summaries: Mapping[str, str],
        *,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        methods: Mapping[str, str] | None = None,
        grants: Mapping[str, str] | None = None,
    ) -> tuple[type[WorkbenchHandler], type[WorkbenchHandler]]:
        """The collection's handler and the item's, with the standard actions that
        ``summaries`` names (:data:`STANDARD_ACTIONS`), each with its summary: ``list``
        (``list[info]``, its query a ``filter``), ``create`` (the body a ``create``; 201
        with the new item), ``get``, ``update`` (the body an ``update``) and ``delete``
        (204), of ``schemas``; ``overrides`` changes an action's other
        :func:`service_call` arguments. Each calls the service's method of its action's name
        (or the one ``methods`` gives it). ``get`` and ``list`` are open to the scoped tokens
        with the :attr:`read` scope (``list`` not where it is narrowed to some items, as in
        ``read:datasets!mounted``: a list has no item to check); ``grants`` opens others
        (an action's scope)."""
        info, create, update, filter = schemas
        calls: dict[str, dict[str, Any]] = {
            "list": {"response": list[info], "query": filter},
            "create": {"request": create, "response": info, "status": 201},
            "get": {"response": info},
            "update": {"request": update, "response": info},
            "delete": {"status": 204},
        }
        reads = {"get": self.read}
        if self.read and "!" not in self.read:
            reads["list"] = self.read
        granted = {**reads, **(grants or {})}
        members: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        needs: tuple[dict[str, str], dict[str, str]] = ({}, {})
        for action, summary in summaries.items():
            http, on_item = STANDARD_ACTIONS[action]
            method = (methods or {}).get(action, action)
            path = self.path if on_item else None
            call = {**calls[action], **(overrides or {}).get(action, {})}
            members[on_item][http] = self.call(method, summary, path=path, **call)
            if granted.get(action):
                needs[on_item][http.upper()] = granted[action]
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
        return self.handler(self.named(method), members, needs)

    def view(self, method: str, summary: str, response: Any, **call: Any) -> type[WorkbenchHandler]:
        """An :meth:`action` that reads: a GET, open to the scoped tokens with the
        :attr:`read` scope."""
        return self.action(method, summary, response, http="get", scope=self.read, **call)

    def upload(
        self,
        method: str,
        summary: str,
        response: Any,
        status: int = 200,
        *,
        check: str = "check_upload",
        **call: Any,
    ) -> type[UploadHandler]:
        """The handler of an item's upload (:class:`UploadHandler`): the service's ``check``
        refuses it from the path parameters before its body is read; then its PUT calls the
        service's ``method`` with the path parameters and the stored file (:func:`service_call`
        with ``upload``; ``call``, its other arguments)."""
        call.setdefault("path", self.path)
        converters = list(call["path"].values())

        async def check_upload(handler: UploadHandler, *args: str) -> None:
            values = [convert(arg) for convert, arg in zip(converters, args, strict=True)]
            await handler.run(self.method(handler.workbench, check), handler.actor, *values)

        put = self.call(method, summary, response=response, status=status, upload=True, **call)
        members = {"check_upload": check_upload, "put": put}
        return self.handler(self.named(method), members, upload=True)

    def call(self, method: str, summary: str, **call: Any) -> Callable[..., Awaitable[None]]:
        """A :func:`service_call` of the service's ``method``."""
        return service_call(summary, lambda wb: self.method(wb, method), **call)

    def method(self, workbench: Workbench, name: str) -> Callable[..., Any]:
        """The service's method ``name``."""
        return getattr(getattr(workbench, self.service), name)

    def named(self, method: str) -> str:
        """The class name of the handler of an action calling ``method``."""
        return self.name + "".join(part.title() for part in method.split("_")) + "Handler"

    def handler(
        self,
        name: str,
        members: Mapping[str, Any],
        needs: Mapping[str, str] | None = None,
        *,
        upload: bool = False,
    ) -> type[WorkbenchHandler]:
        """A subclass of ``base`` (and, for an ``upload``, of :class:`UploadHandler`) with
        ``members``; ``needs``, if any, its ``token_scopes``."""
        attrs = {"__module__": self.base.__module__, **members}
        if needs:
            attrs["token_scopes"] = scopes.needs(**needs)
        bases = (UploadHandler, self.base) if upload else (self.base,)
        return type(name, bases, attrs)
