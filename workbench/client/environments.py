"""``client.environments``: the environment registry and its images."""

from __future__ import annotations

from pathlib import Path

from workbench.client._http import LONG, EditableAPI, Progress, parse_list
from workbench.environments.schemas import EnvironmentInfo


class EnvironmentsAPI(EditableAPI[EnvironmentInfo]):
    """The environment registry: ``create`` and ``update`` take ``EnvironmentCreate`` and
    ``EnvironmentUpdate`` fields; ``list`` filters: mine, visibility (private, public,
    preset), framework, device, state, q."""

    path = "/environments"
    info = EnvironmentInfo
    delete_timeout = 120

    def build(self, env_id: int) -> EnvironmentInfo:
        """Start building the image from the definition; the state is "building" on return
        (follow it with :meth:`follow`)."""
        return self._call("POST", env_id, "build")

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
        return self._done(self.info.model_validate(data), wait)

    def pull(self, env_id: int, reference: str, *, wait: bool = True) -> EnvironmentInfo:
        """``docker pull`` on the server's engine (a job; ``wait``: until it is pulled)."""
        info = self._call("POST", env_id, "pull", json={"reference": reference}, timeout=LONG)
        return self._done(info, wait)

    def _done(self, info: EnvironmentInfo, wait: bool) -> EnvironmentInfo:
        if wait and info.job_id is not None:
            self._c.jobs.wait(info.job_id)
            return self.get(info.id)
        return info

    def sync_presets(self) -> list[EnvironmentInfo]:
        return parse_list(EnvironmentInfo, self._c.json("POST", "/environments/presets"))
