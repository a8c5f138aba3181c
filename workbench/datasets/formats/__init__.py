"""Validation, statistics, preview and splitting of the dataset formats.

Each format is one class implementing :class:`~.base.DatasetFormatRules` (the contract),
in a module of its own: :mod:`.dir`, :mod:`.coco` (``json``), :mod:`.single_text` and
:mod:`.brat` (``brat_ann``); :mod:`.registry` maps each :class:`DatasetFormat` to its
instance (:func:`format_for`). The standard each format follows is written down in
docs/datasets.md.

The services use the functions below: :func:`inspect_dataset` checks every file and
reports per-file errors and warnings, :func:`list_samples` pages through the samples for
preview, and :func:`resolve_sample` maps a sample's path back to a file for the raw-file
route. The training dataset view (``workbench/training/dataset_view.py``) uses each
format's ``split`` and ``describe``.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.datasets.formats.base import MAX_ISSUES, PREVIEW_CHARS, DatasetFormatRules, Issues
from workbench.datasets.formats.registry import format_for, register_format
from workbench.datasets.types import FORMATS_FOR, Inspection, Sample
from workbench.enums import DatasetFormat, Purpose
from workbench.errors import InvalidInput, NotFound

__all__ = [
    "MAX_ISSUES",
    "PREVIEW_CHARS",
    "DatasetFormatRules",
    "format_for",
    "inspect_dataset",
    "list_samples",
    "register_format",
    "resolve_sample",
]

#: a sample path of a line in a file (``single_text``: ``data.txt:12``)
_LINE_SUFFIX = re.compile(r"^(.+):\d+$")


def inspect_dataset(root: Path, fmt: DatasetFormat, purpose: Purpose) -> Inspection:
    """Check every file under ``root`` against the standard of ``fmt``.

    Returns the validation report and, when it has no errors, the statistics.
    """
    _check_kind(root, fmt, purpose)
    issues = Issues()
    statistics = format_for(fmt).validate(root, purpose, issues)
    report = issues.report(fmt)
    return Inspection(report=report, statistics=statistics if report.ok else None)


def list_samples(
    root: Path, fmt: DatasetFormat, purpose: Purpose, offset: int, limit: int
) -> tuple[int, list[Sample]]:
    """The number of samples and the page ``[offset, offset + limit)`` in a stable order."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative.", offset=offset, limit=limit)
    _check_kind(root, fmt, purpose)
    return format_for(fmt).list_samples(root, purpose, offset, limit)


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
