"""The example datasets made by examples/datasets/make_datasets.py follow their standards:
``dir`` for digits and texts, ``json`` (COCO-style) for shapes."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from workbench.datasets.archives import dataset_root, extract_archive
from workbench.datasets.formats import inspect_dataset
from workbench.datasets.types import FORMATS_FOR, ArchiveLimits
from workbench.enums import DatasetFormat, Purpose, SubPurpose

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "datasets" / "make_datasets.py"


def _load_script() -> ModuleType:
    """Import the script by path: examples/ is not a package."""
    name = "workbench_example_make_datasets"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while building the class
    spec.loader.exec_module(module)
    return module


md = _load_script()


def _read(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _samples(path: Path, top: str, suffix: str) -> dict[str, bytes]:
    """Members of a split archive, checked against the ``dir`` layout: top/<class>/<file>."""
    members = _read(path)
    assert members, f"{path.name} is empty"
    for name in members:
        parts = name.split("/")
        assert len(parts) == 3, f"not <top>/<class>/<file>: {name}"
        assert parts[0] == top
        assert all(part and not part.startswith(".") for part in parts), name
        assert parts[2].endswith(suffix), name
    return members


def _class_counts(members: dict[str, bytes]) -> Counter[str]:
    return Counter(name.split("/")[1] for name in members)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("datasets")
    return {
        "digits": md.make_digits(out),
        "texts": md.make_texts(out),
        "shapes": md.make_shapes(out),
        "out": out,
    }


@pytest.mark.parametrize("name", ["digits", "texts"])
def test_declared_kind_is_a_valid_workbench_combination(built, name):
    dataset = built[name]
    assert dataset.name == name
    key = (Purpose(dataset.purpose), SubPurpose(dataset.sub_purpose))
    assert DatasetFormat(dataset.format) is DatasetFormat.DIR
    assert DatasetFormat.DIR in FORMATS_FOR[key]
    assert dataset.train == built["out"] / f"{name}-train.zip"
    assert dataset.test == built["out"] / f"{name}-test.zip"
    with pytest.raises(AttributeError):
        dataset.name = "other"  # frozen


def test_digits_has_all_1797_samples_in_10_classes(built):
    dataset = built["digits"]
    train = _samples(dataset.train, "digits-train", ".png")
    test = _samples(dataset.test, "digits-test", ".png")
    assert dataset.samples == len(train) + len(test) == 1797
    assert dataset.classes == 10
    train_counts, test_counts = _class_counts(train), _class_counts(test)
    assert set(train_counts) == set(test_counts) == {str(d) for d in range(10)}
    # stratified 80/20: every class is split in about the same proportion
    for label in train_counts:
        share = test_counts[label] / (train_counts[label] + test_counts[label])
        assert 0.15 < share < 0.25, (label, share)
    # each original sample (named by its index in load_digits) is in exactly one split
    train_files = {name.split("/")[2] for name in train}
    test_files = {name.split("/")[2] for name in test}
    assert not train_files & test_files
    assert train_files | test_files == {f"{i:04d}.png" for i in range(1797)}


def test_digit_images_are_32x32_grayscale_upscaled_from_load_digits(built):
    from sklearn.datasets import load_digits

    digits = load_digits()
    members = _read(built["digits"].train) | _read(built["digits"].test)
    for data in members.values():
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == (32, 32)
            assert image.mode == "L"
    # a few samples, pixel by pixel: 0..16 scaled to 0..255, each pixel a 4x4 block
    for name in sorted(members)[::300]:
        _, label, file_name = name.split("/")
        index = int(file_name.removesuffix(".png"))
        assert int(digits.target[index]) == int(label)
        with Image.open(io.BytesIO(members[name])) as image:
            pixels = image.load()
            for y in range(32):
                for x in range(32):
                    expected = round(float(digits.images[index][y // 4][x // 4]) * 255 / 16)
                    assert pixels[x, y] == expected, (name, x, y)
    all_pixels = set()
    for data in list(members.values())[:50]:
        with Image.open(io.BytesIO(data)) as image:
            all_pixels.update(image.tobytes())
    assert 0 in all_pixels and 255 in all_pixels


def test_texts_have_the_chosen_topics_as_classes(built):
    dataset = built["texts"]
    train = _samples(dataset.train, "texts-train", ".txt")
    test = _samples(dataset.test, "texts-test", ".txt")
    train_counts, test_counts = _class_counts(train), _class_counts(test)
    assert set(train_counts) == set(test_counts) == set(md.TEXT_TOPICS)
    assert dataset.classes == len(md.TEXT_TOPICS)
    assert dataset.samples == len(train) + len(test)
    for label in md.TEXT_TOPICS:
        total = train_counts[label] + test_counts[label]
        assert md.MIN_SAMPLES_PER_CLASS <= total <= 150, (label, total)
        assert 0.1 < test_counts[label] / total < 0.3, label


def test_texts_are_nonempty_utf8_and_no_sample_is_in_both_splits(built):
    dataset = built["texts"]
    train = _read(dataset.train)
    test = _read(dataset.test)
    decoded: dict[str, str] = {}
    for name, data in (train | test).items():
        text = data.decode("utf-8")  # raises if not valid UTF-8
        assert text.strip(), name
        assert len(text.strip()) >= 40, name
        decoded[name] = text
    train_texts = {decoded[name] for name in train}
    test_texts = {decoded[name] for name in test}
    assert not train_texts & test_texts
    # no text is labelled with two classes either
    labels_of: dict[str, set[str]] = {}
    for name, text in decoded.items():
        labels_of.setdefault(text, set()).add(name.split("/")[1])
    assert all(len(labels) == 1 for labels in labels_of.values())
    assert len(labels_of) == dataset.samples


def test_texts_are_learnable_by_naive_bayes(built):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    def load(path: Path) -> tuple[list[str], list[str]]:
        members = _read(path)
        names = sorted(members)
        return [members[n].decode("utf-8") for n in names], [n.split("/")[1] for n in names]

    x_train, y_train = load(built["texts"].train)
    x_test, y_test = load(built["texts"].test)
    vectorizer = TfidfVectorizer()
    model = MultinomialNB().fit(vectorizer.fit_transform(x_train), y_train)
    assert model.score(vectorizer.transform(x_test), y_test) > 0.7


def test_two_runs_give_identical_archives(built, tmp_path):
    again = {
        "digits": md.make_digits(tmp_path),
        "texts": md.make_texts(tmp_path),
        "shapes": md.make_shapes(tmp_path),
    }
    for name, dataset in again.items():
        first = built[name]
        for split in ("train", "test"):
            a, b = getattr(first, split), getattr(dataset, split)
            with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
                assert za.namelist() == zb.namelist()
                assert all(info.date_time == md.ZIP_TIMESTAMP for info in za.infolist())
            assert _read(a) == _read(b)
            assert a.read_bytes() == b.read_bytes()


def test_seed_changes_the_split_but_not_the_samples(built, tmp_path):
    other = md.make_digits(tmp_path, seed=1)
    first = built["digits"]
    assert _read(first.test).keys() != _read(other.test).keys()
    first_all = {n.split("/", 1)[1] for n in _read(first.train) | _read(first.test)}
    other_all = {n.split("/", 1)[1] for n in _read(other.train) | _read(other.test)}
    assert first_all == other_all


def test_stratified_split_keeps_every_class_on_both_sides():
    labels = ["a"] * 2 + ["b"] * 10 + ["c"] * 3
    train, test = md.stratified_split(labels, 0.2, seed=0)
    assert sorted(train + test) == list(range(len(labels)))
    assert {labels[i] for i in train} == {labels[i] for i in test} == {"a", "b", "c"}
    assert sum(labels[i] == "b" for i in test) == 2
    assert md.stratified_split(labels, 0.2, seed=0) == (train, test)
    with pytest.raises(ValueError):
        md.stratified_split(labels, 1.0, seed=0)


def test_main_writes_six_archives_and_reports_them(tmp_path, capsys):
    assert md.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "digits-test.zip",
        "digits-train.zip",
        "shapes-test.zip",
        "shapes-train.zip",
        "texts-test.zip",
        "texts-train.zip",
    ]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("digits: 1797 samples, 10 classes")
    assert lines[1].startswith("texts: ")
    assert f"{len(md.TEXT_TOPICS)} classes" in lines[1]
    assert str(tmp_path / "texts-train.zip") in lines[1]
    assert lines[2].startswith("shapes: 500 samples, 3 classes")


# --- shapes ---------------------------------------------------------------------------------

#: a pixel with every channel below this is part of a shape (fills are at most 140, the
#: noisy backgrounds at least 155)
SHAPE_PIXEL = 148


def _unpacked(archive: Path, dest: Path) -> Path:
    extract_archive(archive, dest, ArchiveLimits())
    return dataset_root(dest)


def test_shapes_is_a_valid_coco_detection_dataset(built, tmp_path):
    dataset = built["shapes"]
    assert (dataset.name, dataset.classes, dataset.samples) == ("shapes", 3, 500)
    key = (Purpose(dataset.purpose), SubPurpose(dataset.sub_purpose))
    assert key == (Purpose.IMAGE, SubPurpose.OBJECT_DETECTION)
    assert DatasetFormat(dataset.format) in FORMATS_FOR[key]
    assert dataset.train == built["out"] / "shapes-train.zip"
    for split, archive, count in (("train", dataset.train, 400), ("test", dataset.test, 100)):
        root = _unpacked(archive, tmp_path / split)
        assert root.name == f"shapes-{split}"
        inspection = inspect_dataset(root, DatasetFormat.JSON, Purpose.IMAGE)
        assert inspection.report.ok, inspection.report.errors
        assert inspection.report.warnings == []
        stats = inspection.statistics
        assert stats is not None
        assert stats.samples == count
        assert stats.classes == ["circle", "square", "triangle"]
        assert stats.image_sizes == {"64x64": count}
        assert count < stats.annotations <= 3 * count
        assert all(n > count / 2 for n in stats.class_counts.values()), stats.class_counts


def test_shape_boxes_are_tight_around_the_drawn_pixels(built, tmp_path):
    root = _unpacked(built["shapes"].train, tmp_path / "train")
    document = json.loads((root / "annotations.json").read_text())
    assert [c["name"] for c in document["categories"]] == list(md.SHAPES)
    boxes: dict[int, list[list[int]]] = {}
    for annotation in document["annotations"]:
        boxes.setdefault(annotation["image_id"], []).append(annotation["bbox"])
        polygon = annotation["segmentation"][0]
        x, y, w, h = annotation["bbox"]
        assert annotation["area"] == w * h and w == h
        assert all(x <= px <= x + w for px in polygon[0::2])
        assert all(y <= py <= y + h for py in polygon[1::2])
    for image in document["images"][:60]:
        with Image.open(root / "images" / image["file_name"]) as picture:
            assert picture.mode == "RGB"
            pixels = picture.load()
            dark = {(x, y) for x in range(64) for y in range(64) if max(pixels[x, y]) < SHAPE_PIXEL}
        inside: set[tuple[int, int]] = set()
        for x, y, w, h in boxes[image["id"]]:
            mine = {(px, py) for px, py in dark if x <= px < x + w and y <= py < y + h}
            # the shape touches all four sides of its box
            assert {px for px, _ in mine} >= {x, x + w - 1}, image["file_name"]
            assert {py for _, py in mine} >= {y, y + h - 1}, image["file_name"]
            inside |= mine
        assert dark == inside, f"shape pixels outside every box in {image['file_name']}"


def test_shapes_splits_are_drawn_independently(built, tmp_path):
    again = md.make_shapes(tmp_path, train_images=50, test_images=100)
    first = built["shapes"]
    assert _read(again.test) == _read(first.test)  # the test split does not move
    train = _read(again.train)
    assert len([n for n in train if n.endswith(".png")]) == 50
    first_train = _read(first.train)
    assert all(train[n] == first_train[n] for n in train if n.endswith(".png"))
    other = md.make_shapes(tmp_path / "seed1", train_images=5, test_images=5, seed=1)
    name = "shapes-test/images/0001.png"
    assert _read(other.test)[name] != _read(first.test)[name]
