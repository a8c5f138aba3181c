"""/datasets: the dataset lifecycle over REST, uploads streamed to disk."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from workbench import scopes
from workbench.datasets.schemas import (
    DatasetCreate,
    DatasetFilter,
    DatasetInfo,
    DatasetUpdate,
    SamplePage,
)
from workbench.enums import Split
from workbench_ext.handlers.base import API, UploadHandler, WorkbenchHandler, operation

SPLIT = "(train|test)"


class DatasetsHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @operation(
        "Datasets I can see",
        response=list[DatasetInfo],
        query=("purpose", "sub_purpose", "format", "state", "visibility", "mine", "q"),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(DatasetFilter)
        self.reply(await self.run(self.workbench.datasets.list, self.actor, filters))

    @operation("Create a dataset (state draft)", DatasetCreate, DatasetInfo, 201)
    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(DatasetCreate)
        self.reply(await self.run(self.workbench.datasets.create, self.actor, spec), status=201)


class DatasetHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"
    token_scopes = scopes.needs(GET=scopes.READ_DATASETS)

    @operation("One dataset with its splits, reports and statistics", response=DatasetInfo)
    @web.authenticated
    @authorized
    async def get(self, dataset_id: str) -> None:
        self.reply(await self.run(self.workbench.datasets.get, self.actor, int(dataset_id)))

    @operation("Edit a dataset (owner)", DatasetUpdate, DatasetInfo)
    @web.authenticated
    @authorized
    async def patch(self, dataset_id: str) -> None:
        changes = self.parse(DatasetUpdate)
        info = await self.run(self.workbench.datasets.update, self.actor, int(dataset_id), changes)
        self.reply(info)

    @operation("Delete a dataset no task or workspace uses", status=204)
    @web.authenticated
    @authorized
    async def delete(self, dataset_id: str) -> None:
        await self.run(self.workbench.datasets.delete, self.actor, int(dataset_id))
        self.set_status(204)
        self.finish()


class PublishHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @operation("Put a dataset online", response=DatasetInfo)
    @web.authenticated
    @authorized
    async def post(self, dataset_id: str) -> None:
        self.reply(await self.run(self.workbench.datasets.publish, self.actor, int(dataset_id)))


class OfflineHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @operation("Take a dataset offline", response=DatasetInfo)
    @web.authenticated
    @authorized
    async def post(self, dataset_id: str) -> None:
        info = await self.run(self.workbench.datasets.take_offline, self.actor, int(dataset_id))
        self.reply(info)


class ArchiveHandler(UploadHandler):
    """PUT the raw bytes of a zip or tar(.gz) archive as a dataset's train or test split.

    The dataset changes only once the whole archive is in, unpacked and valid.
    """

    auth_resource = "workbench:datasets"

    async def check_upload(self, dataset_id: str, split: str) -> None:
        await self.run(
            self.workbench.datasets.check_upload, self.actor, int(dataset_id), Split(split)
        )

    @operation(
        "Upload a zip or tar(.gz) as the train or test split: unpacked, validated, "
        "installed all or nothing",
        response=DatasetInfo,
        query=("filename",),
        body="archive",
    )
    @web.authenticated
    @authorized
    async def put(self, dataset_id: str, split: str) -> None:
        filename = self.get_query_argument("filename", f"{split}.zip")
        with self.received() as stored:
            info = await self.run(
                self.workbench.datasets.upload,
                self.actor,
                int(dataset_id),
                Split(split),
                stored,
                filename,
            )
        self.reply(info)


class SampleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0)
    limit: int = Field(20, ge=1, le=200)


class SamplesHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"
    token_scopes = scopes.needs(GET=scopes.READ_DATASETS)

    @operation("A page of samples for preview", response=SamplePage, query=("offset", "limit"))
    @web.authenticated
    @authorized
    async def get(self, dataset_id: str, split: str) -> None:
        q = self.query(SampleQuery)
        page = await self.run(
            self.workbench.datasets.samples,
            self.actor,
            int(dataset_id),
            Split(split),
            q.offset,
            q.limit,
        )
        self.reply(page)


class SampleFileHandler(WorkbenchHandler):
    """The raw bytes of one sample (an image or a text), for previews."""

    auth_resource = "workbench:datasets"
    token_scopes = scopes.needs(GET=scopes.READ_DATASETS)

    @operation("The raw file of one sample")
    @web.authenticated
    @authorized
    async def get(self, dataset_id: str, split: str, rel: str) -> None:
        path: Path = await self.run(
            self.workbench.datasets.sample_file, self.actor, int(dataset_id), Split(split), rel
        )
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(path.read_bytes(), set_content_type=kind)


handlers = [
    (rf"{API}/datasets", DatasetsHandler),
    (rf"{API}/datasets/(\d+)", DatasetHandler),
    (rf"{API}/datasets/(\d+)/publish", PublishHandler),
    (rf"{API}/datasets/(\d+)/offline", OfflineHandler),
    (rf"{API}/datasets/(\d+)/archives/{SPLIT}", ArchiveHandler),
    (rf"{API}/datasets/(\d+)/samples/{SPLIT}", SamplesHandler),
    (rf"{API}/datasets/(\d+)/files/{SPLIT}/(.+)", SampleFileHandler),
]
