"""The OpenAPI 3.1 document of the REST API, built from the same pydantic types the
handlers parse and reply with, so the document cannot drift from the code's types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, TypeAdapter
from tornado import web

from workbench import __version__, scopes
from workbench.algorithms.schemas import (
    AlgorithmCreate,
    AlgorithmInfo,
    AlgorithmUpdate,
    ImageFromWorkspace,
)
from workbench.datasets.schemas import (
    DatasetCreate,
    DatasetInfo,
    DatasetUpdate,
    SamplePage,
)
from workbench.deployments.schemas import (
    ReplicaLog,
    ServiceCreate,
    ServiceInfo,
    ServiceKey,
    ServiceMetrics,
    ServiceStarted,
)
from workbench.environments.schemas import (
    EnvironmentCreate,
    EnvironmentInfo,
    EnvironmentUpdate,
)
from workbench.images import ImagePull
from workbench.invitations import InvitationInfo
from workbench.jobs import JobInfo, JobLogPage
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
    ModelInfo,
    ModelUpdate,
    ModelVersionInfo,
    TagValue,
    VersionComparison,
    VersionUpdate,
)
from workbench.quotas import QuotaInfo, QuotaUpdate
from workbench.training.schemas import (
    MetricPoint,
    TaskCreate,
    TaskInfo,
    TaskLogPage,
    TaskUpdate,
    TrainingRunInfo,
)
from workbench.users import NewToken, NewUser, TeamInfo, TokenInfo, UserInfo
from workbench.workspaces.builds import ImageTarInfo, TarReport, WorkspaceBuildRequest
from workbench.workspaces.schemas import WorkspaceCreate, WorkspaceInfo
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.services import ServiceScale
from workbench_ext.handlers.users import MemberAdd, TeamCreate, TokenCreate, UserCreate
from workbench_ext.handlers.workspaces import MemberAdd as WorkspaceMemberAdd


class ApiRoot(BaseModel):
    version: str
    user: str
    openapi: str


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    query: tuple[str, ...] = ()
    body_kind: str = "json"  # or "archive"


SPLIT = "{split}"
OPS = (
    Op("get", "/me", "The user making the request", response=UserInfo),
    Op("get", "/tokens", "My API tokens (secrets are never shown again)", response=list[TokenInfo]),
    Op("post", "/tokens", "Create an API token", TokenCreate, NewToken, 201),
    Op("delete", "/tokens/{id}", "Revoke one of my tokens", status=204),
    Op("get", "/users", "All users", response=list[UserInfo]),
    Op("get", "", "API version and the user making the request", response=ApiRoot),
    Op(
        "post",
        "/users",
        "Add a user (admins); the reply carries their first token",
        UserCreate,
        NewUser,
        201,
    ),
    Op("get", "/teams", "Teams I belong to", response=list[TeamInfo]),
    Op("post", "/teams", "Create a team; I become its admin", TeamCreate, TeamInfo, 201),
    Op(
        "post",
        "/teams/{id}/members",
        "Invite someone (team admins); a member once they accept",
        MemberAdd,
        TeamInfo,
    ),
    Op(
        "get",
        "/invitations",
        "Invitations to teams and workspaces: to me, and those I sent",
        response=list[InvitationInfo],
    ),
    Op(
        "post",
        "/invitations/{id}/accept",
        "Accept an invitation to me: I join the team or the workspace",
        response=InvitationInfo,
    ),
    Op(
        "post",
        "/invitations/{id}/decline",
        "Decline an invitation to me",
        response=InvitationInfo,
    ),
    Op(
        "delete",
        "/invitations/{id}",
        "Cancel an invitation (its inviter, the team's admins, the workspace's owner)",
        status=204,
    ),
    Op(
        "get",
        "/users/{username}/quota",
        "A user's quotas and use (my own; anyone's for admins)",
        response=QuotaInfo,
    ),
    Op(
        "put",
        "/users/{username}/quota",
        "Set a user's quotas (admins); a field given null goes back to the default",
        QuotaUpdate,
        QuotaInfo,
    ),
    Op(
        "get",
        "/datasets",
        "Datasets I can see",
        response=list[DatasetInfo],
        query=("purpose", "sub_purpose", "format", "state", "visibility", "mine", "q"),
    ),
    Op("post", "/datasets", "Create a dataset (state draft)", DatasetCreate, DatasetInfo, 201),
    Op(
        "get",
        "/datasets/{id}",
        "One dataset with its splits, reports and statistics",
        response=DatasetInfo,
    ),
    Op("patch", "/datasets/{id}", "Edit a dataset (owner)", DatasetUpdate, DatasetInfo),
    Op("delete", "/datasets/{id}", "Delete a dataset no task or workspace uses", status=204),
    Op(
        "put",
        f"/datasets/{{id}}/archives/{SPLIT}",
        "Upload a zip or tar(.gz) as the train or test split: unpacked, validated, "
        "installed all or nothing",
        response=DatasetInfo,
        query=("filename",),
        body_kind="archive",
    ),
    Op("post", "/datasets/{id}/publish", "Put a dataset online", response=DatasetInfo),
    Op("post", "/datasets/{id}/offline", "Take a dataset offline", response=DatasetInfo),
    Op(
        "get",
        f"/datasets/{{id}}/samples/{SPLIT}",
        "A page of samples for preview",
        response=SamplePage,
        query=("offset", "limit"),
    ),
    Op("get", f"/datasets/{{id}}/files/{SPLIT}/{{path}}", "The raw file of one sample"),
    Op("get", "/workspaces", "Workspaces I own or am a member of", response=list[WorkspaceInfo]),
    Op(
        "post",
        "/workspaces",
        "Create a workspace (folders and code; not started)",
        WorkspaceCreate,
        WorkspaceInfo,
        201,
    ),
    Op("get", "/workspaces/{id}", "One workspace", response=WorkspaceInfo),
    Op(
        "delete",
        "/workspaces/{id}",
        "Delete a workspace, its container and files (owner)",
        status=204,
    ),
    Op("post", "/workspaces/{id}/start", "Start the workspace's container", response=WorkspaceInfo),
    Op("post", "/workspaces/{id}/stop", "Stop it; files are kept", response=WorkspaceInfo),
    Op("get", "/workspaces/{id}/download/{folder}", "code/ or model/ as a zip (owner and members)"),
    Op("get", "/workspaces/{id}/ready", 'Whether its JupyterLab answers yet: {"ready": bool}'),
    Op(
        "post",
        "/workspaces/{id}/members",
        "Invite a team member (owner); a member once they accept",
        WorkspaceMemberAdd,
        WorkspaceInfo,
    ),
    Op(
        "delete",
        "/workspaces/{id}/members/{username}",
        "Remove a member (owner)",
        response=WorkspaceInfo,
    ),
    Op(
        "put",
        "/workspaces/{id}/code",
        "Replace code/ with a zip or tar(.gz) (owner)",
        response=WorkspaceInfo,
        body_kind="archive",
    ),
    Op(
        "get",
        "/environments",
        "Environments I can see: mine, public and preset",
        response=list[EnvironmentInfo],
        query=("mine", "visibility", "framework", "device", "state", "q"),
    ),
    Op(
        "post",
        "/environments",
        "Create an environment (state draft)",
        EnvironmentCreate,
        EnvironmentInfo,
        201,
    ),
    Op(
        "post",
        "/environments/presets",
        "Register one preset environment per envs/ definition (admins; idempotent)",
        response=list[EnvironmentInfo],
    ),
    Op("get", "/environments/{id}", "One environment", response=EnvironmentInfo),
    Op(
        "patch",
        "/environments/{id}",
        "Edit an environment (owner; admins for presets)",
        EnvironmentUpdate,
        EnvironmentInfo,
    ),
    Op("delete", "/environments/{id}", "Delete an environment no workspace uses", status=204),
    Op(
        "post",
        "/environments/{id}/build",
        "Start building its image from its definition, in the background (state building)",
        response=EnvironmentInfo,
        status=202,
    ),
    Op(
        "get",
        "/environments/{id}/log",
        "The build log so far, as text/plain from byte `offset`; headers "
        "X-Workbench-Next-Offset and X-Workbench-State",
        query=("offset",),
    ),
    Op(
        "put",
        "/environments/{id}/image",
        "Upload a docker save tar as its image: checked (manifest, configs, layers, a tag), "
        "then loaded in the background (a job: `job_id`; state building)",
        response=EnvironmentInfo,
        status=202,
        body_kind="archive",
    ),
    Op(
        "post",
        "/environments/{id}/pull",
        "docker pull an image as its image, in the background (a job: `job_id`; Docker "
        "Engine backends, 501 elsewhere)",
        ImagePull,
        EnvironmentInfo,
        202,
    ),
    # --- training and models ---
    Op(
        "get",
        "/training/tasks",
        "Training tasks I can see: mine and everyone's public ones",
        response=list[TaskInfo],
        query=(
            "mine",
            "visibility",
            "purpose",
            "sub_purpose",
            "state",
            "algorithm_id",
            "dataset_id",
            "q",
        ),
    ),
    Op(
        "post",
        "/training/tasks",
        'Create a training task (a draft, or queued at once with "start": true)',
        TaskCreate,
        TaskInfo,
        201,
    ),
    Op("get", "/training/tasks/{id}", "One training task", response=TaskInfo),
    Op(
        "patch",
        "/training/tasks/{id}",
        "Edit a training task (owner; a draft or a finished task)",
        TaskUpdate,
        TaskInfo,
    ),
    Op(
        "delete",
        "/training/tasks/{id}",
        "Delete a task that is not queued or running, its runs, logs and metrics (owner); "
        "its model versions stay",
        status=204,
    ),
    Op(
        "post", "/training/tasks/{id}/start", "Queue a draft's first run (owner)", response=TaskInfo
    ),
    Op(
        "post",
        "/training/tasks/{id}/stop",
        "Stop a queued task at once, a running one once its container has exited (owner)",
        response=TaskInfo,
    ),
    Op(
        "post",
        "/training/tasks/{id}/retry",
        "Queue a new run of a finished task (owner)",
        response=TaskInfo,
    ),
    Op(
        "get",
        "/training/tasks/{id}/log",
        "The run's log from byte `offset` (whole lines while it runs); `job_id`: an earlier run",
        response=TaskLogPage,
        query=("offset", "job_id"),
    ),
    Op(
        "get",
        "/training/tasks/{id}/metrics",
        "The run's metric lines after line `after` (at most 5000); `job_id`: an earlier run",
        response=list[MetricPoint],
        query=("after", "job_id"),
    ),
    Op(
        "get",
        "/training/tasks/{id}/runs",
        "Every run of the task (its jobs)",
        response=list[TrainingRunInfo],
    ),
    Op(
        "get",
        "/models",
        "Models I can see, each with its latest version; tag is `key` or `key=value` (the "
        "model's or a version's), framework any version's",
        response=list[ModelInfo],
        query=("mine", "visibility", "q", "name", "tag", "purpose", "framework", "owner"),
    ),
    Op(
        "put",
        "/models/import",
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
        body_kind="archive",
    ),
    Op("get", "/models/{id}", "One model with all its versions", response=ModelDetail),
    Op(
        "patch",
        "/models/{id}",
        "Edit a model: name, description, purpose, visibility (owner)",
        ModelUpdate,
        ModelDetail,
    ),
    Op(
        "delete",
        "/models/{id}",
        "Delete a model with its versions and files (owner); 409 while a service uses one",
        status=204,
    ),
    Op("put", "/models/{id}/tags/{key}", "Set a tag on a model (owner); its tags", TagValue),
    Op("delete", "/models/{id}/tags/{key}", "Remove a model's tag (owner); its tags"),
    Op(
        "get",
        "/models/{id}/aliases/{alias}",
        "The version an alias points at",
        response=ModelVersionInfo,
    ),
    Op(
        "put",
        "/models/{id}/aliases/{alias}",
        "Point an alias at a version number, made or moved in one step (owner); the aliases",
        AliasTarget,
    ),
    Op("delete", "/models/{id}/aliases/{alias}", "Remove an alias (owner); the aliases"),
    Op(
        "get",
        "/model-versions/compare",
        "Two or more versions side by side (ids=3,5): parameters, metrics, what differs",
        response=VersionComparison,
        query=("ids",),
    ),
    Op(
        "get",
        "/model-versions/{id}",
        "One model version: files, evaluation and lineage",
        response=ModelVersionInfo,
    ),
    Op(
        "patch",
        "/model-versions/{id}",
        "Edit a version's description",
        VersionUpdate,
        ModelVersionInfo,
    ),
    Op(
        "delete",
        "/model-versions/{id}",
        "Delete a version and its files (owner); 409 while a service, an alias or an "
        "unfinished task uses it",
        status=204,
    ),
    Op(
        "get",
        "/model-versions/{id}/download",
        "The version's native files (or ?format=onnx: a verified format's) as a zip",
        query=("format",),
    ),
    Op(
        "post",
        "/model-versions/{id}/conversions",
        "Convert a version (owner) to deployment formats, each checked against the native "
        "model, as a job (202; formats default to all its native kind converts to); 409 "
        "while one of them is converting",
        ConversionRequest,
        ConversionStarted,
        202,
    ),
    Op(
        "get",
        "/model-versions/{id}/formats",
        "A version's converted formats: state, check, file",
        response=list[FormatInfo],
    ),
    Op(
        "post",
        "/model-versions/{id}/benchmarks",
        "Benchmark a version (owner): the native model and its verified formats at batch "
        "sizes 1, 2, 4, ... up to max_batch, as a job (202); 409 while one runs",
        BenchmarkRequest,
        BenchmarkStarted,
        202,
    ),
    Op(
        "get",
        "/model-versions/{id}/benchmarks",
        "A version's benchmark on one machine (default: the newest): p50/p95/p99, "
        "throughput, memory per format and batch size; the best per latency budget",
        response=BenchmarkReport,
        query=("machine",),
    ),
    Op("put", "/model-versions/{id}/tags/{key}", "Set a tag on a version (owner)", TagValue),
    Op("delete", "/model-versions/{id}/tags/{key}", "Remove a version's tag (owner)"),
    Op(
        "post",
        "/workspaces/{id}/builds",
        "Build code/<project> into docker_image/<kind>-<name>.tar (owner, members); the log "
        "streams as text/plain, its last line `OK <path>` or `ERROR <code>: <message>`",
        WorkspaceBuildRequest,
    ),
    Op(
        "get",
        "/workspaces/{id}/images",
        "The docker save tars in the workspace's docker_image/",
        response=list[ImageTarInfo],
    ),
    Op(
        "get",
        "/workspaces/{id}/images/{path}",
        "Check docker_image/<path> (a file name) as publishing it would: naming, tags, "
        "config, digest, size, layers, problems; nothing is loaded (owner, members)",
        response=TarReport,
    ),
    # --- algorithms ---
    Op(
        "get",
        "/algorithms",
        "Algorithms I can see: mine, public and preset",
        response=list[AlgorithmInfo],
        query=("visibility", "purpose", "sub_purpose", "state", "q"),
    ),
    Op(
        "post",
        "/algorithms",
        "Register an algorithm (state draft): purpose, and how its train and predict images run",
        AlgorithmCreate,
        AlgorithmInfo,
        201,
    ),
    Op("get", "/algorithms/{id}", "One algorithm with both images", response=AlgorithmInfo),
    Op(
        "patch",
        "/algorithms/{id}",
        "Edit an algorithm (owner; admins for presets); run settings only while not online",
        AlgorithmUpdate,
        AlgorithmInfo,
    ),
    Op(
        "delete",
        "/algorithms/{id}",
        "Delete an algorithm no training task, model version or service uses, and its images",
        status=204,
    ),
    Op(
        "post",
        "/algorithms/{id}/publish",
        "Put it online (needs a ready training image with a command)",
        response=AlgorithmInfo,
    ),
    Op(
        "post",
        "/algorithms/{id}/offline",
        "Take it offline: new training tasks refuse it",
        response=AlgorithmInfo,
    ),
    Op(
        "put",
        "/algorithms/{id}/images/{kind}",
        "Upload a docker save tar as the train or predict image: checked (manifest, config, "
        "layers, a tag, size, a command), then loaded and tagged workbench/algo-<id>-<kind> "
        "in the background (a job: the image's `job_id`; state loading)",
        response=AlgorithmInfo,
        status=202,
        query=("filename",),
        body_kind="archive",
    ),
    Op(
        "post",
        "/algorithms/{id}/images/{kind}/pull",
        "docker pull an image as the train or predict image, in the background (a job; "
        "Docker Engine backends, 501 elsewhere)",
        ImagePull,
        AlgorithmInfo,
        202,
    ),
    Op(
        "post",
        "/algorithms/{id}/images/{kind}/from-workspace",
        "Check docker_image/<kind>-<name>.tar of a workspace I own or am a member of, then "
        "load it as the image in the background (a job)",
        ImageFromWorkspace,
        AlgorithmInfo,
        202,
    ),
    # --- services ---
    Op("get", "/services", "Services I can see, newest first", response=list[ServiceInfo]),
    Op(
        "post",
        "/services",
        "Serve a model version: its default serving format (or format), replicas of the model "
        "server in its environment image; a deploy job (202). The answer's service.key is the "
        "endpoint's key (Authorization: Bearer <key>), given this once; public_endpoint: true "
        "opens the endpoint to anyone, on purpose",
        ServiceCreate,
        ServiceStarted,
        202,
    ),
    Op("get", "/services/{id}", "One service with each replica's state", response=ServiceInfo),
    Op("delete", "/services/{id}", "Remove a service and its replicas (owner)", status=204),
    Op(
        "post",
        "/services/{id}/scale",
        "Set the number of replicas (owner); a deploy job (202)",
        ServiceScale,
        ServiceStarted,
        202,
    ),
    Op(
        "post",
        "/services/{id}/stop",
        "Replicas to 0, the service and its settings kept (owner); a deploy job (202)",
        response=ServiceStarted,
        status=202,
    ),
    Op(
        "post",
        "/services/{id}/start",
        "Its replicas again (owner); a deploy job (202)",
        response=ServiceStarted,
        status=202,
    ),
    Op(
        "post",
        "/services/{id}/restart",
        "Every replica replaced by a new one (owner); a deploy job (202)",
        response=ServiceStarted,
        status=202,
    ),
    Op(
        "post",
        "/services/{id}/key",
        "A new key for the service's endpoint (owner), given this once; the old one is "
        "refused from this answer on",
        response=ServiceKey,
    ),
    Op(
        "get",
        "/services/{id}/metrics",
        "Each running replica's counters now (requests, errors, latency and batch-size "
        "histograms, queue depth); two readings give the rates",
        response=ServiceMetrics,
    ),
    Op(
        "get",
        "/services/{id}/logs",
        "The replicas' last log lines (`replica`: one of them; `tail`: lines, default 200)",
        response=list[ReplicaLog],
        query=("replica", "tail"),
    ),
    Op(
        "get",
        "/services/{id}/endpoint/{path}",
        "The service's endpoint relayed (its V2 metadata, health...), for whoever sees it",
    ),
    Op(
        "post",
        "/services/{id}/endpoint/{path}",
        "The service's endpoint relayed: V2 infer (JSON or binary, the "
        "Inference-Header-Content-Length header passed on) or the simple /predict route",
    ),
    # --- jobs ---
    Op(
        "get",
        "/jobs",
        "My jobs, newest first (builds, image loads, training runs...); `all`: everyone's (admins)",
        response=list[JobInfo],
        query=("kind", "state", "target_type", "target_id", "all", "limit"),
    ),
    Op("get", "/jobs/{id}", "One job: state, progress, message, result", response=JobInfo),
    Op(
        "get",
        "/jobs/{id}/log",
        "The job's log from byte `offset` (whole lines while it runs)",
        response=JobLogPage,
        query=("offset",),
    ),
    Op(
        "post",
        "/jobs/{id}/cancel",
        "Cancel it: a queued job stops at once, a running one at its next step (a "
        "container: SIGTERM, SIGKILL after 10 s)",
        response=JobInfo,
    ),
)

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable code, e.g. archive_unsafe"},
        "message": {"type": "string", "description": "what went wrong and what to do"},
        "details": {"type": "object"},
    },
}


def _schema_ref(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        defs[tp.__name__] = schema
        return {"$ref": f"#/components/schemas/{tp.__name__}"}
    return schema


def build_document() -> dict[str, Any]:
    defs: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        params = [
            {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for name in op.path.split("/")
            if name.startswith("{")
        ]
        params += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in op.query]
        entry: dict[str, Any] = {
            "summary": op.summary,
            "parameters": params,
            "responses": {
                str(op.status): {"description": "success"},
                "default": {
                    "description": "error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if op.response is not None:
            entry["responses"][str(op.status)]["content"] = {
                "application/json": {"schema": _schema_ref(op.response, defs)}
            }
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(op.request, defs)}},
            }
        elif op.body_kind == "archive":
            entry["requestBody"] = {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in ("application/zip", "application/gzip", "application/x-tar")
                },
            }
        paths.setdefault(API + op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Workbench REST API", "version": __version__},
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token wb_...' (a Workbench API token)",
                },
            },
        },
        "security": [{"token": []}],
        "paths": paths,
    }


class OpenAPIHandler(WorkbenchHandler):
    auth_resource = "workbench:api"
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(build_document())


class RootHandler(WorkbenchHandler):
    auth_resource = "workbench:api"
    token_scopes = scopes.needs(GET=scopes.IDENTIFY)

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(
            ApiRoot(version=__version__, user=self.actor.username, openapi=f"{API}/openapi.json")
        )


handlers = [(rf"{API}/?", RootHandler), (rf"{API}/openapi.json", OpenAPIHandler)]
