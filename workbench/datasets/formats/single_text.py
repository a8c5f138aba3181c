"""``single_text``: one UTF-8 file at the root, a ``<label>\\t<text>`` line per sample."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from workbench.datasets.formats.base import PREVIEW_CHARS, ROOT, BadFile, DatasetFormatRules, Issues
from workbench.datasets.formats.files import (
    entries,
    lines,
    page,
    read_lenient,
    read_text,
    skip_hidden_or_link,
    sorted_counts,
    summary,
    warn_single_class,
)
from workbench.datasets.formats.splitting import Splitter
from workbench.datasets.types import Sample, Statistics
from workbench.enums import DatasetFormat, Purpose
from workbench.errors import DatasetInvalid

EXTENSIONS = (".txt", ".tsv", ".csv")


class SingleTextFormat(DatasetFormatRules):
    """Text classification in one file; a sample's path is ``<file>:<line>``."""

    format = DatasetFormat.SINGLE_TEXT

    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics | None:
        path = _data_file(root, issues)
        if path is None:
            return None
        issues.files_checked += 1
        try:
            content = read_text(path)
        except BadFile as exc:
            issues.error(path.name, str(exc))
            return None
        counts: Counter[str] = Counter()
        lengths: list[int] = []
        for number, line in lines(content):
            try:
                label, text = _split_line(line)
            except BadFile as exc:
                issues.error(f"{path.name}:{number}", str(exc))
                continue
            counts[label] += 1
            lengths.append(len(text))
        if not counts and not issues.errors:
            issues.error(path.name, "has no samples; write one '<label>\\t<text>' line per sample")
        warn_single_class(counts, issues)
        return Statistics(
            samples=len(lengths),
            classes=sorted(counts),
            class_counts=sorted_counts(counts),
            text_lengths=summary(lengths),
        )

    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        path = _data_file(root, Issues())
        if path is None:
            raise DatasetInvalid("The dataset has no single data file; upload a corrected archive.")
        samples = [
            Sample(
                path=f"{path.name}:{number}", label=label, kind="text", text=text[:PREVIEW_CHARS]
            )
            for number, label, text, _line in _samples(path)
        ]
        return len(samples), page(samples, offset, limit)

    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        """Stratified by label; each part is a data file of the same name holding its lines
        in their original order."""
        names = _data_files(source, Issues())
        if not names:
            raise ValueError(f"{source} holds no .txt, .tsv or .csv data file")
        data = source / names[0]
        samples = _samples(data)
        by_label: dict[str, list[str]] = {}
        for index, (_number, label, _text, _line) in enumerate(samples):
            by_label.setdefault(label, []).append(f"{index:09d}")  # sortable positions
        chosen: set[int] = set()
        for _label, positions in sorted(by_label.items()):
            train_part, _ = splitter.cut(positions)
            chosen |= {int(p) for p in train_part}
        for folder, keep in ((train, True), (test, False)):
            folder.mkdir(parents=True, exist_ok=True)
            kept = [sample[3] for i, sample in enumerate(samples) if (i in chosen) is keep]
            (folder / data.name).write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def describe(self, root: Path) -> tuple[list[str], int]:
        names = _data_files(root, Issues())
        samples = _samples(root / names[0]) if names else []
        return sorted({label for _number, label, _text, _line in samples}), len(samples)


def _data_files(root: Path, issues: Issues) -> list[str]:
    """The names of the visible .txt, .tsv and .csv files at the root, sorted; other
    entries are warned about."""
    candidates: list[str] = []
    for entry in entries(root):
        if skip_hidden_or_link(entry, entry.name, issues):
            continue
        if entry.is_file() and Path(entry.name).suffix.lower() in EXTENSIONS:
            candidates.append(entry.name)
        else:
            issues.warning(entry.name, "not a .txt, .tsv or .csv file at the root; ignored")
    return candidates


def _data_file(root: Path, issues: Issues) -> Path | None:
    """The one data file at the root; zero or several are errors."""
    candidates = _data_files(root, issues)
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
        raise BadFile("no tab between label and text; write '<label>\\t<text>'")
    if not label.strip():
        raise BadFile("empty label before the tab")
    if not text.strip():
        raise BadFile("empty text after the tab")
    return label.strip(), text


def _samples(path: Path) -> list[tuple[int, str, str, str]]:
    """(line number, label, text, line) of each well-formed sample line of ``path``."""
    found = []
    for number, line in lines(read_lenient(path)):
        try:
            label, text = _split_line(line)
        except BadFile:
            continue
        found.append((number, label, text, line))
    return found
