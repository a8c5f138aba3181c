"""The OpenAPI 3.1 document of the REST API, generated from the route table
(:mod:`workbench_ext.routes`): each served method's :func:`~workbench_ext.handlers.base.operation`
gives its summary, its request and response types (the same pydantic types the handler
parses and replies with) and its status, so the document cannot drift from the code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, TypeAdapter
from tornado import web

from workbench import __version__, scopes
from workbench_ext.handlers.base import API, WorkbenchHandler, operation

if TYPE_CHECKING:
    from workbench_ext.routes import Route


class ApiRoot(BaseModel):
    version: str
    user: str
    openapi: str


ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable code, e.g. archive_unsafe"},
        "message": {"type": "string", "description": "what went wrong and what to do"},
        "details": {"type": "object"},
    },
}
ARCHIVES = ("application/zip", "application/gzip", "application/x-tar")


def _schema_ref(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        defs[tp.__name__] = schema
        return {"$ref": f"#/components/schemas/{tp.__name__}"}
    return schema


def _entry(route: Route, defs: dict[str, Any]) -> dict[str, Any]:
    op = route.operation
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    params += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in op.query]
    success: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": _schema_ref(op.response, defs)}}
    entry: dict[str, Any] = {
        "summary": op.summary,
        "parameters": params,
        "responses": {
            str(op.status): success,
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if op.request is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(op.request, defs)}},
        }
    elif op.body == "archive":
        binary = {"schema": {"type": "string", "format": "binary"}}
        entry["requestBody"] = {"required": True, "content": dict.fromkeys(ARCHIVES, binary)}
    return entry


def build_document(routes: list[Route]) -> dict[str, Any]:
    """The document of every operation in ``routes`` (each served method of the table)."""
    defs: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method] = _entry(route, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Workbench REST API", "version": __version__},
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token wb_...' (a Workbench API token)",
                },
            },
        },
        "security": [{"token": []}],
        "paths": paths,
    }


class OpenAPIHandler(WorkbenchHandler):
    auth_resource = "workbench:api"
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    def initialize(self, routes: list[Route]) -> None:
        self.routes = routes

    @operation("This document")
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(build_document(self.routes))


class RootHandler(WorkbenchHandler):
    auth_resource = "workbench:api"
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    @operation("API version and the user making the request", response=ApiRoot)
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(
            ApiRoot(version=__version__, user=self.actor.username, openapi=f"{API}/openapi.json")
        )
