"""/models, /model-versions: the model registry: list and search, detail, edit, tags,
aliases, comparison, download of a version's files, delete; imports of models trained
elsewhere, conversions to deployment formats and benchmarks (jobs), the formats made and
the benchmark's figures."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from workbench import scopes
from workbench.errors import InvalidInput
from workbench.models.conversions import ConversionService
from workbench.models.registry import ModelService
from workbench.models.schemas import (
    AliasTarget,
    BenchmarkReport,
    BenchmarkRequest,
    BenchmarkStarted,
    ConversionRequest,
    ConversionStarted,
    FormatInfo,
    ImportStarted,
    ModelDetail,
    ModelFilter,
    ModelImport,
    ModelInfo,
    ModelUpdate,
    ModelVersionInfo,
    TagValue,
    VersionComparison,
    VersionUpdate,
)
from workbench_ext.handlers.base import API, UploadHandler, WorkbenchHandler, operation, validate

#: route groups: a tag's key (URL-encoded), an alias
TAG = r"([^/]+)"
ALIAS = r"([A-Za-z][A-Za-z0-9_.-]*)"


class ModelHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:models"

    @property
    def models(self) -> ModelService:
        return self.workbench.models

    @property
    def conversions(self) -> ConversionService:
        return self.workbench.conversions

    def done(self) -> None:
        self.set_status(204)
        self.finish()


class ModelsHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation(
        "Models I can see, each with its latest version; tag is `key` or `key=value` (the "
        "model's or a version's), framework any version's",
        response=list[ModelInfo],
        query=("mine", "visibility", "q", "name", "tag", "purpose", "framework", "owner"),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = self.query(ModelFilter)
        self.reply(await self.run(self.models.list, self.actor, filters))


class ModelHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation("One model with all its versions", response=ModelDetail)
    @web.authenticated
    @authorized
    async def get(self, model_id: str) -> None:
        self.reply(await self.run(self.models.get, self.actor, int(model_id)))

    @operation(
        "Edit a model: name, description, purpose, visibility (owner)", ModelUpdate, ModelDetail
    )
    @web.authenticated
    @authorized
    async def patch(self, model_id: str) -> None:
        change = self.parse(ModelUpdate)
        self.reply(await self.run(self.models.update, self.actor, int(model_id), change))

    @operation(
        "Delete a model with its versions and files (owner); 409 while a service uses one",
        status=204,
    )
    @web.authenticated
    @authorized
    async def delete(self, model_id: str) -> None:
        await self.run(self.models.delete, self.actor, int(model_id))
        self.done()


class ModelTagHandler(ModelHandlerBase):
    @operation("Set a tag on a model (owner); its tags", TagValue)
    @web.authenticated
    @authorized
    async def put(self, model_id: str, key: str) -> None:
        value = self.parse(TagValue).value
        self.reply(await self.run(self.models.set_tag, self.actor, int(model_id), key, value))

    @operation("Remove a model's tag (owner); its tags")
    @web.authenticated
    @authorized
    async def delete(self, model_id: str, key: str) -> None:
        self.reply(await self.run(self.models.delete_tag, self.actor, int(model_id), key))


class VersionTagHandler(ModelHandlerBase):
    @operation("Set a tag on a version (owner)", TagValue)
    @web.authenticated
    @authorized
    async def put(self, version_id: str, key: str) -> None:
        value = self.parse(TagValue).value
        tags = await self.run(self.models.set_version_tag, self.actor, int(version_id), key, value)
        self.reply(tags)

    @operation("Remove a version's tag (owner)")
    @web.authenticated
    @authorized
    async def delete(self, version_id: str, key: str) -> None:
        self.reply(await self.run(self.models.delete_version_tag, self.actor, int(version_id), key))


class AliasHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation("The version an alias points at", response=ModelVersionInfo)
    @web.authenticated
    @authorized
    async def get(self, model_id: str, alias: str) -> None:
        self.reply(await self.run(self.models.by_alias, self.actor, int(model_id), alias))

    @operation(
        "Point an alias at a version number, made or moved in one step (owner); the aliases",
        AliasTarget,
    )
    @web.authenticated
    @authorized
    async def put(self, model_id: str, alias: str) -> None:
        number = self.parse(AliasTarget).version
        self.reply(await self.run(self.models.set_alias, self.actor, int(model_id), alias, number))

    @operation("Remove an alias (owner); the aliases")
    @web.authenticated
    @authorized
    async def delete(self, model_id: str, alias: str) -> None:
        self.reply(await self.run(self.models.delete_alias, self.actor, int(model_id), alias))


class ModelVersionHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation("One model version: files, evaluation and lineage", response=ModelVersionInfo)
    @web.authenticated
    @authorized
    async def get(self, version_id: str) -> None:
        self.reply(await self.run(self.models.get_version, self.actor, int(version_id)))

    @operation("Edit a version's description", VersionUpdate, ModelVersionInfo)
    @web.authenticated
    @authorized
    async def patch(self, version_id: str) -> None:
        change = self.parse(VersionUpdate)
        self.reply(await self.run(self.models.update_version, self.actor, int(version_id), change))

    @operation(
        "Delete a version and its files (owner); 409 while a service, an alias or an "
        "unfinished task uses it",
        status=204,
    )
    @web.authenticated
    @authorized
    async def delete(self, version_id: str) -> None:
        await self.run(self.models.delete_version, self.actor, int(version_id))
        self.done()


class ConversionsHandler(ModelHandlerBase):
    token_scopes = scopes.needs(POST=scopes.CONVERT_MODELS)

    @operation(
        "Convert a version (owner) to deployment formats, each checked against the native "
        "model, as a job (202; formats default to all its native kind converts to); 409 "
        "while one of them is converting",
        ConversionRequest,
        ConversionStarted,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self, version_id: str) -> None:
        request = self.parse(ConversionRequest)
        started = await self.run(self.conversions.convert, self.actor, int(version_id), request)
        self.reply(started, status=202)


class FormatsHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation("A version's converted formats: state, check, file", response=list[FormatInfo])
    @web.authenticated
    @authorized
    async def get(self, version_id: str) -> None:
        self.reply(await self.run(self.conversions.formats, self.actor, int(version_id)))


class MachineQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    machine: str | None = None


class BenchmarksHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS, POST=scopes.BENCHMARK_MODELS)

    @operation(
        "A version's benchmark on one machine (default: the newest): p50/p95/p99, "
        "throughput, memory per format and batch size; the best per latency budget",
        response=BenchmarkReport,
        query=("machine",),
    )
    @web.authenticated
    @authorized
    async def get(self, version_id: str) -> None:
        machine = self.query(MachineQuery).machine
        self.reply(
            await self.run(self.conversions.benchmarks, self.actor, int(version_id), machine)
        )

    @operation(
        "Benchmark a version (owner): the native model and its verified formats at batch "
        "sizes 1, 2, 4, ... up to max_batch, as a job (202); 409 while one runs",
        BenchmarkRequest,
        BenchmarkStarted,
        202,
    )
    @web.authenticated
    @authorized
    async def post(self, version_id: str) -> None:
        request = self.parse(BenchmarkRequest)
        started = await self.run(self.conversions.benchmark, self.actor, int(version_id), request)
        self.reply(started, status=202)


class CompareQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: version ids, comma-separated
    ids: str

    def version_ids(self) -> list[int]:
        try:
            return [int(part) for part in self.ids.split(",") if part.strip()]
        except ValueError:
            raise InvalidInput(
                f"ids must be version ids separated by commas (e.g. 3,5), not {self.ids!r}.",
                field="ids",
            ) from None


class CompareHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation(
        "Two or more versions side by side (ids=3,5): parameters, metrics, what differs",
        response=VersionComparison,
        query=("ids",),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        ids = self.query(CompareQuery).version_ids()
        self.reply(await self.run(self.models.compare, self.actor, ids))


class FormatQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a verified format instead of the native files
    format: str | None = None


class VersionDownloadHandler(ModelHandlerBase):
    """A version's native files (or, with ``?format=``, a verified format's) as a zip,
    streamed."""

    token_scopes = scopes.needs(GET=scopes.READ_MODELS)

    @operation(
        "The version's native files (or ?format=onnx: a verified format's) as a zip",
        query=("format",),
    )
    @web.authenticated
    @authorized
    async def get(self, version_id: str) -> None:
        fmt = self.query(FormatQuery).format
        path, name = await self.run(
            self.workbench.model_versions.archive, self.actor, int(version_id), fmt
        )
        await self.send_zip(path, name)


class ImportHandler(UploadHandler):
    """PUT a model file (or an archive) trained elsewhere; the query says what it is
    (:class:`ModelImport`, the signature as JSON). 202 with the import's job."""

    auth_resource = "workbench:models"
    token_scopes = scopes.needs(PUT=scopes.IMPORT_MODELS)

    def request_of(self) -> ModelImport:
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        if args.get("signature"):
            try:
                args["signature"] = json.loads(args["signature"])
            except ValueError as exc:
                raise InvalidInput(
                    f"signature is not JSON ({exc}); give "
                    '{"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]}',
                    field="signature",
                ) from exc
        else:
            args.pop("signature", None)
        return validate(ModelImport, args)

    async def check_upload(self) -> None:
        """A wrong request is refused before its body is read."""
        await self.run(self.workbench.model_imports.check_import, self.actor, self.request_of())

    @operation(
        "Import a model trained elsewhere (the body: its file, or an archive) as a new "
        "version of model_id, or of my model called name (made if none): kind onnx, "
        "torchscript, pytorch (a state dict with its code, entry=module:Class), keras, "
        "savedmodel, skops or pickle (accepted with a warning: it runs code); signature as "
        "JSON where the file does not record it. Checked in a container of the environment's "
        "image, as a job (202); the job's result names the version",
        response=ImportStarted,
        status=202,
        query=(
            "kind",
            "filename",
            "name",
            "model_id",
            "file",
            "entry",
            "signature",
            "environment_id",
            "description",
            "visibility",
            "purpose",
        ),
        body="archive",
    )
    @web.authenticated
    @authorized
    async def put(self) -> None:
        request = self.request_of()
        with self.received() as stored:
            started = await self.run(
                self.workbench.model_imports.import_model, self.actor, stored, request
            )
        self.reply(started, status=202)


handlers = [
    (rf"{API}/models", ModelsHandler),
    (rf"{API}/models/import", ImportHandler),
    (rf"{API}/models/(\d+)", ModelHandler),
    (rf"{API}/models/(\d+)/tags/{TAG}", ModelTagHandler),
    (rf"{API}/models/(\d+)/aliases/{ALIAS}", AliasHandler),
    (rf"{API}/model-versions/compare", CompareHandler),
    (rf"{API}/model-versions/(\d+)", ModelVersionHandler),
    (rf"{API}/model-versions/(\d+)/download", VersionDownloadHandler),
    (rf"{API}/model-versions/(\d+)/tags/{TAG}", VersionTagHandler),
    (rf"{API}/model-versions/(\d+)/conversions", ConversionsHandler),
    (rf"{API}/model-versions/(\d+)/formats", FormatsHandler),
    (rf"{API}/model-versions/(\d+)/benchmarks", BenchmarksHandler),
]
