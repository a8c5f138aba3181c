"""``client.models``: the model registry (models, versions, tags, aliases), imports,
conversions, benchmarks, comparison and download."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from workbench.client._http import AreaAPI, InfoT, Progress, parse_list, query_params
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

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class TaggedAPI(AreaAPI[InfoT]):
    """Things with free key/value tags (models and their versions, as in MLflow's registry)."""

    def set_tag(self, item_id: int, key: str, value: str) -> dict[str, str]:
        """Set the tag ``key``; all the thing's tags."""
        return dict(self._c.json("PUT", self._tag(item_id, key), json={"value": value}))

    def delete_tag(self, item_id: int, key: str) -> dict[str, str]:
        return dict(self._c.json("DELETE", self._tag(item_id, key)))

    def _tag(self, item_id: int, key: str) -> str:
        return f"{self.path}/{item_id}/tags/{quote(key, safe='')}"


class VersionsAPI(TaggedAPI[ModelVersionInfo]):
    """Model versions by their id (``client.models`` reads and changes them)."""

    path = "/model-versions"
    info = ModelVersionInfo

    def update(self, version_id: int, **changes: Any) -> ModelVersionInfo:
        return self._call("PATCH", version_id, json=changes)


class ModelsAPI(TaggedAPI[ModelInfo]):
    """The model registry: models, their versions, tags, aliases, comparison, download.
    ``list`` filters: mine, visibility, q, name, tag (``key`` or ``key=value``), purpose,
    framework, owner; ``get`` and ``update`` answer the model with its versions."""

    path = "/models"
    info = ModelInfo

    def __init__(self, client: WorkbenchClient) -> None:
        super().__init__(client)
        self._versions = VersionsAPI(client)

    def get(self, model_id: int) -> ModelDetail:
        return ModelDetail.model_validate(self._c.json("GET", f"/models/{model_id}"))

    def update(self, model_id: int, **changes: Any) -> ModelDetail:
        """name, description, purpose, visibility."""
        data = self._c.json("PATCH", f"/models/{model_id}", json=changes)
        return ModelDetail.model_validate(data)

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
        return self._versions.get(version_id)

    def update_version(self, version_id: int, **changes: Any) -> ModelVersionInfo:
        """description; signature (``{"inputs": [{"name", "dtype", "shape"}], ...}``)."""
        return self._versions.update(version_id, **changes)

    def delete_version(self, version_id: int) -> None:
        self._versions.delete(version_id)

    def set_version_tag(self, version_id: int, key: str, value: str) -> dict[str, str]:
        return self._versions.set_tag(version_id, key, value)

    def delete_version_tag(self, version_id: int, key: str) -> dict[str, str]:
        return self._versions.delete_tag(version_id, key)

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
        data = self._c.upload("/models/import", path, progress, query_params(params))
        return ImportStarted.model_validate(data)

    def convert(
        self, version_id: int, formats: list[str] | None = None, *, wait: bool = True
    ) -> ConversionStarted:
        """Convert a version to deployment formats (a job); ``wait``: until it is over, a
        failed job raising its error. :meth:`formats` reads the result."""
        path = f"/model-versions/{version_id}/conversions"
        return self._start(ConversionStarted, path, wait, json={"formats": formats})

    def formats(self, version_id: int) -> list[FormatInfo]:
        return parse_list(FormatInfo, self._c.json("GET", f"/model-versions/{version_id}/formats"))

    def benchmark(self, version_id: int, *, wait: bool = True, **options: Any) -> BenchmarkStarted:
        """Benchmark a version (a job; options: formats, max_batch, window_s, point_cap_s);
        ``wait``: until it is over, a failed job raising its error. :meth:`benchmarks`
        reads the figures."""
        path = f"/model-versions/{version_id}/benchmarks"
        return self._start(BenchmarkStarted, path, wait, json=options)

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
