"""/datasets: the dataset lifecycle over REST, uploads streamed to disk."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from workbench.datasets.schemas import DatasetCreate, DatasetFilter, DatasetUpdate
from workbench.enums import Split
from workbench.errors import ArchiveLimitExceeded
from workbench.store import Upload
from workbench_ext.handlers.base import API, WorkbenchHandler

SPLIT = "(train|test)"


class DatasetsHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(DatasetFilter)
        self.reply(await self.run(self.workbench.datasets.list, self.actor, filters))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.parse(DatasetCreate)
        self.reply(await self.run(self.workbench.datasets.create, self.actor, spec), status=201)


class DatasetHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @web.authenticated
    @authorized
    async def get(self, dataset_id: str) -> None:
        self.reply(await self.run(self.workbench.datasets.get, self.actor, int(dataset_id)))

    @web.authenticated
    @authorized
    async def patch(self, dataset_id: str) -> None:
        changes = self.parse(DatasetUpdate)
        info = await self.run(self.workbench.datasets.update, self.actor, int(dataset_id), changes)
        self.reply(info)

    @web.authenticated
    @authorized
    async def delete(self, dataset_id: str) -> None:
        await self.run(self.workbench.datasets.delete, self.actor, int(dataset_id))
        self.set_status(204)
        self.finish()


class PublishHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @web.authenticated
    @authorized
    async def post(self, dataset_id: str) -> None:
        self.reply(await self.run(self.workbench.datasets.publish, self.actor, int(dataset_id)))


class OfflineHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

    @web.authenticated
    @authorized
    async def post(self, dataset_id: str) -> None:
        info = await self.run(self.workbench.datasets.take_offline, self.actor, int(dataset_id))
        self.reply(info)


@web.stream_request_body
class ArchiveHandler(WorkbenchHandler):
    """PUT the raw bytes of a zip or tar(.gz) archive as a dataset's train or test split.

    The body is written to a temporary file as it arrives; the dataset changes only
    once the whole archive is in, unpacked and valid. A dropped connection discards it.
    """

    auth_resource = "workbench:datasets"
    upload: Upload | None = None
    upload_error: Exception | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method != "PUT" or self.current_user is None:
            return
        dataset_id, split = self.path_args
        await self.run(
            self.workbench.datasets.check_upload, self.actor, int(dataset_id), Split(split)
        )
        limit = self.workbench.settings.archive_limits.max_archive_bytes
        self.request.connection.set_max_body_size(limit + 1)  # type: ignore[union-attr]
        declared = self.request.headers.get("Content-Length")
        self.upload = self.workbench.store.begin_upload(
            limit, int(declared) if declared and declared.isdigit() else None
        )

    def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self.upload_error is not None:
            return
        try:
            self.upload.write(chunk)
        except ArchiveLimitExceeded as exc:
            self.upload_error = exc

    @web.authenticated
    @authorized
    async def put(self, dataset_id: str, split: str) -> None:
        assert self.upload is not None
        if self.upload_error is not None:
            raise self.upload_error
        filename = self.get_query_argument("filename", f"{split}.zip")
        stored = self.upload.finish()
        try:
            info = await self.run(
                self.workbench.datasets.upload,
                self.actor,
                int(dataset_id),
                Split(split),
                stored,
                filename,
            )
        finally:
            self.upload.discard()
        self.reply(info)

    def on_connection_close(self) -> None:
        if self.upload is not None:
            self.upload.discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.discard()


class SampleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0)
    limit: int = Field(20, ge=1, le=200)


class SamplesHandler(WorkbenchHandler):
    auth_resource = "workbench:datasets"

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
