"""The dataset a training run sees: each format split by ratio (stratified, repeatable,
still valid in its format), an independent test set as it is, links or copies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.archives import png
from workbench.datasets.formats import inspect_dataset
from workbench.enums import DatasetFormat, Purpose, SplitMode
from workbench.training.dataset_view import DatasetSource, materialize, train_count

DIR, JSON, SINGLE, BRAT = (
    DatasetFormat.DIR,
    DatasetFormat.JSON,
    DatasetFormat.SINGLE_TEXT,
    DatasetFormat.BRAT_ANN,
)


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def ratio(fmt: DatasetFormat, train: Path) -> DatasetSource:
    return DatasetSource(name="ds", format=fmt, split_mode=SplitMode.RATIO, train=train)


def valid(root: Path, fmt: DatasetFormat, purpose: Purpose) -> None:
    report = inspect_dataset(root, fmt, purpose).report
    assert report.ok, report.errors


@pytest.mark.parametrize(
    ("n", "r", "expected"),
    [(0, 0.8, 0), (1, 0.8, 1), (2, 0.99, 1), (2, 0.01, 1), (5, 0.9, 4), (10, 0.8, 8), (6, 0.75, 5)],
)
def test_train_count_rounds_half_up_and_leaves_one_each_side(n, r, expected):
    assert train_count(n, r) == expected


def test_dir_is_split_per_class_repeatably_with_hard_links(tmp_path):
    source = tmp_path / "stored"
    counts = {"cat": 10, "dog": 5, "owl": 1}
    for label, n in counts.items():
        for i in range(n):
            write(source, f"{label}/{i:02d}.png", png(i * 20))
    write(source, ".DS_Store", "x")

    described = materialize(ratio(DIR, source), tmp_path / "a", train_ratio=0.8, seed="7")
    assert described == {
        "name": "ds",
        "format": "dir",
        "split_mode": "ratio",
        "train_ratio": 0.8,
        "classes": ["cat", "dog", "owl"],
        "samples": {"train": 13, "test": 3},
    }
    assert json.loads((tmp_path / "a" / "dataset.json").read_text()) == described
    train, test = files(tmp_path / "a" / "train"), files(tmp_path / "a" / "test")
    assert not train & test and train | test == files(source) - {".DS_Store"}
    per_class = {label: sum(f.startswith(f"{label}/") for f in train) for label in counts}
    assert per_class == {"cat": 8, "dog": 4, "owl": 1}  # stratified
    some = next(iter(train))
    assert os.stat(tmp_path / "a" / "train" / some).st_ino == os.stat(source / some).st_ino
    valid(tmp_path / "a" / "train", DIR, Purpose.IMAGE)
    valid(tmp_path / "a" / "test", DIR, Purpose.IMAGE)

    materialize(ratio(DIR, source), tmp_path / "b", train_ratio=0.8, seed="7")
    assert files(tmp_path / "b" / "test") == test  # the same task: the same split
    others = [
        files(materialize_to(source, tmp_path / f"s{seed}", seed) / "test") for seed in range(5)
    ]
    assert any(other != test for other in others)  # another task: another split


def materialize_to(source: Path, target: Path, seed: int) -> Path:
    materialize(ratio(DIR, source), target, train_ratio=0.8, seed=str(seed))
    return target


def test_single_text_is_split_per_label_keeping_the_line_order(tmp_path):
    source = tmp_path / "stored"
    labels = ["pos"] * 6 + ["neg"] * 4
    lines = [f"{label}\ttext number {i}\tmore" for i, label in enumerate(labels)]
    write(source, "data.tsv", "\ufeff" + "\r\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]))
    write(source, "README.md", "ignored")

    described = materialize(ratio(SINGLE, source), tmp_path / "v", train_ratio=0.8, seed="1")
    assert described["classes"] == ["neg", "pos"]
    assert described["samples"] == {"train": 8, "test": 2}
    train = (tmp_path / "v" / "train" / "data.tsv").read_text().splitlines()
    test = (tmp_path / "v" / "test" / "data.tsv").read_text().splitlines()
    assert sorted(train + test) == sorted(lines)
    assert train == [line for line in lines if line in train]  # original order
    assert sum(line.startswith("pos") for line in train) == 5  # round(4.8)
    assert sum(line.startswith("neg") for line in train) == 3  # round(3.2)
    assert not (tmp_path / "v" / "train" / "README.md").exists()
    valid(tmp_path / "v" / "train", SINGLE, Purpose.TEXT)
    valid(tmp_path / "v" / "test", SINGLE, Purpose.TEXT)


def test_json_is_split_by_image_with_its_own_annotations(tmp_path):
    source = tmp_path / "stored"
    images = [
        {"id": i, "file_name": f"{'street/' if i % 2 else ''}{i}.png", "width": 8, "height": 8}
        for i in range(1, 6)
    ]
    for image in images:
        write(source, f"images/{image['file_name']}", png(image["id"] * 30))
    write(source, "images/unlisted.png", png(1))
    annotations = [
        {"id": 10 + i, "image_id": i, "category_id": 1 + i % 2, "bbox": [1, 1, 3, 3]}
        for i in range(1, 6)
    ] + [{"id": 20, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}]
    categories = [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}]
    write(
        source,
        "annotations.json",
        json.dumps(
            {
                "info": {"v": 1},
                "images": images,
                "annotations": annotations,
                "categories": categories,
            }
        ),
    )

    described = materialize(ratio(JSON, source), tmp_path / "v", train_ratio=0.8, seed="3")
    assert described["classes"] == ["bus", "car"]
    assert described["samples"] == {"train": 4, "test": 1}
    parts = {}
    for part in ("train", "test"):
        root = tmp_path / "v" / part
        doc = json.loads((root / "annotations.json").read_text())
        ids = {image["id"] for image in doc["images"]}
        assert {a["image_id"] for a in doc["annotations"]} <= ids
        assert doc["categories"] == categories and doc["info"] == {"v": 1}
        assert files(root / "images") == {image["file_name"] for image in doc["images"]}
        valid(root, JSON, Purpose.IMAGE)
        parts[part] = ids
    assert parts["train"] | parts["test"] == {1, 2, 3, 4, 5}
    assert not parts["train"] & parts["test"]
    kept = sum(
        len(json.loads((tmp_path / "v" / p / "annotations.json").read_text())["annotations"])
        for p in ("train", "test")
    )
    assert kept == len(annotations)


def test_brat_is_split_by_document_and_keeps_its_conf(tmp_path):
    source = tmp_path / "stored"
    for i in range(5):
        text = f"Alice met Bob{i} in Paris."
        folder = "news/" if i % 2 else ""
        write(source, f"{folder}doc{i}.txt", text)
        kind = "Place" if i == 4 else "Person"
        span = (17, 22) if i == 4 else (0, 5)
        write(
            source,
            f"{folder}doc{i}.ann",
            f"T1\t{kind} {span[0]} {span[1]}\t{text[span[0] : span[1]]}\n",
        )
    write(source, "annotation.conf", "[entities]\nPerson\nPlace\n")

    described = materialize(ratio(BRAT, source), tmp_path / "v", train_ratio=0.6, seed="9")
    assert described["samples"] == {"train": 3, "test": 2}
    train, test = files(tmp_path / "v" / "train"), files(tmp_path / "v" / "test")
    assert "annotation.conf" in train and "annotation.conf" in test
    docs = {f.removesuffix(".txt") for f in train | test if f.endswith(".txt")}
    assert len(docs) == 5
    for part in (train, test):  # a document's two files stay together
        stems = {f.rsplit(".", 1)[0] for f in part if not f.endswith(".conf")}
        assert {f"{stem}.ann" for stem in stems} | {f"{stem}.txt" for stem in stems} == {
            f for f in part if not f.endswith(".conf")
        }
    assert set(described["classes"]) <= {"Person", "Place"}
    valid(tmp_path / "v" / "train", BRAT, Purpose.TEXT)
    valid(tmp_path / "v" / "test", BRAT, Purpose.TEXT)


def test_an_independent_test_set_is_mounted_as_it_is(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for label in ("a", "b"):
            for i in range(n):
                write(tmp_path / split, f"{label}/{i}.png", png(i))
    write(tmp_path / "train", ".hidden/x.png", png(0))
    source = DatasetSource(
        name="ind",
        format=DIR,
        split_mode=SplitMode.INDEPENDENT,
        train=tmp_path / "train",
        test=tmp_path / "test",
    )
    described = materialize(source, tmp_path / "v", train_ratio=None, seed="1")
    assert described["train_ratio"] is None and described["split_mode"] == "independent"
    assert described["samples"] == {"train": 8, "test": 4}
    assert files(tmp_path / "v" / "train") == files(tmp_path / "train") - {".hidden/x.png"}
    assert files(tmp_path / "v" / "test") == files(tmp_path / "test")


def test_files_are_copied_where_links_are_refused(tmp_path, monkeypatch):
    source = tmp_path / "stored"
    for i in range(4):
        write(source, f"{'ab'[i % 2]}/{i}.png", png(i))

    def refuse(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    materialize(ratio(DIR, source), tmp_path / "v", train_ratio=0.5, seed="1")
    copied = next((tmp_path / "v" / "train").rglob("*.png"))
    original = source / copied.relative_to(tmp_path / "v" / "train")
    assert copied.read_bytes() == original.read_bytes()
    assert os.stat(copied).st_ino != os.stat(original).st_ino


def test_a_ratio_is_needed_for_the_ratio_mode(tmp_path):
    write(tmp_path / "s", "a/1.png", png(1))
    with pytest.raises(ValueError, match="train ratio"):
        materialize(ratio(DIR, tmp_path / "s"), tmp_path / "v", train_ratio=None, seed="1")
