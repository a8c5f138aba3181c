"""Validation, statistics and preview of the four dataset formats.

The standard each format follows is written down in docs/datasets.md; the checks below
implement it. :func:`inspect_dataset` checks every file and reports per-file errors and
warnings, :func:`list_samples` pages through the samples for preview, and
:func:`resolve_sample` maps a sample's path back to a file for the raw-file route.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from workbench.datasets.types import (
    FORMATS_FOR,
    FileIssue,
    Inspection,
    NumericSummary,
    Sample,
    Statistics,
    ValidationReport,
)
from workbench.enums import DatasetFormat, Purpose
from workbench.errors import DatasetInvalid, InvalidInput, NotFound

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEXT_EXTENSIONS = (".txt",)
SINGLE_TEXT_EXTENSIONS = (".txt", ".tsv", ".csv")
ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
#: how far (pixels) a box may stick out of its image
BBOX_TOLERANCE = 1.0
#: errors (and warnings) listed in a report; the rest are only counted
MAX_ISSUES = 200
#: characters of a text sample shown in a preview
PREVIEW_CHARS = 500
ROOT = "."

_T_LINE = re.compile(r"^(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)\t(.*)$")
_BRAT_OTHER_LINES = "REAMN#*"
_LINE_SUFFIX = re.compile(r"^(.+):\d+$")


class _BadFile(Exception):
    """A problem with one file or line; the message is reported as-is."""


@dataclass
class _Issues:
    """Collects a report's errors and warnings, capped at :data:`MAX_ISSUES` each."""

    errors: list[FileIssue] = field(default_factory=list)
    warnings: list[FileIssue] = field(default_factory=list)
    errors_truncated: int = 0
    files_checked: int = 0

    def error(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ISSUES:
            self.errors.append(FileIssue(path=path, message=message))
        else:
            self.errors_truncated += 1

    def warning(self, path: str, message: str) -> None:
        if len(self.warnings) < MAX_ISSUES:
            self.warnings.append(FileIssue(path=path, message=message))

    def report(self, fmt: DatasetFormat) -> ValidationReport:
        return ValidationReport(
            format=fmt,
            ok=not self.errors,
            files_checked=self.files_checked,
            errors=self.errors,
            warnings=self.warnings,
            errors_truncated=self.errors_truncated,
        )


# --- public API ---------------------------------------------------------------------------


def inspect_dataset(root: Path, fmt: DatasetFormat, purpose: Purpose) -> Inspection:
    """Check every file under ``root`` against the standard of ``fmt``.

    Returns the validation report and, when it has no errors, the statistics.
    """
    _check_kind(root, fmt, purpose)
    issues = _Issues()
    statistics = _INSPECTORS[fmt](root, purpose, issues)
    report = issues.report(fmt)
    return Inspection(report=report, statistics=statistics if report.ok else None)


def list_samples(
    root: Path, fmt: DatasetFormat, purpose: Purpose, offset: int, limit: int
) -> tuple[int, list[Sample]]:
    """The number of samples and the page ``[offset, offset + limit)`` in a stable order."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative.", offset=offset, limit=limit)
    _check_kind(root, fmt, purpose)
    return _LISTERS[fmt](root, purpose, offset, limit)


def resolve_sample(root: Path, rel: str) -> Path:
    """The file behind a sample path from :func:`list_samples`, guaranteed inside ``root``.

    A ``single_text`` sample path (``data.txt:12``) resolves to its file. Raises
    ``InvalidInput`` for absolute or ``..`` paths and ``NotFound`` for anything missing or
    outside ``root``.
    """
    if (
        not rel
        or rel.startswith("/")
        or "\\" in rel
        or "\x00" in rel
        or re.match(r"^[A-Za-z]:", rel)
        or ".." in rel.split("/")
    ):
        raise InvalidInput(
            f"Sample path {rel!r} must be relative and '/'-separated, without '..'; "
            "use a path returned by the samples listing.",
            path=rel,
        )
    base = root.resolve()
    candidate = base / rel
    match = _LINE_SUFFIX.match(rel)
    if not candidate.exists() and match:
        candidate = base / match.group(1)
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base) or not resolved.is_file():
        raise NotFound(
            f"Sample {rel!r} does not exist in this dataset; list the samples to get valid paths.",
            kind="sample",
            path=rel,
        )
    return resolved


# --- shared helpers -----------------------------------------------------------------------


def _check_kind(root: Path, fmt: DatasetFormat, purpose: Purpose) -> None:
    purposes = {p for (p, _sub), formats in FORMATS_FOR.items() if fmt in formats}
    if purpose not in purposes:
        raise InvalidInput(
            f"Format {fmt.value!r} does not fit purpose {purpose.value!r}; see "
            "docs/datasets.md for the formats of each purpose.",
            format=fmt.value,
            purpose=purpose.value,
        )
    if not root.is_dir():
        raise NotFound("The dataset's files are missing; upload the archive again.", path=str(root))


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda entry: entry.name)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _skip_hidden_or_link(entry: os.DirEntry[str], rel: str, issues: _Issues) -> bool:
    """Warn about hidden entries and refuse links; True if ``entry`` must be skipped."""
    if _is_hidden(entry.name):
        kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
        issues.warning(rel, f"hidden {kind}; ignored")
        return True
    if entry.is_symlink():
        issues.error(rel, "symbolic links are not allowed; replace it with the real file")
        return True
    return False


def _walk(folder: Path, prefix: str, issues: _Issues) -> list[str]:
    """Sorted '/'-paths (relative to ``folder``) of the visible regular files below it.

    Issues are reported with ``prefix`` (the folder's path relative to the dataset root).
    """
    found: list[str] = []
    for entry in _entries(folder):
        rel = f"{prefix}{entry.name}"
        if _skip_hidden_or_link(entry, rel, issues):
            continue
        if entry.is_dir():
            sub = _walk(Path(entry.path), f"{rel}/", issues)
            found.extend(f"{entry.name}/{name}" for name in sub)
        elif entry.is_file():
            found.append(entry.name)
    return found


def _decode(data: bytes, bom: bool = True) -> str:
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        raise _BadFile(
            f"is not valid UTF-8 (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None


def _read_text(path: Path, bom: bool = True) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _BadFile(f"cannot be read ({exc.strerror})") from None
    return _decode(data, bom)


def _image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image that Pillow can open and verify."""
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()
    except Exception as exc:
        reason = str(exc).replace(str(path), path.name)  # no server paths in reports
        raise _BadFile(
            f"is not a readable image ({type(exc).__name__}: {reason}); re-export it as PNG or JPEG"
        ) from None
    return size


def _size_key(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _summary(values: list[int]) -> NumericSummary | None:
    if not values:
        return None
    return NumericSummary(min=min(values), max=max(values), mean=sum(values) / len(values))


def _sorted_counts(counts: Counter[str]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}


def _warn_single_class(counts: Counter[str], issues: _Issues) -> None:
    if len(counts) == 1:
        (name,) = counts
        issues.warning(ROOT, f"only one class ({name!r}); a classifier needs at least two")


def _page(items: list[Any], offset: int, limit: int) -> list[Any]:
    return items[offset : offset + limit]


# --- dir ----------------------------------------------------------------------------------


def _sample_extensions(purpose: Purpose) -> tuple[str, ...]:
    return IMAGE_EXTENSIONS if purpose is Purpose.IMAGE else TEXT_EXTENSIONS


def _inspect_dir(root: Path, purpose: Purpose, issues: _Issues) -> Statistics:
    extensions = _sample_extensions(purpose)
    class_dirs: list[os.DirEntry[str]] = []
    for entry in _entries(root):
        if _skip_hidden_or_link(entry, entry.name, issues):
            continue
        if entry.is_dir():
            class_dirs.append(entry)
        else:
            issues.files_checked += 1
            issues.error(
                entry.name, "file outside a class folder; move it into the folder of its class"
            )
    if not class_dirs:
        issues.error(
            ROOT, "no class folders; put each class's samples in a folder named after the class"
        )
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    lengths: list[int] = []
    for class_dir in class_dirs:
        seen_files = False
        for entry in _entries(Path(class_dir.path)):
            rel = f"{class_dir.name}/{entry.name}"
            if _skip_hidden_or_link(entry, rel, issues):
                continue
            if entry.is_dir():
                issues.error(rel, "nested folder; put the samples directly inside the class folder")
                continue
            seen_files = True
            issues.files_checked += 1
            try:
                _check_dir_sample(Path(entry.path), purpose, extensions, sizes, lengths)
            except _BadFile as exc:
                issues.error(rel, str(exc))
            else:
                counts[class_dir.name] += 1
        if not seen_files:
            issues.warning(class_dir.name, "empty class folder; ignored")
    _warn_single_class(counts, issues)
    image = purpose is Purpose.IMAGE
    return Statistics(
        samples=sum(counts.values()),
        classes=sorted(counts),
        class_counts=_sorted_counts(counts),
        image_sizes=_sorted_counts(sizes) if image else None,
        text_lengths=None if image else _summary(lengths),
    )


def _check_dir_sample(
    path: Path,
    purpose: Purpose,
    extensions: tuple[str, ...],
    sizes: Counter[str],
    lengths: list[int],
) -> None:
    suffix = path.suffix.lower()
    if suffix not in extensions:
        raise _BadFile(
            f"unexpected extension {suffix or '(none)'!r} for {purpose.value} samples; "
            f"use one of {', '.join(extensions)}"
        )
    if purpose is Purpose.IMAGE:
        sizes[_size_key(_image_size(path))] += 1
        return
    text = _read_text(path)
    if not text.strip():
        raise _BadFile("is empty; every text sample needs some text")
    lengths.append(len(text))


def _dir_sample_paths(root: Path, purpose: Purpose) -> list[tuple[str, str]]:
    """(class, relative path) of every sample file, sorted."""
    extensions = _sample_extensions(purpose)
    found: list[tuple[str, str]] = []
    for class_dir in _entries(root):
        if _is_hidden(class_dir.name) or not class_dir.is_dir(follow_symlinks=False):
            continue
        for entry in _entries(Path(class_dir.path)):
            if (
                not _is_hidden(entry.name)
                and entry.is_file(follow_symlinks=False)
                and Path(entry.name).suffix.lower() in extensions
            ):
                found.append((class_dir.name, f"{class_dir.name}/{entry.name}"))
    return found


def _list_dir(root: Path, purpose: Purpose, offset: int, limit: int) -> tuple[int, list[Sample]]:
    paths = _dir_sample_paths(root, purpose)
    samples = []
    for label, rel in _page(paths, offset, limit):
        if purpose is Purpose.IMAGE:
            samples.append(Sample(path=rel, label=label, kind="image"))
        else:
            text = (root / rel).read_bytes().decode("utf-8-sig", errors="replace")
            samples.append(Sample(path=rel, label=label, kind="text", text=text[:PREVIEW_CHARS]))
    return len(paths), samples


# --- json (COCO-style detection) ----------------------------------------------------------


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

    def __init__(self, item: object, where: str, issues: _Issues) -> None:
        self.item: dict[str, Any] = item if isinstance(item, dict) else {}
        self.where = where
        self.issues = issues
        self.ok = True
        self._is_object = isinstance(item, dict)
        if not self._is_object:
            self.fail(f"must be an object, got {item!r}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.issues.error(ANNOTATIONS_FILE, f"{self.where}: {message}")

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


def _load_annotations(path: Path, issues: _Issues) -> dict[str, list[Any]] | None:
    try:
        document = json.loads(_read_text(path))
    except _BadFile as exc:
        issues.error(ANNOTATIONS_FILE, str(exc))
        return None
    except json.JSONDecodeError as exc:
        issues.error(
            ANNOTATIONS_FILE,
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
        )
        return None
    if not isinstance(document, dict):
        issues.error(ANNOTATIONS_FILE, "must be a JSON object with images, annotations, categories")
        return None
    missing = [
        key
        for key in ("images", "annotations", "categories")
        if not isinstance(document.get(key), list)
    ]
    for key in missing:
        issues.error(ANNOTATIONS_FILE, f"missing key {key!r} (a list)")
    return None if missing else document


def _parse_coco(document: dict[str, list[Any]], issues: _Issues) -> _Coco:
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


def _inspect_json(root: Path, purpose: Purpose, issues: _Issues) -> Statistics | None:
    for entry in _entries(root):
        known = entry.name in (ANNOTATIONS_FILE, IMAGES_DIR)
        if not known and not _skip_hidden_or_link(entry, entry.name, issues):
            issues.warning(entry.name, "not part of the json format; ignored")
    images_dir = root / IMAGES_DIR
    on_disk: set[str] = set()
    if images_dir.is_dir() and not images_dir.is_symlink():
        on_disk = set(_walk(images_dir, f"{IMAGES_DIR}/", issues))
    else:
        issues.error(
            IMAGES_DIR, "missing folder; put the images in images/ beside annotations.json"
        )
    ann_path = root / ANNOTATIONS_FILE
    if not ann_path.is_file() or ann_path.is_symlink():
        issues.error(ANNOTATIONS_FILE, "missing; add the COCO-style annotations.json at the root")
        return None
    issues.files_checked += 1
    document = _load_annotations(ann_path, issues)
    if document is None:
        return None
    coco = _parse_coco(document, issues)
    sizes: Counter[str] = Counter()
    for image in sorted(coco.images.values(), key=lambda i: i.file_name):
        rel = f"{IMAGES_DIR}/{image.file_name}"
        if image.file_name not in on_disk:
            issues.error(rel, f"listed in annotations.json (image id {image.id}) but missing")
            continue
        issues.files_checked += 1
        try:
            size = _image_size(images_dir / image.file_name)
        except _BadFile as exc:
            issues.error(rel, str(exc))
            continue
        sizes[_size_key(size)] += 1
        if size != (image.width, image.height):
            issues.error(
                rel,
                f"annotations.json declares {image.width}x{image.height} but the image is "
                f"{_size_key(size)}; fix width and height of image id {image.id}",
            )
        if image.id not in coco.boxes:
            issues.warning(rel, "has no annotations")
    for name in sorted(on_disk - {image.file_name for image in coco.images.values()}):
        issues.warning(f"{IMAGES_DIR}/{name}", "not listed in annotations.json; ignored")
    counts: Counter[str] = Counter({name: 0 for name in coco.categories.values()})
    for boxes in coco.boxes.values():
        counts.update(coco.categories[category] for category, _ in boxes)
    return Statistics(
        samples=len(coco.images),
        classes=sorted(counts),
        class_counts=_sorted_counts(counts),
        image_sizes=_sorted_counts(sizes),
        annotations=sum(len(boxes) for boxes in coco.boxes.values()),
    )


def _list_json(root: Path, purpose: Purpose, offset: int, limit: int) -> tuple[int, list[Sample]]:
    scratch = _Issues()
    document = _load_annotations(root / ANNOTATIONS_FILE, scratch)
    if document is None:
        raise DatasetInvalid(
            f"{ANNOTATIONS_FILE} cannot be read; upload a corrected archive.",
            errors=[issue.model_dump() for issue in scratch.errors],
        )
    coco = _parse_coco(document, scratch)
    images = sorted(coco.images.values(), key=lambda i: i.file_name)
    samples = [
        Sample(
            path=f"{IMAGES_DIR}/{image.file_name}",
            kind="image",
            boxes=[
                {"label": coco.categories[category], "bbox": bbox}
                for category, bbox in coco.boxes.get(image.id, [])
            ],
        )
        for image in _page(images, offset, limit)
    ]
    return len(images), samples


# --- single_text --------------------------------------------------------------------------


def _single_text_file(root: Path, issues: _Issues) -> Path | None:
    """The one data file at the root; zero or several are errors."""
    candidates: list[str] = []
    for entry in _entries(root):
        if _skip_hidden_or_link(entry, entry.name, issues):
            continue
        if entry.is_file() and Path(entry.name).suffix.lower() in SINGLE_TEXT_EXTENSIONS:
            candidates.append(entry.name)
        else:
            issues.warning(entry.name, "not a .txt, .tsv or .csv file at the root; ignored")
    if not candidates:
        issues.error(
            ROOT,
            "no .txt, .tsv or .csv file at the root; put all samples in one UTF-8 file, "
            "one '<label>\\t<text>' line each",
        )
        return None
    if len(candidates) > 1:
        for name in candidates:
            issues.files_checked += 1
            issues.error(
                name,
                f"one of {len(candidates)} data files ({', '.join(candidates)}); the "
                "single_text format takes exactly one, merge them",
            )
        return None
    return root / candidates[0]


def _split_line(line: str) -> tuple[str, str]:
    """``(label, text)`` of a ``<label>\\t<text>`` line."""
    label, tab, text = line.partition("\t")
    if not tab:
        raise _BadFile("no tab between label and text; write '<label>\\t<text>'")
    if not label.strip():
        raise _BadFile("empty label before the tab")
    if not text.strip():
        raise _BadFile("empty text after the tab")
    return label.strip(), text


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (``\\r\\n`` endings accepted)."""
    numbered = enumerate((raw.rstrip("\r") for raw in text.split("\n")), start=1)
    return [(number, line) for number, line in numbered if line.strip()]


def _inspect_single_text(root: Path, purpose: Purpose, issues: _Issues) -> Statistics | None:
    path = _single_text_file(root, issues)
    if path is None:
        return None
    issues.files_checked += 1
    try:
        content = _read_text(path)
    except _BadFile as exc:
        issues.error(path.name, str(exc))
        return None
    counts: Counter[str] = Counter()
    lengths: list[int] = []
    for number, line in _lines(content):
        try:
            label, text = _split_line(line)
        except _BadFile as exc:
            issues.error(f"{path.name}:{number}", str(exc))
            continue
        counts[label] += 1
        lengths.append(len(text))
    if not counts and not issues.errors:
        issues.error(path.name, "has no samples; write one '<label>\\t<text>' line per sample")
    _warn_single_class(counts, issues)
    return Statistics(
        samples=len(lengths),
        classes=sorted(counts),
        class_counts=_sorted_counts(counts),
        text_lengths=_summary(lengths),
    )


def _list_single_text(
    root: Path, purpose: Purpose, offset: int, limit: int
) -> tuple[int, list[Sample]]:
    path = _single_text_file(root, _Issues())
    if path is None:
        raise DatasetInvalid("The dataset has no single data file; upload a corrected archive.")
    content = path.read_bytes().decode("utf-8-sig", errors="replace")
    samples: list[Sample] = []
    for number, line in _lines(content):
        try:
            label, text = _split_line(line)
        except _BadFile:
            continue
        preview = text[:PREVIEW_CHARS]
        samples.append(Sample(path=f"{path.name}:{number}", label=label, kind="text", text=preview))
    return len(samples), _page(samples, offset, limit)


# --- brat_ann -----------------------------------------------------------------------------


def _brat_documents(root: Path, issues: _Issues) -> list[str]:
    """Stems ('/'-paths without suffix) of the complete .txt/.ann pairs, sorted."""
    texts: set[str] = set()
    anns: set[str] = set()
    for rel in _walk(root, "", issues):
        stem, suffix = os.path.splitext(rel)
        if suffix == ".txt":
            texts.add(stem)
        elif suffix == ".ann":
            anns.add(stem)
        elif suffix != ".conf":  # brat's annotation.conf and visual.conf belong here
            issues.warning(rel, "not a .txt or .ann file; ignored")
    for stem in sorted(texts - anns):
        issues.files_checked += 1
        issues.error(f"{stem}.txt", f"has no matching .ann file; add {stem}.ann (may be empty)")
    for stem in sorted(anns - texts):
        issues.files_checked += 1
        issues.error(f"{stem}.ann", f"has no matching .txt file; add {stem}.txt or remove it")
    return sorted(texts & anns)


def _parse_entity(line: str, document: str) -> dict[str, object]:
    """A brat ``T`` line as ``{"id", "label", "start", "end", "text"}``."""
    match = _T_LINE.match(line)
    if match is None:
        raise _BadFile("malformed entity line; expected 'T<n>\\t<Type> <start> <end>\\t<text>'")
    entity_id, label, spans, text = match.groups()
    fragments = [tuple(map(int, span.split())) for span in spans.split(";")]
    for start, end in fragments:
        if start >= end:
            raise _BadFile(f"{entity_id}: empty or reversed span {start} {end}")
        if end > len(document):
            raise _BadFile(
                f"{entity_id}: offsets {start} {end} lie outside the document "
                f"({len(document)} characters)"
            )
    actual = " ".join(document[start:end] for start, end in fragments)
    if actual != text:
        raise _BadFile(
            f"{entity_id}: span text {text!r} differs from the document text {actual!r} at {spans}"
        )
    return {
        "id": entity_id,
        "label": label,
        "start": fragments[0][0],
        "end": fragments[-1][1],
        "text": text,
    }


def _parse_ann(
    rel: str, content: str, document: str, issues: _Issues | None
) -> list[dict[str, object]]:
    """The entities of a .ann file; problems go to ``issues`` (or are skipped if None)."""
    entities: list[dict[str, object]] = []
    ids: set[str] = set()
    for number, line in _lines(content):
        try:
            if line.startswith("T"):
                entity = _parse_entity(line, document)
                if entity["id"] in ids:
                    raise _BadFile(f"duplicate id {entity['id']}")
                ids.add(str(entity["id"]))
                entities.append(entity)
            elif line[0] not in _BRAT_OTHER_LINES:
                raise _BadFile(
                    "unknown annotation line; brat lines start with T, R, E, A, M, N, * or #"
                )
            elif "\t" not in line:
                raise _BadFile("malformed line; brat fields are tab-separated")
        except _BadFile as exc:
            if issues is not None:
                issues.error(f"{rel}:{number}", str(exc))
    return entities


def _read_pair(root: Path, stem: str, issues: _Issues | None) -> tuple[str, list[Any]] | None:
    """The document text and entities of one pair, or None if a file cannot be decoded."""
    try:
        document = _read_text(root / f"{stem}.txt", bom=False)
    except _BadFile as exc:
        if issues is not None:
            issues.error(f"{stem}.txt", str(exc))
        return None
    try:
        content = _read_text(root / f"{stem}.ann", bom=False)
    except _BadFile as exc:
        if issues is not None:
            issues.error(f"{stem}.ann", str(exc))
        return None
    return document, _parse_ann(f"{stem}.ann", content, document, issues)


def _inspect_brat(root: Path, purpose: Purpose, issues: _Issues) -> Statistics:
    stems = _brat_documents(root, issues)
    if not stems and not issues.errors:
        issues.error(ROOT, "no documents; add pairs of <doc>.txt and <doc>.ann files")
    counts: Counter[str] = Counter()
    lengths: list[int] = []
    for stem in stems:
        issues.files_checked += 2
        pair = _read_pair(root, stem, issues)
        if pair is None:
            continue
        document, entities = pair
        lengths.append(len(document))
        counts.update(str(entity["label"]) for entity in entities)
    return Statistics(
        samples=len(stems),
        classes=sorted(counts),
        class_counts=_sorted_counts(counts),
        text_lengths=_summary(lengths),
        annotations=sum(counts.values()),
    )


def _list_brat(root: Path, purpose: Purpose, offset: int, limit: int) -> tuple[int, list[Sample]]:
    stems = _brat_documents(root, _Issues())
    samples: list[Sample] = []
    for stem in _page(stems, offset, limit):
        pair = _read_pair(root, stem, None)
        document, entities = pair if pair is not None else ("", [])
        samples.append(
            Sample(
                path=f"{stem}.txt",
                kind="text",
                text=document[:PREVIEW_CHARS],
                entities=[{k: v for k, v in e.items() if k != "id"} for e in entities],
            )
        )
    return len(stems), samples


_INSPECTORS: dict[DatasetFormat, Callable[[Path, Purpose, _Issues], Statistics | None]] = {
    DatasetFormat.DIR: _inspect_dir,
    DatasetFormat.JSON: _inspect_json,
    DatasetFormat.SINGLE_TEXT: _inspect_single_text,
    DatasetFormat.BRAT_ANN: _inspect_brat,
}

_LISTERS: dict[DatasetFormat, Callable[[Path, Purpose, int, int], tuple[int, list[Sample]]]] = {
    DatasetFormat.DIR: _list_dir,
    DatasetFormat.JSON: _list_json,
    DatasetFormat.SINGLE_TEXT: _list_single_text,
    DatasetFormat.BRAT_ANN: _list_brat,
}
