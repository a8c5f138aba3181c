"""``client.algorithms``: the algorithm library and its images."""

from __future__ import annotations

from pathlib import Path

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client._http import LONG, EditableAPI, Progress


class AlgorithmsAPI(EditableAPI[AlgorithmInfo]):
    """The algorithm library: in ``create`` and ``update``, ``train`` and ``predict`` take
    ``ImageSettings`` fields (command, args, env of typed parameters, device, api_spec);
    ``list`` filters: visibility (mine, private, public, preset), purpose, sub_purpose,
    state, q (words in the name or description)."""

    path = "/algorithms"
    info = AlgorithmInfo
    delete_timeout = 120

    def publish(self, algorithm_id: int) -> AlgorithmInfo:
        return self._call("POST", algorithm_id, "publish")

    def take_offline(self, algorithm_id: int) -> AlgorithmInfo:
        return self._call("POST", algorithm_id, "offline")

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
        return self._done(self.info.model_validate(data), kind, wait)

    def pull_image(
        self, algorithm_id: int, kind: str, reference: str, *, wait: bool = True
    ) -> AlgorithmInfo:
        body = {"reference": reference}
        info = self._call("POST", algorithm_id, f"images/{kind}/pull", json=body, timeout=LONG)
        return self._done(info, kind, wait)

    def image_from_workspace(
        self, algorithm_id: int, kind: str, workspace_id: int, filename: str, *, wait: bool = True
    ) -> AlgorithmInfo:
        """Load ``docker_image/<filename>`` of a workspace as the image (manual 2.6.7)."""
        body = {"workspace_id": workspace_id, "filename": filename}
        action = f"images/{kind}/from-workspace"
        info = self._call("POST", algorithm_id, action, json=body, timeout=LONG)
        return self._done(info, kind, wait)

    def _done(self, info: AlgorithmInfo, kind: str, wait: bool) -> AlgorithmInfo:
        """With ``wait``: the algorithm once the image's load (a job) is over; its error
        if it failed."""
        job_id = (info.train if kind == "train" else info.predict).job_id
        if wait and job_id is not None:
            self._c.jobs.wait(job_id)
            return self.get(info.id)
        return info
