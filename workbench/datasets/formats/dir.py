"""``dir``: one folder per class at the root, the sample files directly inside it."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from workbench.datasets.formats.base import PREVIEW_CHARS, ROOT, BadFile, DatasetFormatRules, Issues
from workbench.datasets.formats.files import (
    entries,
    image_size,
    is_hidden,
    page,
    read_lenient,
    read_text,
    size_key,
    skip_hidden_or_link,
    sorted_counts,
    summary,
    warn_single_class,
)
from workbench.datasets.formats.splitting import Splitter
from workbench.datasets.types import Sample, Statistics
from workbench.enums import DatasetFormat, Purpose

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEXT_EXTENSIONS = (".txt",)


def sample_extensions(purpose: Purpose) -> tuple[str, ...]:
    return IMAGE_EXTENSIONS if purpose is Purpose.IMAGE else TEXT_EXTENSIONS


def class_files(root: Path, extensions: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(class, '/'-path) of every visible regular file in a class folder, sorted; only
    those with one of ``extensions`` (any case) when given."""
    found: list[tuple[str, str]] = []
    for class_dir in entries(root):
        if is_hidden(class_dir.name) or not class_dir.is_dir(follow_symlinks=False):
            continue
        for entry in entries(Path(class_dir.path)):
            if (
                not is_hidden(entry.name)
                and entry.is_file(follow_symlinks=False)
                and (extensions is None or Path(entry.name).suffix.lower() in extensions)
            ):
                found.append((class_dir.name, f"{class_dir.name}/{entry.name}"))
    return found


class DirFormat(DatasetFormatRules):
    """Image or text classification: ``<class>/<sample file>``, one sample per file."""

    format = DatasetFormat.DIR

    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics:
        extensions = sample_extensions(purpose)
        class_dirs: list[os.DirEntry[str]] = []
        for entry in entries(root):
            if skip_hidden_or_link(entry, entry.name, issues):
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
            for entry in entries(Path(class_dir.path)):
                rel = f"{class_dir.name}/{entry.name}"
                if skip_hidden_or_link(entry, rel, issues):
                    continue
                if entry.is_dir():
                    issues.error(
                        rel, "nested folder; put the samples directly inside the class folder"
                    )
                    continue
                seen_files = True
                issues.files_checked += 1
                try:
                    _check_sample(Path(entry.path), purpose, extensions, sizes, lengths)
                except BadFile as exc:
                    issues.error(rel, str(exc))
                else:
                    counts[class_dir.name] += 1
            if not seen_files:
                issues.warning(class_dir.name, "empty class folder; ignored")
        warn_single_class(counts, issues)
        image = purpose is Purpose.IMAGE
        return Statistics(
            samples=sum(counts.values()),
            classes=sorted(counts),
            class_counts=sorted_counts(counts),
            image_sizes=sorted_counts(sizes) if image else None,
            text_lengths=None if image else summary(lengths),
        )

    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        paths = class_files(root, sample_extensions(purpose))
        samples = []
        for label, rel in page(paths, offset, limit):
            if purpose is Purpose.IMAGE:
                samples.append(Sample(path=rel, label=label, kind="image"))
            else:
                text = read_lenient(root / rel)[:PREVIEW_CHARS]
                samples.append(Sample(path=rel, label=label, kind="text", text=text))
        return len(paths), samples

    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        """Stratified: each class cut on its own."""
        per_class: dict[str, list[str]] = {}
        for label, rel in class_files(source):
            per_class.setdefault(label, []).append(rel)
        for _label, files in sorted(per_class.items()):
            train_part, test_part = splitter.cut(files)
            for rel in train_part:
                splitter.link(source / rel, train / rel)
            for rel in test_part:
                splitter.link(source / rel, test / rel)

    def describe(self, root: Path) -> tuple[list[str], int]:
        found = class_files(root)
        return sorted({label for label, _ in found}), len(found)


def _check_sample(
    path: Path,
    purpose: Purpose,
    extensions: tuple[str, ...],
    sizes: Counter[str],
    lengths: list[int],
) -> None:
    suffix = path.suffix.lower()
    if suffix not in extensions:
        raise BadFile(
            f"unexpected extension {suffix or '(none)'!r} for {purpose.value} samples; "
            f"use one of {', '.join(extensions)}"
        )
    if purpose is Purpose.IMAGE:
        sizes[size_key(image_size(path))] += 1
        return
    text = read_text(path)
    if not text.strip():
        raise BadFile("is empty; every text sample needs some text")
    lengths.append(len(text))
