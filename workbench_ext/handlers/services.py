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
from workbench.deployments.schemas import ServiceCreate
from workbench.deployments.service import DeploymentService
from workbench.errors import ServiceUnreachable
from workbench_ext.handlers.base import API, WorkbenchHandler


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

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(self.deployments.list, self.actor))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.parse(ServiceCreate)
        self.reply(await self.run(self.deployments.create, self.actor, request), status=202)


class ServiceHandler(ServiceHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @web.authenticated
    @authorized
    async def get(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.get, self.actor, int(service_id)))

    @web.authenticated
    @authorized
    async def delete(self, service_id: str) -> None:
        await self.run(self.deployments.delete, self.actor, int(service_id))
        self.set_status(204)
        self.finish()


class ScaleHandler(ServiceHandlerBase):
    @web.authenticated
    @authorized
    async def post(self, service_id: str) -> None:
        replicas = self.parse(ServiceScale).replicas
        started = await self.run(self.deployments.scale, self.actor, int(service_id), replicas)
        self.reply(started, status=202)


class ActionHandler(ServiceHandlerBase):
    """POST /services/{id}/<action>: a deploy job (202)."""

    action: str

    @web.authenticated
    @authorized
    async def post(self, service_id: str) -> None:
        do = getattr(self.deployments, self.action)
        self.reply(await self.run(do, self.actor, int(service_id)), status=202)


class StopHandler(ActionHandler):
    action = "stop"


class StartHandler(ActionHandler):
    action = "start"


class RestartHandler(ActionHandler):
    action = "restart"


class KeyHandler(ServiceHandlerBase):
    """POST /services/{id}/key: a new key for the service's endpoint, shown this once (its
    owner's; the old key is refused once this answers)."""

    @web.authenticated
    @authorized
    async def post(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.rotate_key, self.actor, int(service_id)))


class MetricsHandler(ServiceHandlerBase):
    """GET /services/{id}/metrics: each running replica's counters now."""

    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

    @web.authenticated
    @authorized
    async def get(self, service_id: str) -> None:
        self.reply(await self.run(self.deployments.metrics, self.actor, int(service_id)))


class LogsHandler(ServiceHandlerBase):
    """GET /services/{id}/logs?replica=&tail=: the replicas' last log lines."""

    token_scopes = scopes.needs(GET=scopes.READ_SERVICES)

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

    @web.authenticated
    @authorized
    async def get(self, service_id: str, path: str) -> None:
        await self._relay(int(service_id), path)

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
