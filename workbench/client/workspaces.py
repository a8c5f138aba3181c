"""``client.workspaces``: workspaces, their members and code, and the image tars built from
that code."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from workbench.client._http import AreaAPI, Progress, parse_list
from workbench.workspaces.schemas import (
    ImageTarInfo,
    TarReport,
    WorkspaceBuildStarted,
    WorkspaceInfo,
)


class WorkspacesAPI(AreaAPI[WorkspaceInfo]):
    """Workspaces (yours and those you are a member of), their members, code and builds."""

    path = "/workspaces"
    info = WorkspaceInfo
    delete_timeout = 120

    def create(self, **fields: Any) -> WorkspaceInfo:
        """Fields of ``WorkspaceCreate``; ``code`` is e.g. ``{"kind": "git", "url": ...}``."""
        return self.info.model_validate(self._c.json("POST", self.path, json=fields, timeout=300))

    def start(self, workspace_id: int) -> WorkspaceInfo:
        return self._call("POST", workspace_id, "start", timeout=300)

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
        return self._call("POST", workspace_id, "stop", timeout=120)

    def add_member(self, workspace_id: int, username: str) -> WorkspaceInfo:
        return self._call("POST", workspace_id, "members", json={"username": username})

    def remove_member(self, workspace_id: int, username: str) -> WorkspaceInfo:
        return self._call("DELETE", workspace_id, f"members/{username}")

    def upload_code(
        self, workspace_id: int, path: str | Path, progress: Progress | None = None
    ) -> WorkspaceInfo:
        data = self._c.upload(f"/workspaces/{workspace_id}/code", Path(path), progress)
        return self.info.model_validate(data)

    def build(
        self, workspace_id: int, project: str, kind: str, name: str, *, wait: bool = True
    ) -> WorkspaceBuildStarted:
        """Build ``code/<project>`` into ``docker_image/<kind>-<name>.tar``: a job, whose log
        :meth:`JobsAPI.follow` reads as it is written; ``wait``: until it ends (a failed
        build raises its error, ``BuildFailed``...)."""
        body = {"project": project, "kind": kind, "name": name}
        path = f"/workspaces/{workspace_id}/builds"
        return self._start(WorkspaceBuildStarted, path, wait, json=body)

    def images(self, workspace_id: int) -> list[ImageTarInfo]:
        return parse_list(ImageTarInfo, self._c.json("GET", f"/workspaces/{workspace_id}/images"))

    def inspect_image(self, workspace_id: int, filename: str) -> TarReport:
        """Check ``docker_image/<filename>`` as publishing it as an algorithm's image would
        (naming, tags, config, digest, size, problems), loading nothing."""
        data = self._c.json("GET", f"/workspaces/{workspace_id}/images/{quote(filename)}")
        return TarReport.model_validate(data)
