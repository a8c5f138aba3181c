"""/services: services from model versions (manual 2.7): list, detail with each replica,
create (its endpoint's key in the answer, this once), scale, stop, start, restart (each a
deploy job: 202), delete; a new endpoint key; its replicas' metrics and logs; and each
service's endpoint relayed through this server (``/services/{id}/endpoint/<path>``)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from workbench import scopes
from workbench.deployments.schemas import (
    ReplicaLog,
    ServiceCreate,
    ServiceInfo,
    ServiceKey,
    ServiceMetrics,
    ServiceStarted,
)
from workbench.deployments.service import DeploymentService
from workbench.errors import ServiceUnreachable
from workbench_ext.handlers.base import API, WorkbenchHandler, operation


class ServiceScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(ge=0, le=32)


class LogsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: one replica's log (its index); all of them without
    replica: int | None = Field(default=None, ge=0)
    tail: int = Field(default=200, ge=1, le=10_000)


class ServiceHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:services"

    @property
    def deployments(self) -> DeploymentService:
        return self.workbench.deployments


class ServicesHandler(ServiceHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @operation("Services I can see, newest first", response=list[ServiceInfo])
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.deployments.list, self.actor))

    @operation(
        "Serve a model version: its default serving format (or format), replicas of the model "
        "server in its environment image; a deploy job (202). The answer's service.key is the "
        "endpoint's key (Authorization: Bearer <key>), given this once; public_endpoint: true "
        "opens the endpoint to anyone, on purpose",
        ServiceCreate,
        ServiceStarted,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.parse(ServiceCreate)
        self.reply(await self.run(self.deployments.create, self.actor, request), status=202)


class ServiceHandler(ServiceHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @operation("One service with each replica's state", response=ServiceInfo)
    @web.authenticated
    @authorized
    async def get(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.get, self.actor, int(service_id)))

    @operation("Remove a service and its replicas (owner)", status=204)
    @web.authenticated
    @authorized
    async def delete(self, service_id: str) -> None:
        await self.run(self.deployments.delete, self.actor, int(service_id))
        self.set_status(204)
        self.finish()


class ScaleHandler(ServiceHandlerBase):
    @operation(
        "Set the number of replicas (owner); a deploy job (202)", ServiceScale, ServiceStarted, 202
    )
    @web.authenticated
    @authorized
    async def post(self, service_id: str) -> None:
        replicas = self.parse(ServiceScale).replicas
        started = await self.run(self.deployments.scale, self.actor, int(service_id), replicas)
        self.reply(started, status=202)


def action_handler(action: str, summary: str) -> type[ServiceHandlerBase]:
    """The handler of ``POST /services/{id}/<action>`` (stop, start, restart): the
    deployment service's method of that name, a deploy job (202); each its own class, so
    that each route declares its own operation."""

    class ActionHandler(ServiceHandlerBase):
        @operation(summary, response=ServiceStarted, status=202)
        @web.authenticated
        @authorized
        async def post(self, service_id: str) -> None:
            do = getattr(self.deployments, action)
            self.reply(await self.run(do, self.actor, int(service_id)), status=202)

    ActionHandler.__name__ = ActionHandler.__qualname__ = f"{action.title()}Handler"
    return ActionHandler


StopHandler = action_handler(
    "stop", "Replicas to 0, the service and its settings kept (owner); a deploy job (202)"
)
StartHandler = action_handler("start", "Its replicas again (owner); a deploy job (202)")
RestartHandler = action_handler(
    "restart", "Every replica replaced by a new one (owner); a deploy job (202)"
)


class KeyHandler(ServiceHandlerBase):
    """POST /services/{id}/key: a new key for the service's endpoint, shown this once (its
    owner's; the old key is refused once this answers)."""

    @operation(
        "A new key for the service's endpoint (owner), given this once; the old one is "
        "refused from this answer on",
        response=ServiceKey,
    )
    @web.authenticated
    @authorized
    async def post(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.rotate_key, self.actor, int(service_id)))


class MetricsHandler(ServiceHandlerBase):
    """GET /services/{id}/metrics: each running replica's counters now."""

    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @operation(
        "Each running replica's counters now (requests, errors, latency and batch-size "
        "histograms, queue depth); two readings give the rates",
        response=ServiceMetrics,
    )
    @web.authenticated
    @authorized
    async def get(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.metrics, self.actor, int(service_id)))


class LogsHandler(ServiceHandlerBase):
    """GET /services/{id}/logs?replica=&tail=: the replicas' last log lines."""

    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @operation(
        "The replicas' last log lines (`replica`: one of them; `tail`: lines, default 200)",
        response=list[ReplicaLog],
        query=("replica", "tail"),
    )
    @web.authenticated
    @authorized
    async def get(self, service_id: str) -> None:
        q = self.query(LogsQuery)
        logs = await self.run(self.deployments.logs, self.actor, int(service_id), q.replica, q.tail)
        self.reply(logs)


class EndpointHandler(ServiceHandlerBase):
    """``/services/{id}/endpoint/<path>``: the service's endpoint through this server, for
    whoever may see the service (a Workbench token or a Jupyter login): the request is
    relayed to the service's proxy as it came (its body, its content type and the V2
    binary header) with the relay's key (the caller was checked here), the answer comes
    back as it left."""

    token_scopes = scopes.needs(GET=scopes.ACCESS_SERVICES, POST=scopes.ACCESS_SERVICES)

    #: relayed request headers (the rest, this server's credentials first, are not)
    FORWARDED = ("content-type", "inference-header-content-length", "accept")
    RETURNED = ("content-type", "inference-header-content-length", "retry-after")

    @operation("The service's endpoint relayed (its V2 metadata, health...), for whoever sees it")
    @web.authenticated
    @authorized
    async def get(self, service_id: str, path: str) -> None:
        await self._relay(int(service_id), path)

    @operation(
        "The service's endpoint relayed: V2 infer (JSON or binary, the "
        "Inference-Header-Content-Length header passed on) or the simple /predict route"
    )
    @web.authenticated
    @authorized
    async def post(self, service_id: str, path: str) -> None:
        await self._relay(int(service_id), path)

    async def _relay(self, service_id: int, path: str) -> None:
        address = await self.run(self.deployments.address, self.actor, service_id)
        headers = {k: v for k, v in self.request.headers.items() if k.lower() in self.FORWARDED}
        headers["Authorization"] = f"Bearer {self.deployments.proxy.relay_key}"
        method = self.request.method or "GET"
        query = f"?{self.request.query}" if self.request.query else ""
        request = HTTPRequest(
            f"http://{address}/{path}{query}",
            method=method,
            headers=headers,
            body=self.request.body if method == "POST" else None,
            connect_timeout=5,
            request_timeout=120,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as exc:
            raise ServiceUnreachable(service_id, str(exc)) from exc
        if response.code == 599:
            raise ServiceUnreachable(service_id, str(response.error))
        self.set_status(response.code)
        for name in self.RETURNED:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.body)


handlers = [
    (rf"{API}/services", ServicesHandler),
    (rf"{API}/services/(\d+)", ServiceHandler),
    (rf"{API}/services/(\d+)/scale", ScaleHandler),
    (rf"{API}/services/(\d+)/stop", StopHandler),
    (rf"{API}/services/(\d+)/start", StartHandler),
    (rf"{API}/services/(\d+)/restart", RestartHandler),
    (rf"{API}/services/(\d+)/key", KeyHandler),
    (rf"{API}/services/(\d+)/metrics", MetricsHandler),
    (rf"{API}/services/(\d+)/logs", LogsHandler),
    (rf"{API}/services/(\d+)/endpoint/(.+)", EndpointHandler),
]
