"""/services: services from model versions (manual 2.7): list, detail with each replica,
create (its endpoint's key in the answer, this once), scale, stop, start, restart (each a
deploy job: 202), delete; a new endpoint key; its replicas' metrics and logs; and each
service's endpoint relayed through this server (``/services/{id}/endpoint/<path>``)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import Field
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
from workbench.errors import ServiceUnreachable
from workbench_ext.handlers.base import API, WorkbenchHandler, operation
from workbench_ext.handlers.resource import Resource, Schemas, Strict

#: the path parameter of one service's routes
SERVICE = {"service_id": int}


class ServiceScale(Strict):
    replicas: int = Field(ge=0, le=32)


class LogsQuery(Strict):
    #: one replica's log (its index); all of them without
    replica: int | None = Field(default=None, ge=0)
    tail: int = Field(default=200, ge=1, le=10_000)


class ServiceHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:services"


SERVICES = Resource(
    "Service", ServiceHandlerBase, "deployments", SERVICE, read=scopes.READ_SERVICES
)
ServicesHandler, ServiceHandler = SERVICES.standard(
    Schemas(ServiceInfo, ServiceCreate),
    {
        "list": "Services I can see, newest first",
        "create": "Serve a model version: its default serving format (or format), replicas of "
        "the model server in its environment image; a deploy job (202). The answer's "
        "service.key is the endpoint's key (Authorization: Bearer <key>), given this once; "
        "public_endpoint: true opens the endpoint to anyone, on purpose",
        "get": "One service with each replica's state",
        "delete": "Remove a service and its replicas (owner)",
    },
    overrides={"create": {"response": ServiceStarted, "status": 202}},
)
ServiceScaleHandler = SERVICES.action(
    "scale",
    "Set the number of replicas (owner); a deploy job (202)",
    ServiceStarted,
    202,
    request=ServiceScale,
    spread=True,
)
ServiceStopHandler = SERVICES.action(
    "stop",
    "Replicas to 0, the service and its settings kept (owner); a deploy job (202)",
    ServiceStarted,
    202,
)
ServiceStartHandler = SERVICES.action(
    "start", "Its replicas again (owner); a deploy job (202)", ServiceStarted, 202
)
ServiceRestartHandler = SERVICES.action(
    "restart",
    "Every replica replaced by a new one (owner); a deploy job (202)",
    ServiceStarted,
    202,
)
#: POST /services/{id}/key: a new key for the service's endpoint, shown this once (its
#: owner's; the old key is refused once this answers)
ServiceRotateKeyHandler = SERVICES.action(
    "rotate_key",
    "A new key for the service's endpoint (owner), given this once; the old one is "
    "refused from this answer on",
    ServiceKey,
)
#: GET /services/{id}/metrics: each running replica's counters now
ServiceMetricsHandler = SERVICES.view(
    "metrics",
    "Each running replica's counters now (requests, errors, latency and batch-size "
    "histograms, queue depth); two readings give the rates",
    ServiceMetrics,
)
#: GET /services/{id}/logs?replica=&tail=: the replicas' last log lines
ServiceLogsHandler = SERVICES.view(
    "logs",
    "The replicas' last log lines (`replica`: one of them; `tail`: lines, default 200)",
    list[ReplicaLog],
    query=LogsQuery,
    spread=True,
)


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
        deployments = self.workbench.deployments
        address = await self.run(deployments.address, self.actor, service_id)
        headers = {k: v for k, v in self.request.headers.items() if k.lower() in self.FORWARDED}
        headers["Authorization"] = f"Bearer {deployments.proxy.relay_key}"
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
    (rf"{API}/services/(\d+)/scale", ServiceScaleHandler),
    (rf"{API}/services/(\d+)/stop", ServiceStopHandler),
    (rf"{API}/services/(\d+)/start", ServiceStartHandler),
    (rf"{API}/services/(\d+)/restart", ServiceRestartHandler),
    (rf"{API}/services/(\d+)/key", ServiceRotateKeyHandler),
    (rf"{API}/services/(\d+)/metrics", ServiceMetricsHandler),
    (rf"{API}/services/(\d+)/logs", ServiceLogsHandler),
    (rf"{API}/services/(\d+)/endpoint/(.+)", EndpointHandler),
]
