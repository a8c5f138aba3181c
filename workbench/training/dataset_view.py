"""The dataset a training run sees: ``train/`` and ``test/`` in the dataset's own format,
and ``dataset.json`` describing them (docs/contracts.md, "The split").

:func:`materialize` builds the view in a folder of the artifact store from the dataset's
stored split folders, with hard links (copies where the file system refuses a link), so a
view of a large dataset costs neither time nor space:

- a dataset with an **independent** test set: its train and test folders as they are;
- a dataset split by **ratio**: its train folder cut in two, deterministically (the same
  seed and ratio always give the same split) and stratified by class for ``dir`` and
  ``single_text``, by image for ``json`` (each part gets its own ``annotations.json``
  listing its images and their annotations), by document for ``brat_ann`` (brat's
  ``.conf`` files go to both parts).

Hidden files are left out, as the validation ignores them. The view is mounted read-only.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.enums import DatasetFormat, SplitMode

ANNOTATIONS = "annotations.json"
IMAGES = "images"
DATA_SUFFIXES = (".txt", ".tsv", ".csv")


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
    target.mkdir(parents=True, exist_ok=True)
    links = _Linker()
    train, test = target / "train", target / "test"
    if source.split_mode is SplitMode.INDEPENDENT:
        if source.test is None:
            raise ValueError(f"dataset {source.name!r} has no test split to mount")
        links.tree(source.train, train)
        links.tree(source.test, test)
        ratio = None
    else:
        if train_ratio is None or not 0 < train_ratio < 1:
            raise ValueError(f"a train ratio in (0, 1) is needed, not {train_ratio!r}")
        rng = random.Random(f"workbench-split:{seed}:{train_ratio!r}")
        _SPLITTERS[source.format](source.train, train, test, train_ratio, rng, links)
        ratio = train_ratio
    train.mkdir(exist_ok=True)
    test.mkdir(exist_ok=True)
    train_classes, train_samples = describe(train, source.format)
    test_classes, test_samples = describe(test, source.format)
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


def describe(root: Path, fmt: DatasetFormat) -> tuple[list[str], int]:
    """The classes (sorted) and the number of samples of one split folder."""
    if fmt is DatasetFormat.DIR:
        per_class = _dir_samples(root)
        return sorted(c for c, files in per_class.items() if files), sum(
            map(len, per_class.values())
        )
    if fmt is DatasetFormat.SINGLE_TEXT:
        data = _data_file(root)
        lines = _labelled_lines(data) if data else []
        return sorted({label for label, _ in lines}), len(lines)
    if fmt is DatasetFormat.JSON:
        path = root / ANNOTATIONS
        if not path.is_file():
            return [], 0
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        names = {str(c["name"]) for c in document.get("categories", [])}
        return sorted(names), len(document.get("images", []))
    stems = _brat_documents(root)
    types: set[str] = set()
    for stem in stems:
        types |= _entity_types(root / f"{stem}.ann")
    return sorted(types), len(stems)


def train_count(n: int, ratio: float) -> int:
    """How many of ``n`` samples go to train: ``n * ratio`` rounded half up, leaving at
    least one on each side when there are two or more."""
    if n <= 1:
        return n
    return min(n - 1, max(1, math.floor(n * ratio + 0.5)))


def _split(items: list[str], ratio: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """``items`` (sorted first, so the order they came in does not matter) shuffled and cut."""
    shuffled = sorted(items)
    rng.shuffle(shuffled)
    k = train_count(len(shuffled), ratio)
    return sorted(shuffled[:k]), sorted(shuffled[k:])


# --- the formats ------------------------------------------------------------------------------


def _visible_files(root: Path) -> Iterator[str]:
    """'/'-paths of the regular files below ``root`` outside hidden files and folders."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            if not name.startswith(".") and not os.path.islink(os.path.join(folder, name)):
                yield (rel / name).as_posix()


def _dir_samples(root: Path) -> dict[str, list[str]]:
    """class -> the '/'-paths of its samples."""
    per_class: dict[str, list[str]] = {}
    for entry in sorted(root.iterdir()) if root.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            per_class[entry.name] = [
                f"{entry.name}/{f.name}"
                for f in sorted(entry.iterdir())
                if f.is_file() and not f.is_symlink() and not f.name.startswith(".")
            ]
    return per_class


def _split_dir(
    source: Path, train: Path, test: Path, ratio: float, rng: random.Random, links: _Linker
) -> None:
    for _label, files in sorted(_dir_samples(source).items()):
        train_part, test_part = _split(files, ratio, rng)
        for rel in train_part:
            links.file(source / rel, train / rel)
        for rel in test_part:
            links.file(source / rel, test / rel)


def _data_file(root: Path) -> Path | None:
    found = [
        p
        for p in sorted(root.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in DATA_SUFFIXES
    ]
    return found[0] if found else None


def _labelled_lines(path: Path) -> list[tuple[str, str]]:
    """(label, line) of each sample line (``<label>\\t<text>``; blank lines skipped)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    result = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        label, tab, _ = line.partition("\t")
        if line.strip() and tab:
            result.append((label.strip(), line))
    return result


def _split_single_text(
    source: Path, train: Path, test: Path, ratio: float, rng: random.Random, links: _Linker
) -> None:
    data = _data_file(source)
    if data is None:
        raise ValueError(f"{source} holds no .txt, .tsv or .csv data file")
    lines = _labelled_lines(data)
    by_label: dict[str, list[str]] = defaultdict(list)
    for index, (label, _) in enumerate(lines):
        by_label[label].append(f"{index:09d}")  # sortable positions
    chosen: set[int] = set()
    for _label, positions in sorted(by_label.items()):
        train_part, _ = _split(positions, ratio, rng)
        chosen |= {int(p) for p in train_part}
    for folder, keep in ((train, True), (test, False)):
        folder.mkdir(parents=True, exist_ok=True)
        kept = [line for i, (_, line) in enumerate(lines) if (i in chosen) is keep]
        (folder / data.name).write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def _split_json(
    source: Path, train: Path, test: Path, ratio: float, rng: random.Random, links: _Linker
) -> None:
    document = json.loads((source / ANNOTATIONS).read_text(encoding="utf-8-sig"))
    images = {str(image["id"]): image for image in document["images"]}
    train_ids, _ = _split(list(images), ratio, rng)
    in_train = set(train_ids)
    for folder, keep in ((train, True), (test, False)):
        part = [image for key, image in images.items() if (key in in_train) is keep]
        ids = {image["id"] for image in part}
        written = {
            **document,
            "images": part,
            "annotations": [a for a in document["annotations"] if a.get("image_id") in ids],
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ANNOTATIONS).write_text(json.dumps(written), encoding="utf-8")
        for image in part:
            name = str(image["file_name"])
            links.file(source / IMAGES / name, folder / IMAGES / name)


def _brat_documents(root: Path) -> list[str]:
    """Stems of the ``.txt`` files that have an ``.ann`` beside them."""
    if not root.is_dir():
        return []
    files = set(_visible_files(root))
    return sorted(
        f.removesuffix(".txt")
        for f in files
        if f.endswith(".txt") and f.removesuffix(".txt") + ".ann" in files
    )


def _entity_types(ann: Path) -> set[str]:
    types = set()
    for line in ann.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if line.startswith("T") and len(fields) >= 2 and fields[1].split():
            types.add(fields[1].split()[0])
    return types


def _split_brat(
    source: Path, train: Path, test: Path, ratio: float, rng: random.Random, links: _Linker
) -> None:
    train_part, test_part = _split(_brat_documents(source), ratio, rng)
    for folder, stems in ((train, train_part), (test, test_part)):
        for stem in stems:
            for suffix in (".txt", ".ann"):
                links.file(source / f"{stem}{suffix}", folder / f"{stem}{suffix}")
        for rel in _visible_files(source):
            if rel.endswith(".conf"):
                links.file(source / rel, folder / rel)


_SPLITTERS = {
    DatasetFormat.DIR: _split_dir,
    DatasetFormat.SINGLE_TEXT: _split_single_text,
    DatasetFormat.JSON: _split_json,
    DatasetFormat.BRAT_ANN: _split_brat,
}


class _Linker:
    """Hard links, or copies once the file system has refused a link (another device,
    a file system without links)."""

    def __init__(self) -> None:
        self.copy = False

    def file(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not self.copy:
            try:
                os.link(source, target)
                return
            except OSError:
                self.copy = True
        shutil.copyfile(source, target)

    def tree(self, source: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for rel in _visible_files(source):
            self.file(source / rel, target / rel)
