"""/models, /model-versions: the model registry (read-only for now)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from workbench.models.schemas import ModelFilter
from workbench.models.service import ModelService
from workbench_ext.handlers.base import API, WorkbenchHandler


class ModelHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:models"

    @property
    def models(self) -> ModelService:
        return self.workbench.models


class ModelsHandler(ModelHandlerBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(ModelFilter)
        self.reply(await self.run(self.models.list, self.actor, filters))


class ModelHandler(ModelHandlerBase):
    @web.authenticated
    @authorized
    async def get(self, model_id: str) -> None:
        self.reply(await self.run(self.models.get, self.actor, int(model_id)))


class ModelVersionHandler(ModelHandlerBase):
    @web.authenticated
    @authorized
    async def get(self, version_id: str) -> None:
        self.reply(await self.run(self.models.get_version, self.actor, int(version_id)))


handlers = [
    (rf"{API}/models", ModelsHandler),
    (rf"{API}/models/(\d+)", ModelHandler),
    (rf"{API}/model-versions/(\d+)", ModelVersionHandler),
]
