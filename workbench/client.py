"""A Python client of the Workbench REST API (used by the CLI, the widgets and notebooks).

    from workbench.client import WorkbenchClient
    wb = WorkbenchClient.from_env()          # WORKBENCH_URL / WORKBENCH_TOKEN, or `workbench login`
    ds = wb.datasets.create(name="digits", purpose="image", sub_purpose="classification",
                            format="dir", split_mode="independent")
    wb.datasets.upload(ds.id, "train", "digits-train.zip", progress=print)

Errors come back as the same exception classes the server raised (``workbench.errors``).
Long operations (builds, image loads, pulls) are jobs on the server: the methods that start
one wait for it by default (``wait=True``) and raise its error if it fails; ``wait=False``
returns at once, and ``client.jobs`` follows it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.config import Settings
from workbench.datasets.schemas import DatasetInfo, SamplePage
from workbench.deployments.schemas import (
    ReplicaLog,
    ServiceInfo,
    ServiceKey,
    ServiceMetrics,
    ServiceStarted,
)
from workbench.environments.schemas import EnvironmentInfo
from workbench.errors import (
    InferenceError,
    ServerUnreachable,
    Unauthenticated,
    WorkbenchError,
    rebuild_error,
)
from workbench.jobs.schemas import JobInfo, JobLogPage, wait_for_job
from workbench.jobs.states import FINISHED_JOB_STATES
from workbench.models.schemas import (
    BenchmarkReport,
    BenchmarkStarted,
    ConversionStarted,
    FormatInfo,
    ImportStarted,
    ModelDetail,
    ModelInfo,
    ModelVersionInfo,
    VersionComparison,
)
from workbench.schemas.invitations import InvitationInfo
from workbench.schemas.quotas import QuotaInfo
from workbench.schemas.users import NewToken, TeamInfo, TokenInfo, UserInfo
from workbench.training.schemas import (
    MetricPoint,
    TaskInfo,
    TrainingRunInfo,
)
from workbench.workspaces.schemas import (
    ImageTarInfo,
    TarReport,
    WorkspaceBuildStarted,
    WorkspaceInfo,
)

API = "workbench/api/v1"
CHUNK = 1024 * 1024

#: called with (bytes sent, total bytes) while an upload streams
Progress = Callable[[int, int], None]
LONG = httpx.Timeout(60.0, read=None)


class WorkbenchClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self._http = httpx.Client(
            base_url=self.url + API,
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            transport=transport,
        )
        self.datasets = DatasetsAPI(self)
        self.workspaces = WorkspacesAPI(self)
        self.environments = EnvironmentsAPI(self)
        self.algorithms = AlgorithmsAPI(self)
        self.training = TrainingAPI(self)
        self.models = ModelsAPI(self)
        self.services = ServicesAPI(self)
        self.jobs = JobsAPI(self)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WorkbenchClient:
        """From ``WORKBENCH_URL`` and ``WORKBENCH_TOKEN``, else the credentials file that
        ``workbench login`` or ``workbench lab`` wrote under ``WORKBENCH_HOME``."""
        env = os.environ if environ is None else environ
        url, token = env.get("WORKBENCH_URL"), env.get("WORKBENCH_TOKEN")
        if not (url and token):
            path = Settings.from_env(dict(env)).credentials_file
            if not path.exists():
                raise Unauthenticated(
                    "No Workbench server configured: set WORKBENCH_URL and WORKBENCH_TOKEN, "
                    "or run `workbench login URL --token TOKEN` (or `workbench lab`)."
                )
            saved = json.loads(path.read_text())
            url, token = saved["url"], saved["token"]
        return cls(url, token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WorkbenchClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Cannot reach the Workbench at {self.url} ({exc}); is the server running?",
                url=self.url,
            ) from exc
        if response.is_error:
            raise _error_from(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it comes; errors raised like :meth:`request`."""
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise _error_from(response)
                yield response
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Cannot reach the Workbench at {self.url} ({exc}); is the server running?",
                url=self.url,
            ) from exc

    def upload(
        self,
        path: str,
        file: Path,
        progress: Progress | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """PUT a file's bytes as the body, streamed in chunks (never read whole)."""
        total = file.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with file.open("rb") as f:
                while chunk := f.read(CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress:
                        progress(sent, total)

        return self.json(
            "PUT",
            path,
            params=params,
            content=chunks(),
            headers={"Content-Length": str(total), "Content-Type": "application/octet-stream"},
            timeout=httpx.Timeout(60.0, read=None, write=None),
        )

    # --- users and tokens -----------------------------------------------------------------

    def me(self) -> UserInfo:
        return UserInfo.model_validate(self.json("GET", "/me"))

    def users(self) -> list[UserInfo]:
        return _list(UserInfo, self.json("GET", "/users"))

    def add_user(self, username: str, role: str = "member") -> UserInfo:
        body = {"username": username, "role": role}
        return UserInfo.model_validate(self.json("POST", "/users", json=body))

    def create_token(self, name: str, expires_in_days: int | None = None) -> NewToken:
        body = {"name": name, "expires_in_days": expires_in_days}
        return NewToken.model_validate(self.json("POST", "/tokens", json=body))

    def tokens(self) -> list[TokenInfo]:
        return _list(TokenInfo, self.json("GET", "/tokens"))

    def revoke_token(self, token_id: int) -> None:
        self.request("DELETE", f"/tokens/{token_id}")

    def teams(self) -> list[TeamInfo]:
        return _list(TeamInfo, self.json("GET", "/teams"))

    def create_team(self, name: str, description: str = "") -> TeamInfo:
        body = {"name": name, "description": description}
        return TeamInfo.model_validate(self.json("POST", "/teams", json=body))

    def add_team_member(self, team_id: int, username: str) -> TeamInfo:
        """Invite ``username`` to the team: a member once they accept."""
        data = self.json("POST", f"/teams/{team_id}/members", json={"username": username})
        return TeamInfo.model_validate(data)

    def invitations(self) -> list[InvitationInfo]:
        """The invitations to you and those you sent."""
        return _list(InvitationInfo, self.json("GET", "/invitations"))

    def accept_invitation(self, invitation_id: int) -> InvitationInfo:
        data = self.json("POST", f"/invitations/{invitation_id}/accept")
        return InvitationInfo.model_validate(data)

    def decline_invitation(self, invitation_id: int) -> InvitationInfo:
        data = self.json("POST", f"/invitations/{invitation_id}/decline")
        return InvitationInfo.model_validate(data)

    def cancel_invitation(self, invitation_id: int) -> None:
        self.request("DELETE", f"/invitations/{invitation_id}")

    def quota(self, username: str) -> QuotaInfo:
        """A user's quotas and use (your own; anyone's for an admin)."""
        return QuotaInfo.model_validate(self.json("GET", f"/users/{username}/quota"))

    def set_quota(self, username: str, **quotas: int | None) -> QuotaInfo:
        """Set a user's ``replicas``, ``memory_mb`` or ``upload_bytes`` (admins; None: the
        server's default)."""
        data = self.json("PUT", f"/users/{username}/quota", json=quotas)
        return QuotaInfo.model_validate(data)


class DatasetsAPI:
    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[DatasetInfo]:
        return _list(DatasetInfo, self._c.json("GET", "/datasets", params=_query(filters)))

    def create(self, **fields: Any) -> DatasetInfo:
        return DatasetInfo.model_validate(self._c.json("POST", "/datasets", json=fields))

    def get(self, dataset_id: int) -> DatasetInfo:
        return DatasetInfo.model_validate(self._c.json("GET", f"/datasets/{dataset_id}"))

    def update(self, dataset_id: int, **changes: Any) -> DatasetInfo:
        data = self._c.json("PATCH", f"/datasets/{dataset_id}", json=changes)
        return DatasetInfo.model_validate(data)

    def delete(self, dataset_id: int) -> None:
        self._c.request("DELETE", f"/datasets/{dataset_id}")

    def publish(self, dataset_id: int) -> DatasetInfo:
        return DatasetInfo.model_validate(self._c.json("POST", f"/datasets/{dataset_id}/publish"))

    def take_offline(self, dataset_id: int) -> DatasetInfo:
        data = self._c.json("POST", f"/datasets/{dataset_id}/offline")
        return DatasetInfo.model_validate(data)

    def upload(
        self, dataset_id: int, split: str, path: str | Path, progress: Progress | None = None
    ) -> DatasetInfo:
        """Stream an archive file to the server (never read whole into memory)."""
        path = Path(path)
        data = self._c.upload(
            f"/datasets/{dataset_id}/archives/{split}", path, progress, {"filename": path.name}
        )
        return DatasetInfo.model_validate(data)

    def samples(
        self, dataset_id: int, split: str = "train", offset: int = 0, limit: int = 20
    ) -> SamplePage:
        data = self._c.json(
            "GET",
            f"/datasets/{dataset_id}/samples/{split}",
            params={"offset": offset, "limit": limit},
        )
        return SamplePage.model_validate(data)

    def sample_bytes(self, dataset_id: int, split: str, path: str) -> bytes:
        return self._c.request("GET", f"/datasets/{dataset_id}/files/{split}/{path}").content


class WorkspacesAPI:
    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self) -> list[WorkspaceInfo]:
        return _list(WorkspaceInfo, self._c.json("GET", "/workspaces"))

    def create(self, **fields: Any) -> WorkspaceInfo:
        """Fields of ``WorkspaceCreate``; ``code`` is e.g. ``{"kind": "git", "url": ...}``."""
        data = self._c.json("POST", "/workspaces", json=fields, timeout=300)
        return WorkspaceInfo.model_validate(data)

    def get(self, workspace_id: int) -> WorkspaceInfo:
        return WorkspaceInfo.model_validate(self._c.json("GET", f"/workspaces/{workspace_id}"))

    def start(self, workspace_id: int) -> WorkspaceInfo:
        data = self._c.json("POST", f"/workspaces/{workspace_id}/start", timeout=300)
        return WorkspaceInfo.model_validate(data)

    def download(self, workspace_id: int, folder: str, dest: str | Path) -> Path:
        """Save ``code/`` or ``model/`` as a zip at ``dest``."""
        dest = Path(dest)
        with (
            self._c.stream("GET", f"/workspaces/{workspace_id}/download/{folder}") as response,
            dest.open("wb") as f,
        ):
            for chunk in response.iter_bytes():
                f.write(chunk)
        return dest

    def ready(self, workspace_id: int) -> bool:
        """Whether the running workspace's JupyterLab answers yet."""
        return bool(self._c.json("GET", f"/workspaces/{workspace_id}/ready")["ready"])

    def stop(self, workspace_id: int) -> WorkspaceInfo:
        data = self._c.json("POST", f"/workspaces/{workspace_id}/stop", timeout=120)
        return WorkspaceInfo.model_validate(data)

    def delete(self, workspace_id: int) -> None:
        self._c.request("DELETE", f"/workspaces/{workspace_id}", timeout=120)

    def add_member(self, workspace_id: int, username: str) -> WorkspaceInfo:
        data = self._c.json(
            "POST", f"/workspaces/{workspace_id}/members", json={"username": username}
        )
        return WorkspaceInfo.model_validate(data)

    def remove_member(self, workspace_id: int, username: str) -> WorkspaceInfo:
        data = self._c.json("DELETE", f"/workspaces/{workspace_id}/members/{username}")
        return WorkspaceInfo.model_validate(data)

    def upload_code(
        self, workspace_id: int, path: str | Path, progress: Progress | None = None
    ) -> WorkspaceInfo:
        data = self._c.upload(f"/workspaces/{workspace_id}/code", Path(path), progress)
        return WorkspaceInfo.model_validate(data)

    def build(
        self, workspace_id: int, project: str, kind: str, name: str, *, wait: bool = True
    ) -> WorkspaceBuildStarted:
        """Build ``code/<project>`` into ``docker_image/<kind>-<name>.tar``: a job, whose log
        :meth:`JobsAPI.follow` reads as it is written; ``wait``: until it ends (a failed
        build raises its error, ``BuildFailed``...)."""
        body = {"project": project, "kind": kind, "name": name}
        data = self._c.json("POST", f"/workspaces/{workspace_id}/builds", json=body)
        started = WorkspaceBuildStarted.model_validate(data)
        if wait:
            self._c.jobs.wait(started.job_id)
        return started

    def images(self, workspace_id: int) -> list[ImageTarInfo]:
        return _list(ImageTarInfo, self._c.json("GET", f"/workspaces/{workspace_id}/images"))

    def inspect_image(self, workspace_id: int, filename: str) -> TarReport:
        """Check ``docker_image/<filename>`` as publishing it as an algorithm's image would
        (naming, tags, config, digest, size, problems), loading nothing."""
        data = self._c.json("GET", f"/workspaces/{workspace_id}/images/{quote(filename)}")
        return TarReport.model_validate(data)


class EnvironmentsAPI:
    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[EnvironmentInfo]:
        """Filters: mine, visibility (private, public, preset), framework, device, state, q."""
        return _list(EnvironmentInfo, self._c.json("GET", "/environments", params=_query(filters)))

    def create(self, **fields: Any) -> EnvironmentInfo:
        return EnvironmentInfo.model_validate(self._c.json("POST", "/environments", json=fields))

    def get(self, env_id: int) -> EnvironmentInfo:
        return EnvironmentInfo.model_validate(self._c.json("GET", f"/environments/{env_id}"))

    def update(self, env_id: int, **changes: Any) -> EnvironmentInfo:
        data = self._c.json("PATCH", f"/environments/{env_id}", json=changes)
        return EnvironmentInfo.model_validate(data)

    def delete(self, env_id: int) -> None:
        self._c.request("DELETE", f"/environments/{env_id}", timeout=120)

    def build(self, env_id: int) -> EnvironmentInfo:
        """Start building the image from the definition; the state is "building" on return
        (follow it with :meth:`follow`)."""
        return EnvironmentInfo.model_validate(self._c.json("POST", f"/environments/{env_id}/build"))

    def upload_image(
        self,
        env_id: int,
        path: str | Path,
        progress: Progress | None = None,
        *,
        wait: bool = True,
    ) -> EnvironmentInfo:
        """Stream a ``docker save`` tar to the server, which checks it and loads it (a job;
        ``wait``: until it is loaded)."""
        data = self._c.upload(f"/environments/{env_id}/image", Path(path), progress)
        return self._done(EnvironmentInfo.model_validate(data), wait)

    def pull(self, env_id: int, reference: str, *, wait: bool = True) -> EnvironmentInfo:
        """``docker pull`` on the server's engine (a job; ``wait``: until it is pulled)."""
        data = self._c.json(
            "POST", f"/environments/{env_id}/pull", json={"reference": reference}, timeout=LONG
        )
        return self._done(EnvironmentInfo.model_validate(data), wait)

    def _done(self, info: EnvironmentInfo, wait: bool) -> EnvironmentInfo:
        if wait and info.job_id is not None:
            self._c.jobs.wait(info.job_id)
            return self.get(info.id)
        return info

    def sync_presets(self) -> list[EnvironmentInfo]:
        return _list(EnvironmentInfo, self._c.json("POST", "/environments/presets"))


class AlgorithmsAPI:
    """The algorithm library: ``train`` and ``predict`` take ``ImageSettings`` fields
    (command, args, env of typed parameters, device, api_spec)."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[AlgorithmInfo]:
        """Filters: visibility (mine, private, public, preset), purpose, sub_purpose, state,
        q (words in the name or description)."""
        return _list(AlgorithmInfo, self._c.json("GET", "/algorithms", params=_query(filters)))

    def create(self, **fields: Any) -> AlgorithmInfo:
        return AlgorithmInfo.model_validate(self._c.json("POST", "/algorithms", json=fields))

    def get(self, algorithm_id: int) -> AlgorithmInfo:
        return AlgorithmInfo.model_validate(self._c.json("GET", f"/algorithms/{algorithm_id}"))

    def update(self, algorithm_id: int, **changes: Any) -> AlgorithmInfo:
        data = self._c.json("PATCH", f"/algorithms/{algorithm_id}", json=changes)
        return AlgorithmInfo.model_validate(data)

    def delete(self, algorithm_id: int) -> None:
        self._c.request("DELETE", f"/algorithms/{algorithm_id}", timeout=120)

    def publish(self, algorithm_id: int) -> AlgorithmInfo:
        data = self._c.json("POST", f"/algorithms/{algorithm_id}/publish")
        return AlgorithmInfo.model_validate(data)

    def take_offline(self, algorithm_id: int) -> AlgorithmInfo:
        data = self._c.json("POST", f"/algorithms/{algorithm_id}/offline")
        return AlgorithmInfo.model_validate(data)

    def upload_image(
        self,
        algorithm_id: int,
        kind: str,
        path: str | Path,
        progress: Progress | None = None,
        *,
        wait: bool = True,
    ) -> AlgorithmInfo:
        """Stream a ``docker save`` tar as the ``train`` or ``predict`` image; the server
        checks it and loads it in the background (a job; ``wait``: until it is ready)."""
        path = Path(path)
        data = self._c.upload(
            f"/algorithms/{algorithm_id}/images/{kind}", path, progress, {"filename": path.name}
        )
        return self._done(AlgorithmInfo.model_validate(data), kind, wait)

    def pull_image(
        self, algorithm_id: int, kind: str, reference: str, *, wait: bool = True
    ) -> AlgorithmInfo:
        data = self._c.json(
            "POST",
            f"/algorithms/{algorithm_id}/images/{kind}/pull",
            json={"reference": reference},
            timeout=LONG,
        )
        return self._done(AlgorithmInfo.model_validate(data), kind, wait)

    def image_from_workspace(
        self, algorithm_id: int, kind: str, workspace_id: int, filename: str, *, wait: bool = True
    ) -> AlgorithmInfo:
        """Load ``docker_image/<filename>`` of a workspace as the image (manual 2.6.7)."""
        data = self._c.json(
            "POST",
            f"/algorithms/{algorithm_id}/images/{kind}/from-workspace",
            json={"workspace_id": workspace_id, "filename": filename},
            timeout=LONG,
        )
        return self._done(AlgorithmInfo.model_validate(data), kind, wait)

    def _done(self, info: AlgorithmInfo, kind: str, wait: bool) -> AlgorithmInfo:
        """With ``wait``: the algorithm once the image's load (a job) is over; its error
        if it failed."""
        job_id = (info.train if kind == "train" else info.predict).job_id
        if wait and job_id is not None:
            self._c.jobs.wait(job_id)
            return self.get(info.id)
        return info


class TrainingAPI:
    """Training tasks: ``create`` takes ``TaskCreate`` fields (``start=True`` queues the
    first run at once); a task's log and metrics are read while it runs."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[TaskInfo]:
        """Filters: mine, visibility, purpose, sub_purpose, state, algorithm_id,
        dataset_id, q."""
        return _list(TaskInfo, self._c.json("GET", "/training/tasks", params=_query(filters)))

    def create(self, **fields: Any) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", "/training/tasks", json=fields))

    def get(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("GET", f"/training/tasks/{task_id}"))

    def update(self, task_id: int, **changes: Any) -> TaskInfo:
        data = self._c.json("PATCH", f"/training/tasks/{task_id}", json=changes)
        return TaskInfo.model_validate(data)

    def delete(self, task_id: int) -> None:
        self._c.request("DELETE", f"/training/tasks/{task_id}")

    def start(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", f"/training/tasks/{task_id}/start"))

    def stop(self, task_id: int) -> TaskInfo:
        """Stop it; a running task's container gets SIGTERM, then SIGKILL after 10 s."""
        data = self._c.json("POST", f"/training/tasks/{task_id}/stop", timeout=120)
        return TaskInfo.model_validate(data)

    def retry(self, task_id: int) -> TaskInfo:
        return TaskInfo.model_validate(self._c.json("POST", f"/training/tasks/{task_id}/retry"))

    def metrics(
        self, task_id: int, after: int = -1, job_id: int | None = None
    ) -> list[MetricPoint]:
        """The metric lines after line ``after`` (at most 5000 a call)."""
        params = _query({"after": after, "job_id": job_id})
        data = self._c.json("GET", f"/training/tasks/{task_id}/metrics", params=params)
        return _list(MetricPoint, data)

    def runs(self, task_id: int) -> list[TrainingRunInfo]:
        return _list(TrainingRunInfo, self._c.json("GET", f"/training/tasks/{task_id}/runs"))


class ModelsAPI:
    """The model registry: models, their versions, tags, aliases, comparison, download."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[ModelInfo]:
        """Filters: mine, visibility, q, name, tag (``key`` or ``key=value``), purpose,
        framework, owner."""
        return _list(ModelInfo, self._c.json("GET", "/models", params=_query(filters)))

    def get(self, model_id: int) -> ModelDetail:
        return ModelDetail.model_validate(self._c.json("GET", f"/models/{model_id}"))

    def update(self, model_id: int, **changes: Any) -> ModelDetail:
        """name, description, purpose, visibility."""
        data = self._c.json("PATCH", f"/models/{model_id}", json=changes)
        return ModelDetail.model_validate(data)

    def delete(self, model_id: int) -> None:
        self._c.request("DELETE", f"/models/{model_id}")

    def set_tag(self, model_id: int, key: str, value: str) -> dict[str, str]:
        path = f"/models/{model_id}/tags/{quote(key, safe='')}"
        return dict(self._c.json("PUT", path, json={"value": value}))

    def delete_tag(self, model_id: int, key: str) -> dict[str, str]:
        return dict(self._c.json("DELETE", f"/models/{model_id}/tags/{quote(key, safe='')}"))

    def set_alias(self, model_id: int, alias: str, version: int) -> dict[str, int]:
        """Point ``alias`` at the model's version number ``version``; all its aliases."""
        path = f"/models/{model_id}/aliases/{alias}"
        return dict(self._c.json("PUT", path, json={"version": version}))

    def alias(self, model_id: int, alias: str) -> ModelVersionInfo:
        """The version ``alias`` points at now."""
        data = self._c.json("GET", f"/models/{model_id}/aliases/{alias}")
        return ModelVersionInfo.model_validate(data)

    def delete_alias(self, model_id: int, alias: str) -> dict[str, int]:
        return dict(self._c.json("DELETE", f"/models/{model_id}/aliases/{alias}"))

    def version(self, version_id: int) -> ModelVersionInfo:
        return ModelVersionInfo.model_validate(self._c.json("GET", f"/model-versions/{version_id}"))

    def update_version(self, version_id: int, **changes: Any) -> ModelVersionInfo:
        """description; signature (``{"inputs": [{"name", "dtype", "shape"}], ...}``)."""
        data = self._c.json("PATCH", f"/model-versions/{version_id}", json=changes)
        return ModelVersionInfo.model_validate(data)

    def delete_version(self, version_id: int) -> None:
        self._c.request("DELETE", f"/model-versions/{version_id}")

    def set_version_tag(self, version_id: int, key: str, value: str) -> dict[str, str]:
        path = f"/model-versions/{version_id}/tags/{quote(key, safe='')}"
        return dict(self._c.json("PUT", path, json={"value": value}))

    def delete_version_tag(self, version_id: int, key: str) -> dict[str, str]:
        path = f"/model-versions/{version_id}/tags/{quote(key, safe='')}"
        return dict(self._c.json("DELETE", path))

    def import_model(self, path: str | Path, kind: str, **options: Any) -> ModelVersionInfo:
        """Import a model trained elsewhere (the file or archive at ``path``) as a new
        version, and wait for its check (a job; a file that is not what ``kind`` says
        raises the server's error, and nothing is registered); the version, whose
        ``source`` lists the import's warnings. ``kind``: onnx, torchscript, pytorch (an
        archive of a state dict and its code, with ``entry="module:Class"``), keras,
        savedmodel (an archive), skops, pickle. Options as :meth:`start_import`'s."""
        started = self.start_import(path, kind, **options)
        job = self._c.jobs.wait(started.job_id)
        return self.version(int(job.result["version_id"]))

    def start_import(
        self,
        path: str | Path,
        kind: str,
        *,
        name: str | None = None,
        model_id: int | None = None,
        signature: dict[str, Any] | None = None,
        progress: Progress | None = None,
        **options: Any,
    ) -> ImportStarted:
        """Upload the file and queue its import (see :meth:`import_model`) without waiting.
        The version goes to the model ``model_id`` (yours), or to your model called
        ``name`` (made when you have none); ``signature`` where the file does not record
        it (torchscript, pytorch). Other options: file (the model file inside an archive),
        entry, environment_id, description, visibility, purpose."""
        path = Path(path)
        params = {"kind": kind, "filename": path.name, "name": name, "model_id": model_id}
        params.update(options)
        if signature:
            params["signature"] = json.dumps(signature)
        data = self._c.upload("/models/import", path, progress, _query(params))
        return ImportStarted.model_validate(data)

    def convert(
        self, version_id: int, formats: list[str] | None = None, *, wait: bool = True
    ) -> ConversionStarted:
        """Convert a version to deployment formats (a job); ``wait``: until it is over, a
        failed job raising its error. :meth:`formats` reads the result."""
        data = self._c.json(
            "POST", f"/model-versions/{version_id}/conversions", json={"formats": formats}
        )
        started = ConversionStarted.model_validate(data)
        if wait:
            self._c.jobs.wait(started.job_id)
        return started

    def formats(self, version_id: int) -> list[FormatInfo]:
        return _list(FormatInfo, self._c.json("GET", f"/model-versions/{version_id}/formats"))

    def benchmark(self, version_id: int, *, wait: bool = True, **options: Any) -> BenchmarkStarted:
        """Benchmark a version (a job; options: formats, max_batch, window_s, point_cap_s);
        ``wait``: until it is over, a failed job raising its error. :meth:`benchmarks`
        reads the figures."""
        data = self._c.json("POST", f"/model-versions/{version_id}/benchmarks", json=options)
        started = BenchmarkStarted.model_validate(data)
        if wait:
            self._c.jobs.wait(started.job_id)
        return started

    def benchmarks(self, version_id: int, machine: str | None = None) -> BenchmarkReport:
        params = {"machine": machine} if machine else None
        data = self._c.json("GET", f"/model-versions/{version_id}/benchmarks", params=params)
        return BenchmarkReport.model_validate(data)

    def compare(self, *version_ids: int) -> VersionComparison:
        params = {"ids": ",".join(map(str, version_ids))}
        data = self._c.json("GET", "/model-versions/compare", params=params)
        return VersionComparison.model_validate(data)

    def download(self, version_id: int, dest: str | Path, fmt: str | None = None) -> Path:
        """Save the version's native files (``fmt``: a verified format's) as a zip at
        ``dest`` (a folder: under the name the server gives, ``<model>-v<n>[-<fmt>].zip``)."""
        dest = Path(dest)
        params = {"format": fmt} if fmt else None
        path = f"/model-versions/{version_id}/download"
        with self._c.stream("GET", path, params=params) as response:
            if dest.is_dir():
                found = re.search(r'filename="([^"/]+)"', response.headers["content-disposition"])
                dest = dest / (found.group(1) if found else f"version-{version_id}.zip")
            part = dest.with_name(f".{dest.name}.part")
            with part.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
            part.replace(dest)
        return dest


class ServicesAPI:
    """Services: a model version served by replicas of the model server. Every change is a
    deploy job; ``wait``: until it is over, a failed deploy raising its error."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self) -> list[ServiceInfo]:
        return _list(ServiceInfo, self._c.json("GET", "/services"))

    def get(self, service_id: int) -> ServiceInfo:
        return ServiceInfo.model_validate(self._c.json("GET", f"/services/{service_id}"))

    def create(
        self,
        name: str,
        version_id: int | None = None,
        *,
        algorithm_id: int | None = None,
        wait: bool = True,
        **options: Any,
    ) -> ServiceInfo:
        """Serve a version with the model server, or with the inference image of
        ``algorithm_id`` (the version's files, if one is given, at ``$MODEL_DIR``). Options:
        format, replicas, cpus, memory_mb, options (the model server's: max_batch,
        max_delay_ms, max_queue, threads), visibility, public_endpoint. The answer's ``key``
        is the endpoint's key, given this once (``Authorization: Bearer <key>``)."""
        body = {"name": name, "version_id": version_id, "algorithm_id": algorithm_id, **options}
        started = ServiceStarted.model_validate(self._c.json("POST", "/services", json=body))
        return self._after(started, wait).model_copy(update={"key": started.service.key})

    def rotate_key(self, service_id: int) -> str:
        """A new key for the service's endpoint (its owner's), given this once; the old one
        is refused from now on."""
        data = self._c.json("POST", f"/services/{service_id}/key")
        return ServiceKey.model_validate(data).key

    def scale(self, service_id: int, replicas: int, *, wait: bool = True) -> ServiceInfo:
        data = self._c.json("POST", f"/services/{service_id}/scale", json={"replicas": replicas})
        return self._after(ServiceStarted.model_validate(data), wait)

    def stop(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "stop", wait)

    def start(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "start", wait)

    def restart(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "restart", wait)

    def delete(self, service_id: int) -> None:
        self._c.request("DELETE", f"/services/{service_id}", timeout=LONG)

    def metrics(self, service_id: int) -> ServiceMetrics:
        """Each running replica's counters now; :func:`workbench.deployments.metrics.rates`
        of two readings: requests per second, latency percentiles, mean batch size."""
        data = self._c.json("GET", f"/services/{service_id}/metrics")
        return ServiceMetrics.model_validate(data)

    def logs(
        self, service_id: int, *, replica: int | None = None, tail: int = 200
    ) -> list[ReplicaLog]:
        """The last ``tail`` lines of each replica's log (of replica ``replica`` only)."""
        params: dict[str, Any] = {"tail": tail}
        if replica is not None:
            params["replica"] = replica
        return _list(ReplicaLog, self._c.json("GET", f"/services/{service_id}/logs", params=params))

    def metadata(self, service_id: int, model: str) -> dict[str, Any]:
        """The served model's V2 metadata (inputs and outputs: names, datatypes, shapes)."""
        return dict(self._c.json("GET", f"/services/{service_id}/endpoint/v2/models/{model}"))

    def predict(self, service_id: int, sample: dict[str, Any]) -> dict[str, Any]:
        """One sample through the service's simple route, relayed by the server."""
        return self.call(service_id, "/predict", sample)

    def call(
        self, service_id: int, route: str, body: dict[str, Any] | None = None, method: str = "POST"
    ) -> Any:
        """Any route of the service (an inference image's API spec: its route, method and
        params), relayed by the server; its JSON answer."""
        path = f"/services/{service_id}/endpoint/{route.lstrip('/')}"
        if method == "GET":
            return self._c.json("GET", path, params=body or {})
        return self._c.json(method, path, json=body or {})

    def infer(self, service_id: int, model: str, request: dict[str, Any]) -> dict[str, Any]:
        """A V2 inference request (JSON tensors) through the service's endpoint."""
        path = f"/services/{service_id}/endpoint/v2/models/{model}/infer"
        return dict(self._c.json("POST", path, json=request))

    def _action(self, service_id: int, action: str, wait: bool) -> ServiceInfo:
        data = self._c.json("POST", f"/services/{service_id}/{action}")
        return self._after(ServiceStarted.model_validate(data), wait)

    def _after(self, started: ServiceStarted, wait: bool) -> ServiceInfo:
        if not wait:
            return started.service
        self._c.jobs.wait(started.job_id)
        return self.get(started.service.id)


class JobsAPI:
    """Long operations (builds, image loads, training runs): progress, log, cancel."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[JobInfo]:
        """Filters: kind, state, target_type, target_id, all (admins), limit."""
        return _list(JobInfo, self._c.json("GET", "/jobs", params=_query(filters)))

    def get(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(self._c.json("GET", f"/jobs/{job_id}"))

    def log(self, job_id: int, offset: int = 0) -> JobLogPage:
        data = self._c.json("GET", f"/jobs/{job_id}/log", params={"offset": offset})
        return JobLogPage.model_validate(data)

    def follow(self, job_id: int, interval: float = 1.0) -> Iterator[str]:
        """The log's lines as they are written, until the job is over: the one way to read
        any long work's log (a build, a training run, a conversion, a deploy...)."""
        offset = 0
        while True:
            page = self.log(job_id, offset)
            yield from page.text.splitlines()
            offset = page.next_offset
            if not page.text:
                if page.state in FINISHED_JOB_STATES:
                    return
                time.sleep(interval)

    def cancel(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(self._c.json("POST", f"/jobs/{job_id}/cancel", timeout=LONG))

    def wait(
        self,
        job_id: int,
        *,
        timeout: float = 3600,
        interval: float = 0.5,
        progress: Callable[[JobInfo], None] | None = None,
        check: bool = True,
    ) -> JobInfo:
        """Poll until the job is over (``progress`` is called with each reading); with
        ``check``, a failed job raises its error (the class the server raised)."""
        return wait_for_job(
            lambda: self.get(job_id),
            timeout=timeout,
            interval=interval,
            progress=progress,
            check=check,
        )


def _query(filters: dict[str, Any]) -> dict[str, str]:
    """Query parameters of a list call: None left out, booleans as true/false."""
    return {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in filters.items()
        if v is not None
    }


def _list(model: Any, data: Any) -> Any:
    return TypeAdapter(list[model]).validate_python(data)


def _error_from(response: httpx.Response) -> WorkbenchError:
    try:
        body = response.json()
        error: WorkbenchError
        if isinstance(body.get("error"), str) and "message" not in body:
            # a service's own error body, relayed (the model server's, its endpoint's)
            error = InferenceError(body["error"])
        else:
            message = body.get("message") or response.reason_phrase
            error = rebuild_error(body["error"], message, dict(body.get("details") or {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        error = WorkbenchError(f"HTTP {response.status_code}: {response.text[:200]}")
    error.http_status = response.status_code  # type: ignore[attr-defined]
    return error
