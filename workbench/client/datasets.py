"""``client.datasets``: datasets, their archives and samples."""

from __future__ import annotations

from pathlib import Path

from workbench.client._http import EditableAPI, Progress
from workbench.datasets.schemas import DatasetInfo, SamplePage


class DatasetsAPI(EditableAPI[DatasetInfo]):
    """Datasets: ``create`` and ``update`` take ``DatasetCreate`` and ``DatasetUpdate``
    fields; ``list`` filters: purpose, sub_purpose, format, state, visibility, mine, q."""

    path = "/datasets"
    info = DatasetInfo

    def publish(self, dataset_id: int) -> DatasetInfo:
        return self._call("POST", dataset_id, "publish")

    def take_offline(self, dataset_id: int) -> DatasetInfo:
        return self._call("POST", dataset_id, "offline")

    def upload(
        self, dataset_id: int, split: str, path: str | Path, progress: Progress | None = None
    ) -> DatasetInfo:
        """Stream an archive file to the server (never read whole into memory)."""
        path = Path(path)
        data = self._c.upload(
            f"/datasets/{dataset_id}/archives/{split}", path, progress, {"filename": path.name}
        )
        return self.info.model_validate(data)

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
