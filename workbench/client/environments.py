"""``client.environments``: the environment registry and its images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.client._http import LONG, Progress, parse_list, query_params
from workbench.environments.schemas import EnvironmentInfo

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class EnvironmentsAPI:
    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[EnvironmentInfo]:
        """Filters: mine, visibility (private, public, preset), framework, device, state, q."""
        return parse_list(
            EnvironmentInfo, self._c.json("GET", "/environments", params=query_params(filters))
        )

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
        return parse_list(EnvironmentInfo, self._c.json("POST", "/environments/presets"))
