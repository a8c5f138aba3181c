"""/models, /model-versions: the model registry: list and search, detail, edit, tags,
aliases, comparison, download of a version's files, delete; imports of models trained
elsewhere, conversions to deployment formats and benchmarks (jobs), the formats made and
the benchmark's figures."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from workbench import scopes
from workbench.errors import InvalidInput
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
from workbench_ext.handlers.resource import Resource, Schemas, Strict

#: route groups: a tag's key (URL-encoded), an alias
TAG = r"([^/]+)"
ALIAS = r"([A-Za-z][A-Za-z0-9_.-]*)"
#: the path parameters of a model's routes, a version's, and of an alias of a model
MODEL = {"model_id": int}
VERSION = {"version_id": int}
MODEL_ALIAS = {"model_id": int, "alias": str}


class ModelHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:models"


MODELS = Resource("Model", ModelHandlerBase, "models", MODEL, read=scopes.READ_MODELS)
ModelsHandler, ModelHandler = MODELS.standard(
    Schemas(ModelDetail, update=ModelUpdate, filter=ModelFilter),
    {
        "list": "Models I can see, each with its latest version; tag is `key` or `key=value` "
        "(the model's or a version's), framework any version's",
        "get": "One model with all its versions",
        "update": "Edit a model: name, description, purpose, visibility (owner)",
        "delete": "Delete a model with its versions and files (owner); 409 while a service "
        "uses one",
    },
    overrides={"list": {"response": list[ModelInfo]}},
)
#: a model's versions: the model registry's methods of a version
VERSIONS = Resource("Version", ModelHandlerBase, "models", VERSION, read=scopes.READ_MODELS)
_, VersionHandler = VERSIONS.standard(
    Schemas(ModelVersionInfo, update=VersionUpdate),
    {
        "get": "One model version: files, evaluation and lineage",
        "update": "Edit a version's description",
        "delete": "Delete a version and its files (owner); 409 while a service, an alias or "
        "an unfinished task uses it",
    },
    methods={"get": "get_version", "update": "update_version", "delete": "delete_version"},
)
#: a version's formats and benchmarks
CONVERSIONS = Resource(
    "Conversion", ModelHandlerBase, "conversions", VERSION, read=scopes.READ_MODELS
)


def tag_handler(items: Resource, tag: str, summaries: tuple[str, str]) -> type[WorkbenchHandler]:
    """The handler of one tag (its ``key``) of ``items``: PUT {value} sets it (the
    service's ``set_<tag>``), DELETE removes it (``delete_<tag>``); ``summaries``: theirs."""
    path = {**items.path, "key": str}
    put, delete = summaries
    members = {
        "put": items.call(f"set_{tag}", put, request=TagValue, path=path, spread=True),
        "delete": items.call(f"delete_{tag}", delete, path=path),
    }
    return items.handler(f"{items.name}TagHandler", members)


ModelTagHandler = tag_handler(
    MODELS,
    "tag",
    ("Set a tag on a model (owner); its tags", "Remove a model's tag (owner); its tags"),
)
VersionTagHandler = tag_handler(
    VERSIONS, "version_tag", ("Set a tag on a version (owner)", "Remove a version's tag (owner)")
)


class AliasHandler(ModelHandlerBase):
    """GET, PUT {version}, DELETE one alias of a model."""

    token_scopes = scopes.needs(GET=MODELS.read)

    get = MODELS.call(
        "by_alias", "The version an alias points at", response=ModelVersionInfo, path=MODEL_ALIAS
    )
    put = MODELS.call(
        "set_alias",
        "Point an alias at a version number, made or moved in one step (owner); the aliases",
        request=AliasTarget,
        path=MODEL_ALIAS,
        spread=True,
    )
    delete = MODELS.call("delete_alias", "Remove an alias (owner); the aliases", path=MODEL_ALIAS)


ConversionConvertHandler = CONVERSIONS.action(
    "convert",
    "Convert a version (owner) to deployment formats, each checked against the native "
    "model, as a job (202; formats default to all its native kind converts to); 409 "
    "while one of them is converting",
    ConversionStarted,
    202,
    scope=scopes.CONVERT_MODELS,
    request=ConversionRequest,
)
ConversionFormatsHandler = CONVERSIONS.view(
    "formats", "A version's converted formats: state, check, file", list[FormatInfo]
)


class MachineQuery(Strict):
    machine: str | None = None


class BenchmarksHandler(ModelHandlerBase):
    token_scopes = scopes.needs(GET=CONVERSIONS.read, POST=scopes.BENCHMARK_MODELS)

    get = CONVERSIONS.call(
        "benchmarks",
        "A version's benchmark on one machine (default: the newest): p50/p95/p99, "
        "throughput, memory per format and batch size; the best per latency budget",
        response=BenchmarkReport,
        path=VERSION,
        query=MachineQuery,
        spread=True,
    )
    post = CONVERSIONS.call(
        "benchmark",
        "Benchmark a version (owner): the native model and its verified formats at batch "
        "sizes 1, 2, 4, ... up to max_batch, as a job (202); 409 while one runs",
        request=BenchmarkRequest,
        response=BenchmarkStarted,
        status=202,
        path=VERSION,
    )


class CompareQuery(Strict):
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
    token_scopes = scopes.needs(GET=MODELS.read)

    @operation(
        "Two or more versions side by side (ids=3,5): parameters, metrics, what differs",
        response=VersionComparison,
        query=("ids",),
    )
    @web.authenticated
    @authorized
    async def get(self) -> None:
        ids = self.query(CompareQuery).version_ids()
        self.reply(await self.run(self.workbench.models.compare, self.actor, ids))


class FormatQuery(Strict):
    #: a verified format instead of the native files
    format: str | None = None


class VersionDownloadHandler(ModelHandlerBase):
    """A version's native files (or, with ``?format=``, a verified format's) as a zip,
    streamed."""

    token_scopes = scopes.needs(GET=VERSIONS.read)

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
    (rf"{API}/model-versions/(\d+)", VersionHandler),
    (rf"{API}/model-versions/(\d+)/download", VersionDownloadHandler),
    (rf"{API}/model-versions/(\d+)/tags/{TAG}", VersionTagHandler),
    (rf"{API}/model-versions/(\d+)/conversions", ConversionConvertHandler),
    (rf"{API}/model-versions/(\d+)/formats", ConversionFormatsHandler),
    (rf"{API}/model-versions/(\d+)/benchmarks", BenchmarksHandler),
]
