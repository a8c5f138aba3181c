"""The contract of a dataset format (:class:`DatasetFormatRules`), the report its
validation fills in (:class:`Issues`) and the problem of one file (:class:`BadFile`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from workbench.datasets.types import FileIssue, Sample, Statistics, ValidationReport
from workbench.enums import DatasetFormat, Purpose

if TYPE_CHECKING:
    from workbench.datasets.formats.splitting import Splitter

#: errors (and warnings) listed in a report; the rest are only counted
MAX_ISSUES = 200
#: characters of a text sample shown in a preview
PREVIEW_CHARS = 500
#: the path a problem of the whole dataset is reported against
ROOT = "."


class DatasetFormatRules(ABC):
    """The rules of one dataset format: validation, statistics, preview and splitting.

    A format is one subclass of this class, with one instance registered under its
    :class:`~workbench.enums.DatasetFormat` value by
    :func:`~workbench.datasets.formats.registry.register_format`. The instance holds no
    state; the same one serves every dataset and every call. Its standard (what a valid
    dataset looks like) is written down in docs/datasets.md. A subclass sets
    :attr:`format` and implements four methods:

    - :meth:`validate`: check every file of an uploaded split and compute its statistics;
    - :meth:`list_samples`: one page of its samples, for preview;
    - :meth:`split`: cut a stored split in two for a training run (the ratio split mode);
    - :meth:`describe`: the classes and the number of samples of a split folder.

    The callers have already checked that the format fits the dataset's purpose
    (``FORMATS_FOR`` in ``workbench/datasets/types.py``) and that ``root`` is a folder.
    Paths in reports and samples are relative to ``root`` and ``/``-separated. Hidden files
    and folders (names starting with ``.``) are ignored everywhere; symbolic links are
    errors in :meth:`validate` and left out elsewhere. :mod:`.files` holds the helpers for
    all of this.
    """

    #: the value datasets of this format carry in the registry and the REST API
    format: ClassVar[DatasetFormat]

    @abstractmethod
    def validate(self, root: Path, purpose: Purpose, issues: Issues) -> Statistics | None:
        """Check every file below ``root`` against the standard of this format.

        Report each problem to ``issues``: ``issues.error(path, message)`` for what makes
        the split unusable, ``issues.warning(path, message)`` for what is ignored; ``path``
        is the file (``<file>:<line>`` for a problem of one line, :data:`ROOT` for the
        dataset as a whole) and ``message`` says what to do about it. Add each file looked
        at to ``issues.files_checked``. Return the statistics of the valid samples (they
        are kept only when no error was reported), or None where none can be computed.
        """

    @abstractmethod
    def list_samples(
        self, root: Path, purpose: Purpose, offset: int, limit: int
    ) -> tuple[int, list[Sample]]:
        """The number of samples below ``root`` (a validated split) and the samples
        ``[offset, offset + limit)`` in a stable order; both are not negative.

        Each sample's ``path`` must resolve to its file with
        :func:`~workbench.datasets.formats.resolve_sample`; a text sample's ``text`` is
        cut to :data:`PREVIEW_CHARS`. Read only what the page needs where that is cheap.
        Raise :class:`~workbench.errors.DatasetInvalid` where the files cannot be read.
        """

    @abstractmethod
    def split(self, source: Path, train: Path, test: Path, splitter: Splitter) -> None:
        """Write the samples of the stored split ``source`` into the folders ``train`` and
        ``test`` (either may not exist yet), each part valid in this format.

        Cut every group of samples (each class where the format has one label per
        sample, else all of them) with ``splitter.cut``, in a fixed order, so the same
        seed and ratio always give the same parts. Place sample files with
        ``splitter.link`` (hard links, copies where refused); write anew only the files
        whose content differs between the parts (an index, a data file).
        """

    @abstractmethod
    def describe(self, root: Path) -> tuple[list[str], int]:
        """The classes (sorted, without repeats) and the number of samples of the split
        folder ``root``: a validated split, or a part :meth:`split` wrote. An empty folder
        gives ``([], 0)``."""


class BadFile(Exception):
    """A problem with one file or line; the message is reported as-is."""


@dataclass
class Issues:
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
