"""The ratio split of a stored dataset: the repeatable random cut (:class:`Splitter`) and
the placing of files by hard link or copy (:class:`Linker`)."""

from __future__ import annotations

import math
import os
import random
import shutil
from pathlib import Path

from workbench.datasets.formats.files import visible_files


def train_count(n: int, ratio: float) -> int:
    """How many of ``n`` samples go to train: ``n * ratio`` rounded half up, leaving at
    least one on each side when there are two or more."""
    if n <= 1:
        return n
    return min(n - 1, max(1, math.floor(n * ratio + 0.5)))


class Splitter:
    """What a format's :meth:`~DatasetFormatRules.split` works with: a repeatable random
    cut of its samples at ``ratio``, and a way to place their files."""

    def __init__(self, ratio: float, seed: str) -> None:
        self.ratio = ratio
        self._rng = random.Random(f"workbench-split:{seed}:{ratio!r}")
        self._links = Linker()

    def cut(self, items: list[str]) -> tuple[list[str], list[str]]:
        """``items`` (sorted first, so the order they came in does not matter) shuffled
        and cut into the train part and the test part, each sorted."""
        shuffled = sorted(items)
        self._rng.shuffle(shuffled)
        k = train_count(len(shuffled), self.ratio)
        return sorted(shuffled[:k]), sorted(shuffled[k:])

    def link(self, source: Path, target: Path) -> None:
        """Place the file ``source`` at ``target`` (its folders are made)."""
        self._links.file(source, target)


class Linker:
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
        """Every visible regular file below ``source`` at the same place below ``target``."""
        target.mkdir(parents=True, exist_ok=True)
        for rel in visible_files(source):
            self.file(source / rel, target / rel)
