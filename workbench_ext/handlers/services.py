"""/services: services from model versions (manual 2.7): list, detail with each replica,
create, scale, stop, start, restart (each a deploy job: 202), delete."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from workbench.deployments.schemas import ServiceCreate
from workbench.deployments.service import DeploymentService
from workbench_ext.handlers.base import API, WorkbenchHandler


class ServiceScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(ge=0, le=32)


class ServiceHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:services"

    @property
    def deployments(self) -> DeploymentService:
        return self.workbench.deployments


class ServicesHandler(ServiceHandlerBase):
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


handlers = [
    (rf"{API}/services", ServicesHandler),
    (rf"{API}/services/(\d+)", ServiceHandler),
    (rf"{API}/services/(\d+)/scale", ScaleHandler),
    (rf"{API}/services/(\d+)/stop", StopHandler),
    (rf"{API}/services/(\d+)/start", StartHandler),
    (rf"{API}/services/(\d+)/restart", RestartHandler),
]
