"""/datasets: the dataset lifecycle over REST, uploads streamed to disk."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import Field
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
from workbench_ext.handlers.resource import Resource, Schemas, Strict

SPLIT = "(train|test)"
#: the path parameter of one dataset's routes
DATASET = {"dataset_id": int}


class DatasetHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:datasets"


DATASETS = Resource("Dataset", DatasetHandlerBase, "datasets", DATASET, read=scopes.READ_DATASETS)
DatasetsHandler, DatasetHandler = DATASETS.standard(
    Schemas(DatasetInfo, DatasetCreate, DatasetUpdate, DatasetFilter),
    {
        "list": "Datasets I can see",
        "create": "Create a dataset (state draft)",
        "get": "One dataset with its splits, reports and statistics",
        "update": "Edit a dataset (owner)",
        "delete": "Delete a dataset no task or workspace uses",
    },
)
DatasetPublishHandler = DATASETS.action("publish", "Put a dataset online", DatasetInfo)
DatasetTakeOfflineHandler = DATASETS.action("take_offline", "Take a dataset offline", DatasetInfo)


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


class SampleQuery(Strict):
    offset: int = Field(0, ge=0)
    limit: int = Field(20, ge=1, le=200)


DatasetSamplesHandler = DATASETS.view(
    "samples",
    "A page of samples for preview",
    SamplePage,
    path={"dataset_id": int, "split": Split},
    query=SampleQuery,
    spread=True,
)


class SampleFileHandler(DatasetHandlerBase):
    """The raw bytes of one sample (an image or a text), for previews."""

    token_scopes = scopes.needs(GET=DATASETS.read)

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
    (rf"{API}/datasets/(\d+)/publish", DatasetPublishHandler),
    (rf"{API}/datasets/(\d+)/offline", DatasetTakeOfflineHandler),
    (rf"{API}/datasets/(\d+)/archives/{SPLIT}", ArchiveHandler),
    (rf"{API}/datasets/(\d+)/samples/{SPLIT}", DatasetSamplesHandler),
    (rf"{API}/datasets/(\d+)/files/{SPLIT}/(.+)", SampleFileHandler),
]
