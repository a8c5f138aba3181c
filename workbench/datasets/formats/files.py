"""Helpers the formats share: walking a dataset's folders, reading its text and images,
and summing up what was found."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TypeVar

from PIL import Image

from workbench.datasets.formats.base import ROOT, BadFile, Issues
from workbench.datasets.types import NumericSummary

T = TypeVar("T")


def entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder``, sorted by name."""
    with os.scandir(folder) as it:
        return sorted(it, key=lambda entry: entry.name)


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def skip_hidden_or_link(entry: os.DirEntry[str], rel: str, issues: Issues) -> bool:
    """Warn about hidden entries and refuse links; True if ``entry`` must be skipped."""
    if is_hidden(entry.name):
        kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
        issues.warning(rel, f"hidden {kind}; ignored")
        return True
    if entry.is_symlink():
        issues.error(rel, "symbolic links are not allowed; replace it with the real file")
        return True
    return False


def walk(folder: Path, prefix: str, issues: Issues) -> list[str]:
    """Sorted '/'-paths (relative to ``folder``) of the visible regular files below it.

    Issues are reported with ``prefix`` (the folder's path relative to the dataset root).
    """
    found: list[str] = []
    for entry in entries(folder):
        rel = f"{prefix}{entry.name}"
        if skip_hidden_or_link(entry, rel, issues):
            continue
        if entry.is_dir():
            sub = walk(Path(entry.path), f"{rel}/", issues)
            found.extend(f"{entry.name}/{name}" for name in sub)
        elif entry.is_file():
            found.append(entry.name)
    return found


def visible_files(root: Path) -> list[str]:
    """'/'-paths of the regular files below ``root`` outside hidden files and folders,
    links left out."""
    return walk(root, "", Issues())


def decode(data: bytes, bom: bool = True) -> str:
    """``data`` as UTF-8 (a leading byte-order mark dropped when ``bom``), or BadFile."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        raise BadFile(
            f"is not valid UTF-8 (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None


def read_text(path: Path, bom: bool = True) -> str:
    """The UTF-8 text of ``path``, or BadFile."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadFile(f"cannot be read ({exc.strerror})") from None
    return decode(data, bom)


def read_lenient(path: Path) -> str:
    """The text of ``path`` with undecodable bytes replaced (for previews and splits)."""
    return path.read_bytes().decode("utf-8-sig", errors="replace")


def lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (``\\r\\n`` endings accepted)."""
    numbered = enumerate((raw.rstrip("\r") for raw in text.split("\n")), start=1)
    return [(number, line) for number, line in numbered if line.strip()]


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image that Pillow can open and verify."""
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()
    except Exception as exc:
        reason = str(exc).replace(str(path), path.name)  # no server paths in reports
        raise BadFile(
            f"is not a readable image ({type(exc).__name__}: {reason}); re-export it as PNG or JPEG"
        ) from None
    return size


def size_key(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def summary(values: list[int]) -> NumericSummary | None:
    if not values:
        return None
    return NumericSummary(min=min(values), max=max(values), mean=sum(values) / len(values))


def sorted_counts(counts: Counter[str]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}


def warn_single_class(counts: Counter[str], issues: Issues) -> None:
    if len(counts) == 1:
        (name,) = counts
        issues.warning(ROOT, f"only one class ({name!r}); a classifier needs at least two")


def page(items: list[T], offset: int, limit: int) -> list[T]:
    return items[offset : offset + limit]
