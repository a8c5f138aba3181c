"""The dataset lifecycle (manual chapter 2.1): create, upload, validate, inspect, publish,
share, delete.

An upload replaces a split only when the whole new archive unpacked safely and passed
validation: the new files are unpacked into a staging folder, published under a fresh
storage key, then the registry row is switched over in one transaction, and only then is
the old folder removed. Any failure before the switch leaves the previous files,
statistics and row exactly as they were.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from workbench.access import EditableService, check_visibility, get_owned, get_visible
from workbench.datasets.archives import dataset_root, extract_archive
from workbench.datasets.formats import inspect_dataset, list_samples, resolve_sample
from workbench.datasets.schemas import (
    DatasetCreate,
    DatasetFilter,
    DatasetInfo,
    SamplePage,
    SplitInfo,
)
from workbench.datasets.types import (
    DEFAULT_ANNOTATION,
    ArchiveLimits,
    Statistics,
    ValidationReport,
    check_kind,
)
from workbench.enums import UNFINISHED_TASK_STATES, PublishState, Split, SplitMode
from workbench.errors import Conflict, DatasetInvalid, InvalidInput, NotFound
from workbench.registry.db import Registry
from workbench.registry.models import (
    Dataset,
    DatasetSplit,
    Project,
    TrainingTask,
    Workspace,
    utcnow,
)
from workbench.schemas.common import from_row
from workbench.store import ArtifactStore, StoredFile
from workbench.users import Actor, username_of

log = logging.getLogger(__name__)

#: the states of a workspace that no longer uses its dataset
GONE_WORKSPACE_STATES = ("deleted",)


class DatasetService(EditableService[Dataset, DatasetInfo]):
    model = Dataset
    entity = "dataset"
    unique_name = "uq_datasets_owner_id_name"
    name_taken = "You already have a dataset"
    nullable = ("project_id",)
    newest_first = True

    def __init__(self, registry: Registry, store: ArtifactStore, limits: ArchiveLimits) -> None:
        self.registry = registry
        self.store = store
        self.limits = limits

    # --- reading --------------------------------------------------------------------------

    def list(self, actor: Actor, filters: DatasetFilter | None = None) -> list[DatasetInfo]:
        return self._list(actor, filters or DatasetFilter())

    def samples(
        self, actor: Actor, dataset_id: int, split: Split, offset: int = 0, limit: int = 20
    ) -> SamplePage:
        if offset < 0 or not 1 <= limit <= 200:
            raise InvalidInput("offset must be >= 0 and limit between 1 and 200.")
        root, ds = self._split_root(actor, dataset_id, split)
        total, samples = list_samples(root, ds.format, ds.purpose, offset, limit)
        return SamplePage(split=split, total=total, offset=offset, samples=samples)

    def sample_file(self, actor: Actor, dataset_id: int, split: Split, rel: str) -> Path:
        """The path of one sample's file, for the raw preview route."""
        root, _ = self._split_root(actor, dataset_id, split)
        return resolve_sample(root, rel)

    def split_path(self, actor: Actor, dataset_id: int, split: Split) -> Path:
        """The unpacked files of a split (for mounting into workspaces and tasks)."""
        return self._split_root(actor, dataset_id, split)[0]

    # --- changing -------------------------------------------------------------------------

    def create(self, actor: Actor, spec: DatasetCreate) -> DatasetInfo:
        check_kind(spec.purpose, spec.sub_purpose, spec.format)
        check_visibility(actor, spec.visibility)
        with self.registry.session() as s:
            self._check_unique_name(s, actor.id, spec.name)
            if spec.project_id is not None:
                get_visible(s, Project, spec.project_id, actor, "project")
            row = Dataset(
                owner_id=actor.id,
                **spec.model_dump(exclude={"annotation_type"}),
                annotation_type=spec.annotation_type or DEFAULT_ANNOTATION[spec.sub_purpose],
            )
            return self._added(s, row)

    def _change(
        self, s: Session, actor: Actor, row: Dataset, changes: BaseModel, fields: dict[str, Any]
    ) -> None:
        """Its kind only while no archive is uploaded (they were validated against it), a
        project the actor sees, then the fields."""
        kind_fields = {"purpose", "sub_purpose", "format", "split_mode"} & fields.keys()
        if kind_fields and row.splits:
            raise Conflict(
                f"{', '.join(sorted(kind_fields))} cannot change once archives are "
                "uploaded: they were validated against the current kind. Create a new "
                "dataset instead.",
                fields=sorted(kind_fields),
            )
        if fields.get("project_id") is not None:
            get_visible(s, Project, fields["project_id"], actor, "project")
        super()._change(s, actor, row, changes, fields)
        check_kind(row.purpose, row.sub_purpose, row.format)

    def upload(
        self, actor: Actor, dataset_id: int, split: Split, archive: StoredFile, filename: str
    ) -> DatasetInfo:
        """Unpack, validate and install ``archive`` as ``split``; all or nothing.

        The caller owns ``archive`` (a finished upload) and deletes it afterwards.
        """
        with self.registry.session() as s:
            ds = get_owned(s, Dataset, dataset_id, actor, "dataset")
            self._check_uploadable(ds, split)
            fmt, purpose = ds.format, ds.purpose
        key = f"datasets/{dataset_id}/{split}-{uuid.uuid4().hex[:12]}"
        with self.store.staging() as staging:
            summary = extract_archive(archive.path, staging / "unpacked", self.limits)
            root = dataset_root(staging / "unpacked")
            inspection = inspect_dataset(root, fmt, purpose)
            if not inspection.report.ok or inspection.statistics is None:
                raise DatasetInvalid(
                    _invalid_message(filename, inspection.report),
                    report=inspection.report.model_dump(mode="json"),
                )
            self.store.publish_dir(root, key)
        try:
            old_key = self._switch_split(
                actor,
                dataset_id,
                split,
                key,
                archive,
                filename,
                summary.files,
                summary.total_bytes,
                inspection.report,
                inspection.statistics,
            )
        except BaseException:
            self.store.delete(key)
            raise
        if old_key:
            self.store.delete(old_key)
        return self.get(actor, dataset_id)

    def check_upload(self, actor: Actor, dataset_id: int, split: Split) -> None:
        """Refuse an upload before its bytes arrive (unknown id, not the owner, online)."""
        with self.registry.session() as s:
            self._check_uploadable(get_owned(s, Dataset, dataset_id, actor, "dataset"), split)

    def publish(self, actor: Actor, dataset_id: int) -> DatasetInfo:
        return self._set_state(actor, dataset_id, PublishState.ONLINE)

    def take_offline(self, actor: Actor, dataset_id: int) -> DatasetInfo:
        return self._set_state(actor, dataset_id, PublishState.OFFLINE)

    def delete(self, actor: Actor, dataset_id: int) -> None:
        with self.registry.session() as s:
            ds = get_owned(s, Dataset, dataset_id, actor, "dataset")
            self._check_unused(s, ds)
            keys = [sp.storage_key for sp in ds.splits]
            s.delete(ds)
        for key in keys:
            self.store.delete(key)

    # --- helpers --------------------------------------------------------------------------

    def _set_state(self, actor: Actor, dataset_id: int, state: PublishState) -> DatasetInfo:
        """Put the dataset online (once it has every split its split mode needs) or take
        it offline (only from online)."""
        with self.registry.session() as s:
            ds = get_owned(s, Dataset, dataset_id, actor, "dataset")
            if state is PublishState.ONLINE:
                have = {sp.split for sp in ds.splits}
                needed = {Split.TRAIN} | (
                    {Split.TEST} if ds.split_mode is SplitMode.INDEPENDENT else set()
                )
                if missing := sorted(needed - have):
                    raise Conflict(
                        f"Dataset {dataset_id} cannot go online yet: upload its "
                        f"{' and '.join(missing)} archive first.",
                        missing=missing,
                    )
            elif ds.state is not PublishState.ONLINE:
                raise Conflict(f"Dataset {dataset_id} is {ds.state}, not online.")
            ds.state = state
            s.flush()
            return self._info(s, ds)

    @staticmethod
    def _check_uploadable(ds: Dataset, split: Split) -> None:
        if split is Split.TEST and ds.split_mode is not SplitMode.INDEPENDENT:
            raise InvalidInput(
                f"Dataset {ds.id} splits its train archive by ratio, so it takes no test "
                "archive; set split_mode to 'independent' to upload a separate test set.",
                field="split",
            )
        if ds.state is PublishState.ONLINE:
            raise Conflict(
                f"Dataset {ds.id} is online and may be in use; take it offline before "
                "replacing its files."
            )

    @staticmethod
    def _check_unused(s: Session, ds: Dataset) -> None:
        tasks = s.scalars(
            sa.select(TrainingTask.id).where(
                TrainingTask.dataset_id == ds.id, TrainingTask.state.in_(UNFINISHED_TASK_STATES)
            )
        ).all()
        workspaces = s.scalars(
            sa.select(Workspace.id).where(
                Workspace.dataset_id == ds.id, Workspace.state.not_in(GONE_WORKSPACE_STATES)
            )
        ).all()
        if tasks or workspaces:
            raise Conflict(
                f"Dataset {ds.id} is used by training tasks {list(tasks)} and workspaces "
                f"{list(workspaces)}; delete or finish them first.",
                tasks=list(tasks),
                workspaces=list(workspaces),
            )

    def _switch_split(
        self,
        actor: Actor,
        dataset_id: int,
        split: Split,
        key: str,
        archive: StoredFile,
        filename: str,
        files: int,
        unpacked: int,
        report: ValidationReport,
        statistics: Statistics,
    ) -> str | None:
        """Point the split's row at ``key``; return the key it pointed at before."""
        with self.registry.session() as s:
            ds = get_owned(s, Dataset, dataset_id, actor, "dataset")
            self._check_uploadable(ds, split)  # it may have changed while we unpacked
            row = next((sp for sp in ds.splits if sp.split is split), None)
            old_key = row.storage_key if row else None
            if row is None:
                row = DatasetSplit(split=split)
                ds.splits.append(row)
            row.archive_name = Path(filename).name[:255] or f"{split}.archive"
            row.archive_bytes = archive.size
            row.sha256 = archive.sha256
            row.files = files
            row.unpacked_bytes = unpacked
            row.storage_key = key
            row.report = report.model_dump(mode="json")
            row.statistics = statistics.model_dump(mode="json")
            row.uploaded_at = ds.updated_at = utcnow()
            return old_key

    def _split_root(self, actor: Actor, dataset_id: int, split: Split) -> tuple[Path, Dataset]:
        with self.registry.session() as s:
            ds = get_visible(s, Dataset, dataset_id, actor, "dataset")
            row = next((sp for sp in ds.splits if sp.split is split), None)
            if row is None:
                raise NotFound(
                    f"Dataset {dataset_id} has no {split} archive yet; upload one first.",
                    kind="split",
                    id=str(split),
                )
            return self.store.path(row.storage_key), ds

    def _info(self, s: Session, ds: Dataset) -> DatasetInfo:
        return from_row(
            DatasetInfo,
            ds,
            owner=username_of(s, ds.owner_id),
            splits={sp.split: from_row(SplitInfo, sp) for sp in ds.splits},
        )


def _invalid_message(filename: str, report: ValidationReport) -> str:
    shown = "; ".join(f"{e.path}: {e.message}" for e in report.errors[:3])
    more = len(report.errors) + report.errors_truncated - 3
    tail = f" (and {more} more)" if more > 0 else ""
    return (
        f"{filename} does not follow the {report.format} standard: {shown}{tail}. "
        "Fix these files and upload again; see the report for every file and "
        "docs/datasets.md for the standard."
    )
