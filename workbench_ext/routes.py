"""The one route table of the REST API.

Each handler module keeps its URL table (``handlers``: pattern, handler class); this module
gathers them into :func:`api_routes`, the list the server installs, and :func:`served`
reads back every method each route's handler serves, its own or inherited, with the
:class:`~workbench_ext.handlers.base.Operation` declared on it. The OpenAPI document is
built from :func:`served`, and the tests walk it (every method needs authentication, every
method is documented).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from tornado import web

from workbench_ext import openapi
from workbench_ext.handlers import (
    algorithms,
    builds,
    cluster,
    datasets,
    environments,
    jobs,
    models,
    services,
    training,
    users,
    workspaces,
)
from workbench_ext.handlers.base import API, Operation, WorkbenchHandler

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
#: a capture group of a route's pattern (none of ours nests one in another)
_GROUP = re.compile(r"\((?!\?)(?:[^()\\]|\\.)*\)")


@dataclass(frozen=True)
class Route:
    """One method of one route."""

    pattern: str
    handler: type[WorkbenchHandler]
    method: str
    operation: Operation
    #: the names of the pattern's capture groups: the method's parameters, in order
    params: tuple[str, ...]

    @property
    def template(self) -> str:
        """The path with ``{param}`` for each capture group, as OpenAPI writes it."""
        names = iter(self.params)
        path = _GROUP.sub(lambda _: "{" + next(names) + "}", self.pattern)
        return path.removesuffix("/?")

    @property
    def groups(self) -> tuple[str, ...]:
        """The pattern's capture groups, as written (``(\\d+)``...)."""
        return tuple(_GROUP.findall(self.pattern))


def api_routes() -> list[tuple[str, type[WorkbenchHandler], dict[str, Any]]]:
    """Every route of the REST API, in the order the server installs them."""
    table: list[tuple[str, type[WorkbenchHandler], dict[str, Any]]] = [
        (pattern, handler, {})
        for module in (
            users,
            datasets,
            workspaces,
            environments,
            builds,
            algorithms,
            training,
            models,
            services,
            jobs,
            cluster,
        )
        for pattern, handler in module.handlers
    ]
    document: dict[str, Any] = {}
    table.insert(0, (rf"{API}/?", openapi.RootHandler, {}))
    table.insert(1, (rf"{API}/openapi.json", openapi.OpenAPIHandler, document))
    document["routes"] = served(table)
    return table


def served(table: list[tuple[str, type[WorkbenchHandler], dict[str, Any]]]) -> list[Route]:
    """Each method each route's handler serves (its own or inherited from a Workbench base),
    with its declared operation; :class:`LookupError` naming a method declared nowhere."""
    routes = []
    for pattern, handler, _ in table:
        for method in HTTP_METHODS:
            fn = getattr(handler, method)
            if fn is getattr(web.RequestHandler, method):
                continue  # tornado's 405
            op = getattr(fn, "operation", None)
            if not isinstance(op, Operation):
                raise LookupError(f"{handler.__name__}.{method} ({pattern}) has no @operation")
            params = tuple(inspect.signature(inspect.unwrap(fn)).parameters)[1:]
            routes.append(Route(pattern, handler, method, op, params))
    return routes
