"""Make the two example datasets of the workbench from data that ships inside installed packages.

Nothing is downloaded: the images come from scikit-learn's bundled copy of the UCI handwritten
digits, the texts from the docstrings of the Python standard library.

* ``digits``: image classification, ``dir`` format, 10 classes ("0".."9"), 1797 PNG images of
  32x32 grayscale pixels (the 8x8 originals scaled to 0..255 and enlarged with nearest-neighbour).
* ``texts``: text classification, ``dir`` format, one class per standard-library package
  (see :data:`TEXT_TOPICS`), one UTF-8 ``.txt`` file per docstring.
* ``shapes``: object detection, ``json`` (COCO-style) format, synthetic 64x64 RGB images with
  one to three circles, squares and triangles each (see :data:`SHAPES`), drawn with Pillow.

Each dataset is written as two zip archives, ``<name>-train.zip`` and ``<name>-test.zip``
(a stratified split for the classification sets, two independently drawn sets for ``shapes``;
deterministic for a given seed). Each archive wraps its content in one top folder, e.g.
``digits-train/7/0042.png``. The archives are byte-for-byte reproducible: the members are
sorted and carry a fixed timestamp.

Usage::

    python examples/datasets/make_datasets.py build/

The functions can also be imported (see ``tests/unit/test_example_datasets.py``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import json
import math
import pkgutil
import random
import sys
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: Standard-library packages whose docstrings make the classes of the ``texts`` dataset. They
#: are chosen to have enough docstrings (more than 100 each on CPython 3.11) and to be told apart
#: well by a bag-of-words classifier (packages about the same subject, such as ``http`` and
#: ``urllib``, are not both used).
TEXT_TOPICS: tuple[str, ...] = (
    "asyncio",
    "email",
    "http",
    "importlib",
    "logging",
    "unittest",
    "xml",
)

#: Fixed timestamp of every zip member, so that two runs give identical archives.
ZIP_TIMESTAMP: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)

#: A class with fewer usable samples than this is an error (e.g. Python run with ``-OO``,
#: which strips docstrings).
MIN_SAMPLES_PER_CLASS = 20


@dataclass(frozen=True)
class DatasetArchives:
    """The archives of one example dataset and what to declare when it is created.

    ``purpose``, ``sub_purpose`` and ``format`` are the wire values of the workbench's
    ``Purpose``, ``SubPurpose`` and ``DatasetFormat`` enumerations.
    """

    name: str
    train: Path
    test: Path | None
    purpose: str
    sub_purpose: str
    format: str
    classes: int
    samples: int


# --------------------------------------------------------------------------- shared helpers


def stratified_split(
    labels: Sequence[str], test_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split sample indices into (train, test), class by class, deterministically.

    Each class with at least two samples gets at least one sample on each side; the test side
    receives ``round(n * test_fraction)`` of a class's ``n`` samples. Both lists are sorted.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1 (exclusive)")
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for label in sorted(by_class):
        indices = by_class[label]
        rng.shuffle(indices)
        n_test = round(len(indices) * test_fraction)
        if len(indices) >= 2:
            n_test = min(max(n_test, 1), len(indices) - 1)
        test.extend(indices[:n_test])
        train.extend(indices[n_test:])
    return sorted(train), sorted(test)


def write_zip(path: Path, members: Mapping[str, bytes]) -> Path:
    """Write ``members`` (archive name -> content) to a reproducible zip file at ``path``.

    Members are written in sorted order with a fixed timestamp and permissions, so the same
    members always give the same bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return path


def _classification_archives(
    out_dir: Path,
    name: str,
    purpose: str,
    labels: Sequence[str],
    contents: Sequence[bytes],
    suffix: str,
    test_fraction: float,
    seed: int,
) -> DatasetArchives:
    """Split the samples of a ``dir`` classification dataset and write
    ``<name>-train.zip`` and ``<name>-test.zip`` in ``out_dir``: sample ``index`` becomes
    ``<label>/<index><suffix>``, its index zero-padded to four digits."""
    train, test = stratified_split(labels, test_fraction, seed)
    paths: list[Path] = []
    for split, indices in (("train", train), ("test", test)):
        top = f"{name}-{split}"
        members = {f"{top}/{labels[i]}/{i:04d}{suffix}": contents[i] for i in indices}
        paths.append(write_zip(Path(out_dir) / f"{top}.zip", members))
    return DatasetArchives(
        name=name,
        train=paths[0],
        test=paths[1],
        purpose=purpose,
        sub_purpose="classification",
        format="dir",
        classes=len(set(labels)),
        samples=len(labels),
    )


# --------------------------------------------------------------------------- digits


def digit_png(values: Sequence[Sequence[float]], size: int = 32) -> bytes:
    """Encode one 8x8 digit (values 0..16) as a ``size`` x ``size`` grayscale PNG.

    The values are scaled to 0..255 and the image is enlarged with nearest-neighbour, so each
    original pixel becomes a square block.
    """
    from PIL import Image

    rows = len(values)
    cols = len(values[0])
    pixels = bytes(min(255, max(0, round(float(v) * 255 / 16))) for row in values for v in row)
    image = Image.frombytes("L", (cols, rows), pixels)
    image = image.resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def make_digits(out_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> DatasetArchives:
    """Write the ``digits`` image-classification dataset (``dir`` format) to ``out_dir``.

    The source is scikit-learn's ``load_digits()`` (1797 handwritten digits of 8x8 pixels,
    shipped inside the package). Each sample becomes ``<digit>/<index>.png`` where ``index`` is
    its position in ``load_digits()``, zero-padded to four digits.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    labels = [str(int(target)) for target in digits.target]
    contents = [digit_png(image.tolist()) for image in digits.images]
    return _classification_archives(
        out_dir, "digits", "image", labels, contents, ".png", test_fraction, seed
    )


# --------------------------------------------------------------------------- texts


def _public_modules(package: str) -> list[ModuleType]:
    """Import and return ``package`` and its public submodules, sorted by name.

    Submodules with a private part in their name (``_x``, ``__main__``) are skipped, and so are
    the ones that cannot be imported on this platform (e.g. ``asyncio.windows_events``).
    Warnings raised while importing (deprecations) are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = importlib.import_module(package)
        modules = [root]
        search_path = getattr(root, "__path__", None)
        if search_path is None:
            return modules
        found = pkgutil.walk_packages(search_path, package + ".", onerror=lambda _name: None)
        for name in sorted(info.name for info in found):
            if any(part.startswith("_") for part in name.split(".")):
                continue
            try:
                modules.append(importlib.import_module(name))
            except Exception:  # not importable here (platform, missing C library...)
                continue
    return modules


def _defined_in(obj: object, module: ModuleType) -> bool:
    """Whether ``obj`` is defined in ``module`` itself (not imported into it).

    Counting an object only where it is defined makes the result independent of re-exports and
    of lazily created module attributes (e.g. ``unittest.IsolatedAsyncioTestCase``), which
    depend on what was imported or accessed before.
    """
    return getattr(obj, "__module__", None) == module.__name__


def _own_docstring(obj: object) -> str | None:
    """The docstring written on ``obj`` itself (not inherited), or None."""
    if isinstance(obj, classmethod | staticmethod):
        obj = obj.__func__
    doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) else None


def _documented_objects(module: ModuleType) -> Iterator[object]:
    """Yield the module, then its public classes (with their public members) and functions."""
    yield module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not _defined_in(obj, module):
            continue
        if inspect.isroutine(obj):
            yield obj
        elif inspect.isclass(obj):
            yield obj
            for member_name, member in sorted(vars(obj).items()):
                if member_name.startswith("_"):
                    continue
                if inspect.isroutine(member) or isinstance(
                    member, property | classmethod | staticmethod
                ):
                    yield member


def clean_docstring(doc: str, min_chars: int = 40) -> str:
    """Normalise a docstring: dedent it, keep its paragraphs of at least ``min_chars`` characters.

    Paragraphs are separated by blank lines; short ones (headings such as ``Args:``, lone
    signatures) are dropped. The result is empty when no paragraph is long enough.
    """
    paragraphs = [p.strip() for p in inspect.cleandoc(doc).split("\n\n")]
    return "\n\n".join(p for p in paragraphs if len(p) >= min_chars)


def topic_docstrings(package: str, min_chars: int = 40) -> list[str]:
    """All distinct cleaned docstrings of ``package``, in a deterministic order.

    The modules, classes, methods, properties and functions of the package and its public
    submodules are visited in sorted order; a class or function is only taken from the module
    that defines it.
    """
    seen: set[str] = set()
    texts: list[str] = []
    for module in _public_modules(package):
        for obj in _documented_objects(module):
            doc = _own_docstring(obj)
            if doc is None:
                continue
            text = clean_docstring(doc, min_chars)
            if len(text) >= min_chars and text not in seen:
                seen.add(text)
                texts.append(text)
    return texts


def collect_texts(
    topics: Iterable[str], max_per_class: int = 150, min_chars: int = 40, seed: int = 0
) -> dict[str, list[str]]:
    """Docstrings per topic: a text found under more than one topic is dropped from all.

    Classes larger than ``max_per_class`` are reduced to a seeded random sample (kept in their
    original order).
    """
    topics = sorted(set(topics))
    per_topic = {topic: topic_docstrings(topic, min_chars) for topic in topics}
    counts: dict[str, int] = {}
    for texts in per_topic.values():
        for text in texts:
            counts[text] = counts.get(text, 0) + 1
    result: dict[str, list[str]] = {}
    for topic in topics:
        texts = [text for text in per_topic[topic] if counts[text] == 1]
        if len(texts) < MIN_SAMPLES_PER_CLASS:
            raise RuntimeError(
                f"only {len(texts)} docstrings found for {topic!r}; "
                "is Python running with -OO (docstrings stripped)?"
            )
        if len(texts) > max_per_class:
            keep = sorted(random.Random(f"{seed}:{topic}").sample(range(len(texts)), max_per_class))
            texts = [texts[i] for i in keep]
        result[topic] = texts
    return result


def make_texts(
    out_dir: Path,
    test_fraction: float = 0.2,
    seed: int = 0,
    topics: Sequence[str] = TEXT_TOPICS,
    max_per_class: int = 150,
    min_chars: int = 40,
) -> DatasetArchives:
    """Write the ``texts`` text-classification dataset (``dir`` format) to ``out_dir``.

    The samples are docstrings of the Python standard library, labelled by the package they
    come from (see :func:`collect_texts`). Each sample becomes ``<topic>/<index>.txt`` in UTF-8,
    ending with a newline.
    """
    per_topic = collect_texts(topics, max_per_class, min_chars, seed)
    labels: list[str] = []
    contents: list[bytes] = []
    for topic, texts in per_topic.items():
        for text in texts:
            labels.append(topic)
            contents.append((text + "\n").encode("utf-8"))
    return _classification_archives(
        out_dir, "texts", "text", labels, contents, ".txt", test_fraction, seed
    )


# --------------------------------------------------------------------------- shapes

#: The categories of the ``shapes`` dataset, in the order of their COCO ids (1, 2, 3).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

#: Side (or diameter) of a shape in pixels, inclusive bounds, for 64-pixel images.
SHAPE_SIZES = (10, 26)

#: Vertices of the polygon that approximates a circle in ``segmentation``.
CIRCLE_VERTICES = 16


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its category, the top-left corner and side of its square box."""

    category: str
    x: int
    y: int
    size: int

    @property
    def bbox(self) -> list[int]:
        """``[x, y, width, height]`` in pixels: the box covers exactly the drawn pixels."""
        return [self.x, self.y, self.size, self.size]

    def polygon(self) -> list[float]:
        """The outline as a flat ``[x1, y1, x2, y2, ...]`` list (COCO ``segmentation``)."""
        x0, y0, s = self.x, self.y, self.size
        if self.category == "square":
            points = [(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s)]
        elif self.category == "triangle":
            points = [(x0 + s / 2, y0), (x0 + s, y0 + s), (x0, y0 + s)]
        else:
            r = s / 2
            points = [
                (
                    x0 + r + r * math.cos(2 * math.pi * k / CIRCLE_VERTICES),
                    y0 + r + r * math.sin(2 * math.pi * k / CIRCLE_VERTICES),
                )
                for k in range(CIRCLE_VERTICES)
            ]
        return [round(value, 1) for point in points for value in point]

    def overlaps(self, other: Shape, gap: int) -> bool:
        """Whether the two boxes, each grown by ``gap`` pixels, intersect."""
        return not (
            self.x + self.size + gap <= other.x
            or other.x + other.size + gap <= self.x
            or self.y + self.size + gap <= other.y
            or other.y + other.size + gap <= self.y
        )


def _random_color(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def draw_shapes(
    rng: random.Random, image_size: int = 64, max_shapes: int = 3
) -> tuple[bytes, list[Shape]]:
    """One RGB PNG of ``image_size`` pixels with 1 to ``max_shapes`` shapes that do not touch.

    The background is a light colour with faint noise; each shape is filled with a dark,
    saturated colour, so the category is told by its outline, never by its colour.
    """
    from PIL import Image, ImageDraw

    background = _random_color(rng, 170, 255)
    noise = rng.randbytes(image_size * image_size * 3)
    pixels = bytes(
        max(0, min(255, background[i % 3] + (noise[i] % 31) - 15)) for i in range(len(noise))
    )
    image = Image.frombytes("RGB", (image_size, image_size), pixels)
    draw = ImageDraw.Draw(image)
    low, high = (round(v * image_size / 64) for v in SHAPE_SIZES)
    shapes: list[Shape] = []
    wanted = rng.randint(1, max_shapes)
    for _ in range(50 * wanted):
        if len(shapes) == wanted:
            break
        size = rng.randint(low, high)
        candidate = Shape(
            category=rng.choice(SHAPES),
            x=rng.randint(0, image_size - size),
            y=rng.randint(0, image_size - size),
            size=size,
        )
        if any(candidate.overlaps(shape, gap=2) for shape in shapes):
            continue
        shapes.append(candidate)
        fill = _random_color(rng, 0, 140)
        x0, y0, x1, y1 = candidate.x, candidate.y, candidate.x + size - 1, candidate.y + size - 1
        if candidate.category == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif candidate.category == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon(((x0 + (size - 1) / 2, y0), (x1, y1), (x0, y1)), fill=fill)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), shapes


def shapes_split(
    count: int, rng: random.Random, image_size: int = 64
) -> tuple[dict[str, object], dict[str, bytes]]:
    """``count`` images: the COCO document and the PNG files (name under ``images/``)."""
    categories = [{"id": index, "name": name} for index, name in enumerate(SHAPES, start=1)]
    category_id = {name: index for index, name in enumerate(SHAPES, start=1)}
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    files: dict[str, bytes] = {}
    for image_id in range(1, count + 1):
        png, shapes = draw_shapes(rng, image_size)
        file_name = f"{image_id:04d}.png"
        files[file_name] = png
        images.append(
            {"id": image_id, "file_name": file_name, "width": image_size, "height": image_size}
        )
        for shape in shapes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id[shape.category],
                    "bbox": shape.bbox,
                    "area": shape.size * shape.size,
                    "iscrowd": 0,
                    "segmentation": [shape.polygon()],
                }
            )
    document = {"images": images, "annotations": annotations, "categories": categories}
    return document, files


def make_shapes(
    out_dir: Path,
    train_images: int = 400,
    test_images: int = 100,
    seed: int = 0,
    image_size: int = 64,
) -> DatasetArchives:
    """Write the ``shapes`` object-detection dataset (``json`` format) to ``out_dir``.

    The train and test images are drawn independently (each split from its own seeded random
    generator), so changing one count leaves the other split as it was. Each archive holds
    ``<top>/annotations.json`` and ``<top>/images/<id>.png``.
    """
    paths: list[Path] = []
    for split, count in (("train", train_images), ("test", test_images)):
        document, files = shapes_split(count, random.Random(f"{seed}:{split}"), image_size)
        top = f"shapes-{split}"
        members = {f"{top}/images/{name}": data for name, data in files.items()}
        members[f"{top}/annotations.json"] = (json.dumps(document, indent=1) + "\n").encode()
        paths.append(write_zip(Path(out_dir) / f"{top}.zip", members))
    return DatasetArchives(
        name="shapes",
        train=paths[0],
        test=paths[1],
        purpose="image",
        sub_purpose="object_detection",
        format="json",
        classes=len(SHAPES),
        samples=train_images + test_images,
    )


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Write the six archives to the directory given on the command line."""
    parser = argparse.ArgumentParser(
        description="Make the example datasets (digits, texts, shapes) as train/test zip archives."
    )
    parser.add_argument("out_dir", type=Path, help="directory to write the zip archives to")
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of each class in the test split"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and sampling")
    args = parser.parse_args(argv)
    for dataset in (
        make_digits(args.out_dir, test_fraction=args.test_fraction, seed=args.seed),
        make_texts(args.out_dir, test_fraction=args.test_fraction, seed=args.seed),
        make_shapes(args.out_dir, seed=args.seed),
    ):
        print(
            f"{dataset.name}: {dataset.samples} samples, {dataset.classes} classes, "
            f"train={dataset.train} test={dataset.test}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
