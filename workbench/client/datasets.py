"""``client.datasets``: datasets, their archives and samples."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.client._http import Progress, parse_list, query_params
from workbench.datasets.schemas import DatasetInfo, SamplePage

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class DatasetsAPI:
    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[DatasetInfo]:
        return parse_list(
            DatasetInfo, self._c.json("GET", "/datasets", params=query_params(filters))
        )

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
