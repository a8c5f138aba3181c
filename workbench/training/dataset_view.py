"""The dataset a training run sees: ``train/`` and ``test/`` in the dataset's own format,
and ``dataset.json`` describing them (docs/contracts.md, "The split").

:func:`materialize` builds the view in a folder of the artifact store from the dataset's
stored split folders, with hard links (copies where the file system refuses a link), so a
view of a large dataset costs neither time nor space:

- a dataset with an **independent** test set: its train and test folders as they are;
- a dataset split by **ratio**: its train folder cut in two, deterministically (the same
  seed and ratio always give the same split) by the rules of its format
  (:meth:`~workbench.datasets.formats.DatasetFormatRules.split`): stratified by class for
  ``dir`` and ``single_text``, by image for ``json`` (each part gets its own
  ``annotations.json`` listing its images and their annotations), by document for
  ``brat_ann`` (brat's ``.conf`` files go to both parts).

Hidden files are left out, as the validation ignores them. The view is mounted read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.datasets.formats import format_for
from workbench.datasets.formats.splitting import Linker, Splitter, train_count
from workbench.enums import DatasetFormat, SplitMode

__all__ = ["DatasetSource", "materialize", "train_count"]


@dataclass(frozen=True)
class DatasetSource:
    """A dataset's stored folders, as the registry describes them."""

    name: str
    format: DatasetFormat
    split_mode: SplitMode
    #: the stored train split (the folder after unpacking, its wrapper folder removed)
    train: Path
    #: the stored independent test split (None when the split mode is ratio)
    test: Path | None = None


def materialize(
    source: DatasetSource, target: Path, *, train_ratio: float | None, seed: str
) -> dict[str, Any]:
    """Write ``target/train``, ``target/test`` and ``target/dataset.json``; return what
    ``dataset.json`` holds. ``train_ratio`` is needed (and only used) for the ratio mode;
    ``seed`` makes the split repeatable (the training runner passes the task's id)."""
    rules = format_for(source.format)
    target.mkdir(parents=True, exist_ok=True)
    train, test = target / "train", target / "test"
    if source.split_mode is SplitMode.INDEPENDENT:
        if source.test is None:
            raise ValueError(f"dataset {source.name!r} has no test split to mount")
        links = Linker()
        links.tree(source.train, train)
        links.tree(source.test, test)
        ratio = None
    else:
        if train_ratio is None or not 0 < train_ratio < 1:
            raise ValueError(f"a train ratio in (0, 1) is needed, not {train_ratio!r}")
        rules.split(source.train, train, test, Splitter(train_ratio, seed))
        ratio = train_ratio
    train.mkdir(exist_ok=True)
    test.mkdir(exist_ok=True)
    train_classes, train_samples = rules.describe(train)
    test_classes, test_samples = rules.describe(test)
    document = {
        "name": source.name,
        "format": source.format.value,
        "split_mode": source.split_mode.value,
        "train_ratio": ratio,
        "classes": sorted(set(train_classes) | set(test_classes)),
        "samples": {"train": train_samples, "test": test_samples},
    }
    (target / "dataset.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return document
