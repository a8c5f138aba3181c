"""``client.algorithms``: the algorithm library and its images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client._http import LONG, Progress, parse_list, query_params

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class AlgorithmsAPI:
    """The algorithm library: ``train`` and ``predict`` take ``ImageSettings`` fields
    (command, args, env of typed parameters, device, api_spec)."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[AlgorithmInfo]:
        """Filters: visibility (mine, private, public, preset), purpose, sub_purpose, state,
        q (words in the name or description)."""
        return parse_list(
            AlgorithmInfo, self._c.json("GET", "/algorithms", params=query_params(filters))
        )

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
