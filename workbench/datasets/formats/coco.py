"""``json``: COCO-style object detection, ``annotations.json`` beside an ``images/`` folder."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.datasets.formats.base import BadFile, DatasetFormatRules, Issues
from workbench.datasets.formats.files import (
    entries,
    image_size,
    page,
    read_text,
    size_key,
    skip_hidden_or_link,
    sorted_counts,
    walk,
)
from workbench.datasets.formats.splitting import Splitter
from workbench.datasets.types import Sample, Statistics
from workbench.enums import DatasetFormat, Purpose
from workbench.errors import DatasetInvalid

ANNOTATIONS = "annotations.json"
IMAGES = "images"
#: how far (pixels) a box may stick out of its image
BBOX_TOLERANCE = 1.0


class CocoFormat(DatasetFormatRules):
    """Detection and segmentation: ``annotations.json`` (COCO's ``images``,
    ``annotations`` and ``categories``) and the images it lists in ``images/``."""

    format = DatasetFormat.JSON

    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics | None:
        for entry in entries(root):
            known = entry.name in (ANNOTATIONS, IMAGES)
            if not known and not skip_hidden_or_link(entry, entry.name, issues):
                issues.warning(entry.name, "not part of the json format; ignored")
        images_dir = root / IMAGES
        on_disk: set[str] = set()
        if images_dir.is_dir() and not images_dir.is_symlink():
            on_disk = set(walk(images_dir, f"{IMAGES}/", issues))
        else:
            issues.error(
                IMAGES, "missing folder; put the images in images/ beside annotations.json"
            )
        ann_path = root / ANNOTATIONS
        if not ann_path.is_file() or ann_path.is_symlink():
            issues.error(ANNOTATIONS, "missing; add the COCO-style annotations.json at the root")
            return None
        issues.files_checked += 1
        document = _load_annotations(ann_path, issues)
        if document is None:
            return None
        coco = _parse_coco(document, issues)
        sizes: Counter[str] = Counter()
        for image in sorted(coco.images.values(), key=lambda i: i.file_name):
            rel = f"{IMAGES}/{image.file_name}"
            if image.file_name not in on_disk:
                issues.error(rel, f"listed in annotations.json (image id {image.id}) but missing")
                continue
            issues.files_checked += 1
            try:
                size = image_size(images_dir / image.file_name)
            except BadFile as exc:
                issues.error(rel, str(exc))
                continue
            sizes[size_key(size)] += 1
            if size != (image.width, image.height):
                issues.error(
                    rel,
                    f"annotations.json declares {image.width}x{image.height} but the image is "
                    f"{size_key(size)}; fix width and height of image id {image.id}",
                )
            if image.id not in coco.boxes:
                issues.warning(rel, "has no annotations")
        for name in sorted(on_disk - {image.file_name for image in coco.images.values()}):
            issues.warning(f"{IMAGES}/{name}", "not listed in annotations.json; ignored")
        counts: Counter[str] = Counter({name: 0 for name in coco.categories.values()})
        for boxes in coco.boxes.values():
            counts.update(coco.categories[category] for category, _ in boxes)
        return Statistics(
            samples=len(coco.images),
            classes=sorted(counts),
            class_counts=sorted_counts(counts),
            image_sizes=sorted_counts(sizes),
            annotations=sum(len(boxes) for boxes in coco.boxes.values()),
        )

    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        scratch = Issues()
        document = _load_annotations(root / ANNOTATIONS, scratch)
        if document is None:
            raise DatasetInvalid(
                f"{ANNOTATIONS} cannot be read; upload a corrected archive.",
                errors=[issue.model_dump() for issue in scratch.errors],
            )
        coco = _parse_coco(document, scratch)
        images = sorted(coco.images.values(), key=lambda i: i.file_name)
        samples = [
            Sample(
                path=f"{IMAGES}/{image.file_name}",
                kind="image",
                boxes=[
                    {"label": coco.categories[category], "bbox": bbox}
                    for category, bbox in coco.boxes.get(image.id, [])
                ],
            )
            for image in page(images, offset, limit)
        ]
        return len(images), samples

    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        """By image: each part gets the images cut for it and an ``annotations.json`` that
        lists them, their annotations and every category (other keys kept as they are)."""
        document = _load_annotations(source / ANNOTATIONS, Issues())
        if document is None:
            raise ValueError(f"{source / ANNOTATIONS} cannot be read")
        images = {str(image["id"]): image for image in document["images"]}
        train_ids, _ = splitter.cut(list(images))
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
                splitter.link(source / IMAGES / name, folder / IMAGES / name)

    def describe(self, root: Path) -> tuple[list[str], int]:
        document = _load_annotations(root / ANNOTATIONS, Issues())
        if document is None:
            return [], 0
        coco = _parse_coco(document, Issues())
        return sorted(set(coco.categories.values())), len(coco.images)


@dataclass
class _CocoImage:
    id: int
    file_name: str
    width: int
    height: int


@dataclass
class _Coco:
    images: dict[int, _CocoImage] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)
    #: image id -> (category id, bbox) of its valid boxes
    boxes: dict[int, list[tuple[int, list[float]]]] = field(default_factory=dict)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_safe_name(value: object) -> bool:
    if not isinstance(value, str) or not value or value.startswith("/") or "\\" in value:
        return False
    return ".." not in value.split("/") and "\x00" not in value


class _Fields:
    """Reads typed fields of one JSON object, reporting problems against annotations.json."""

    def __init__(self, item: object, where: str, issues: Issues) -> None:
        self.item: dict[str, Any] = item if isinstance(item, dict) else {}
        self.where = where
        self.issues = issues
        self.ok = True
        self._is_object = isinstance(item, dict)
        if not self._is_object:
            self.fail(f"must be an object, got {item!r}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.issues.error(ANNOTATIONS, f"{self.where}: {message}")

    def get(self, key: str, check: Callable[[object], bool], expected: str) -> Any:
        """The value of ``key`` if it passes ``check``; otherwise None (and reported)."""
        if not self._is_object:
            return None
        if key not in self.item:
            self.fail(f"missing key {key!r}")
            return None
        value = self.item[key]
        if not check(value):
            self.fail(f"{key!r} must be {expected}, got {value!r}")
            return None
        return value


def _load_annotations(path: Path, issues: Issues) -> dict[str, list[Any]] | None:
    try:
        document = json.loads(read_text(path))
    except BadFile as exc:
        issues.error(ANNOTATIONS, str(exc))
        return None
    except json.JSONDecodeError as exc:
        issues.error(
            ANNOTATIONS,
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
        )
        return None
    if not isinstance(document, dict):
        issues.error(ANNOTATIONS, "must be a JSON object with images, annotations, categories")
        return None
    missing = [
        key
        for key in ("images", "annotations", "categories")
        if not isinstance(document.get(key), list)
    ]
    for key in missing:
        issues.error(ANNOTATIONS, f"missing key {key!r} (a list)")
    return None if missing else document


def _parse_coco(document: dict[str, list[Any]], issues: Issues) -> _Coco:
    """The valid entries of annotations.json; every invalid one is reported."""
    coco = _Coco()
    first_index: dict[int, int] = {}
    for index, item in enumerate(document["images"]):
        f = _Fields(item, f"images[{index}]", issues)
        image_id = f.get("id", _is_int, "an integer")
        name = f.get("file_name", _is_safe_name, "a relative path inside images/")
        width = f.get("width", _is_positive_int, "a positive integer")
        height = f.get("height", _is_positive_int, "a positive integer")
        if image_id is not None and image_id in first_index:
            f.fail(f"duplicate id {image_id} (also images[{first_index[image_id]}])")
        if f.ok:
            first_index[image_id] = index
            coco.images[image_id] = _CocoImage(image_id, name, width, height)
    for index, item in enumerate(document["categories"]):
        f = _Fields(item, f"categories[{index}]", issues)
        category_id = f.get("id", _is_int, "an integer")
        name = f.get("name", lambda v: isinstance(v, str) and bool(v.strip()), "a name")
        if category_id is not None and category_id in coco.categories:
            f.fail(f"duplicate id {category_id}")
        if f.ok:
            coco.categories[category_id] = name
    seen: set[int] = set()
    for index, item in enumerate(document["annotations"]):
        _parse_box(_Fields(item, f"annotations[{index}]", issues), coco, seen)
    return coco


def _parse_box(f: _Fields, coco: _Coco, seen: set[int]) -> None:
    box_id = f.get("id", _is_int, "an integer")
    image_id = f.get("image_id", _is_int, "an integer")
    category_id = f.get("category_id", _is_int, "an integer")
    bbox = f.get(
        "bbox",
        lambda v: isinstance(v, list) and len(v) == 4 and all(map(_is_number, v)),
        "4 numbers [x, y, width, height]",
    )
    if "segmentation" in f.item and not isinstance(f.item["segmentation"], list | dict):
        f.fail("'segmentation' must be a list of polygons or an RLE object")
    if box_id is not None:
        if box_id in seen:
            f.fail(f"duplicate id {box_id}")
        seen.add(box_id)
    if category_id is not None and category_id not in coco.categories:
        f.fail(f"unknown category_id {category_id}; add it to 'categories'")
    image = coco.images.get(image_id) if image_id is not None else None
    if image_id is not None and image is None:
        f.fail(f"unknown image_id {image_id}; add the image to 'images'")
    if bbox is not None:
        x, y, w, h = bbox
        if w <= 0 or h <= 0:
            f.fail(f"bbox {bbox} must have a positive width and height")
        elif image is not None and (
            x < -BBOX_TOLERANCE
            or y < -BBOX_TOLERANCE
            or x + w > image.width + BBOX_TOLERANCE
            or y + h > image.height + BBOX_TOLERANCE
        ):
            f.fail(
                f"bbox {bbox} lies outside the {image.width}x{image.height} image "
                f"{image.file_name!r}; boxes are [x, y, width, height] in pixels"
            )
    if f.ok and image is not None:
        coco.boxes.setdefault(image.id, []).append((category_id, bbox))
