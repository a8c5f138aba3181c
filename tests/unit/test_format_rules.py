"""A dataset format is one class: the registry serves every format's rules, and a new class
registered for a format is what validation, the sample preview and the training view use."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from workbench.datasets.formats import (
    DatasetFormatRules,
    format_for,
    inspect_dataset,
    list_samples,
    register_format,
)
from workbench.datasets.formats.base import Issues
from workbench.datasets.formats.single_text import SingleTextFormat
from workbench.datasets.formats.splitting import Splitter
from workbench.datasets.types import FileIssue, Sample, Statistics
from workbench.enums import DatasetFormat, Purpose, SplitMode
from workbench.training.dataset_view import DatasetSource, materialize


class FlatFormat(DatasetFormatRules):
    """A made-up fifth format: ``<label>_<n>.txt`` files at the root, one sample each.

    A real fifth format also gets its own ``DatasetFormat`` value; this one stands in under
    ``single_text``'s value (purpose text) so the enumeration stays as it is.
    """

    format = DatasetFormat.SINGLE_TEXT

    @staticmethod
    def files(root: Path) -> list[str]:
        return sorted(p.name for p in root.iterdir() if p.suffix == ".txt")

    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics:
        counts: Counter[str] = Counter()
        for name in self.files(root):
            issues.files_checked += 1
            label, underscore, _ = name.partition("_")
            if underscore:
                counts[label] += 1
            else:
                issues.error(name, "no label; name it <label>_<n>.txt")
        return Statistics(
            samples=sum(counts.values()), classes=sorted(counts), class_counts=dict(counts)
        )

    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        names = self.files(root)
        page = names[offset : offset + limit]
        return len(names), [Sample(path=n, label=n.partition("_")[0], kind="text") for n in page]

    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        train_part, test_part = splitter.cut(self.files(source))
        for folder, names in ((train, train_part), (test, test_part)):
            for name in names:
                splitter.link(source / name, folder / name)

    def describe(self, root: Path) -> tuple[list[str], int]:
        labels = [name.partition("_")[0] for name in self.files(root)]
        return sorted(set(labels)), len(labels)


@pytest.fixture
def flat_format():
    previous = register_format(FlatFormat())
    yield
    assert previous is not None
    register_format(previous)


def write_flat(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    for name in names:
        (root / name).write_text(f"text of {name}")
    return root


def test_every_format_has_its_rules():
    for fmt in DatasetFormat:
        assert isinstance(format_for(fmt), DatasetFormatRules)
        assert format_for(fmt).format is fmt


def test_a_format_class_must_implement_the_whole_contract():
    class Half(DatasetFormatRules):
        format = DatasetFormat.DIR

        def validate(self, root: Path, purpose: Purpose, issues: Issues) -> None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]


def test_a_new_format_class_is_all_validation_preview_and_training_need(tmp_path, flat_format):
    fmt = DatasetFormat.SINGLE_TEXT
    assert isinstance(format_for(fmt), FlatFormat)

    bad = write_flat(tmp_path / "bad", ["pos_1.txt", "nolabel.txt"])
    report = inspect_dataset(bad, fmt, Purpose.TEXT).report
    assert not report.ok and report.files_checked == 2
    assert report.errors == [
        FileIssue(path="nolabel.txt", message="no label; name it <label>_<n>.txt")
    ]

    names = [f"{label}_{i}.txt" for label in ("neg", "pos") for i in range(5)]
    root = write_flat(tmp_path / "stored", names)
    inspection = inspect_dataset(root, fmt, Purpose.TEXT)
    assert inspection.report.ok
    assert inspection.statistics is not None
    assert inspection.statistics.class_counts == {"neg": 5, "pos": 5}
    total, page = list_samples(root, fmt, Purpose.TEXT, 8, 5)
    assert (total, [s.path for s in page]) == (10, ["pos_3.txt", "pos_4.txt"])

    source = DatasetSource(name="flat", format=fmt, split_mode=SplitMode.RATIO, train=root)
    described = materialize(source, tmp_path / "view", train_ratio=0.8, seed="5")
    assert (described["classes"], described["samples"]) == (["neg", "pos"], {"train": 8, "test": 2})
    train = set(FlatFormat.files(tmp_path / "view" / "train"))
    test = set(FlatFormat.files(tmp_path / "view" / "test"))
    assert len(train) == 8 and train | test == set(names) and not train & test
    some = sorted(train)[0]
    assert os.stat(tmp_path / "view" / "train" / some).st_ino == os.stat(root / some).st_ino


def test_registering_returns_the_rules_it_replaces():
    original = format_for(DatasetFormat.SINGLE_TEXT)
    assert isinstance(original, SingleTextFormat)
    replaced = register_format(FlatFormat())
    try:
        assert replaced is original
    finally:
        assert isinstance(register_format(original), FlatFormat)
    assert format_for(DatasetFormat.SINGLE_TEXT) is original
