"""Safe unpacking of uploaded dataset archives: zip, tar and gzip-compressed tar.

The type is recognised by its magic bytes, never by the file name. Every entry name is
checked before anything is written, links and special files are refused, and the limits
of :class:`ArchiveLimits` are enforced on the declared sizes *and* on the bytes actually
produced, so a lying header cannot smuggle a zip bomb through. On any failure the
destination folder is removed completely. The rules are documented in docs/datasets.md.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TypeVar

from workbench.datasets.types import ArchiveLimits
from workbench.errors import (
    ArchiveLimitExceeded,
    CorruptArchive,
    EmptyArchive,
    UnsafeArchive,
    UnsupportedArchive,
)

ArchiveKind = Literal["zip", "tar", "tar.gz"]

ACCEPTED_FORMATS = ("zip", "tar", "tar.gz")
CHUNK_BYTES = 1024 * 1024
#: decompressed tar bytes granted per entry on top of its content (header and padding)
TAR_ENTRY_OVERHEAD = 1024
#: decompressed tar bytes granted on top of everything else (read-ahead, end padding)
TAR_STREAM_SLACK = 1024 * 1024
MAX_NAME_BYTES = 255
JUNK_FOLDERS = frozenset({"__MACOSX"})
JUNK_FILES = frozenset({".DS_Store"})

_REPACK = (
    "Repack the data as a zip (`zip -r data.zip data/`) or a gzip-compressed tar "
    "(`tar czf data.tar.gz data/`)."
)
_REBUILD = "Repack it from a plain folder: no links, no absolute or '..' paths."
_CORRUPT = "The archive is truncated or corrupt; upload it again."
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"Rar!\x1a\x07", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
#: a member of an archive: a ``zipfile.ZipInfo`` or a ``tarfile.TarInfo``
M = TypeVar("M", zipfile.ZipInfo, tarfile.TarInfo)
#: errors of the decoders that mean the bytes are damaged, not that the server failed
_CORRUPTION = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
    UnicodeDecodeError,  # a zip entry name flagged as UTF-8 that is not
)


@dataclass(frozen=True)
class ExtractSummary:
    """What :func:`extract_archive` wrote: regular files and their total size in bytes."""

    files: int
    total_bytes: int


def extract_archive(archive: Path, dest: Path, limits: ArchiveLimits) -> ExtractSummary:
    """Unpack ``archive`` (zip, tar or tar.gz) into the new folder ``dest``.

    ``dest`` must not exist yet. Nothing is ever written outside it, and on any error it is
    removed completely before the error propagates. Raises the ``ArchiveError`` subclasses
    of :mod:`workbench.errors` for unsupported, corrupt, empty, unsafe or oversized archives.
    """
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"extraction target {dest} already exists")
    size = archive.stat().st_size
    if size == 0:
        raise EmptyArchive(
            "The uploaded file is empty (0 bytes); upload the archive again.", actual=0
        )
    if size > limits.max_archive_bytes:
        raise ArchiveLimitExceeded(
            f"The archive is {_human(size)}, more than the limit of "
            f"{_human(limits.max_archive_bytes)} (max_archive_bytes); split the dataset into "
            "smaller archives.",
            limit="max_archive_bytes",
            value=limits.max_archive_bytes,
            actual=size,
        )
    kind = detect_kind(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.mkdir(mode=0o755)
    try:
        os.chmod(dest, 0o755)
        writer = _Writer(dest, _Budget(limits, size))
        try:
            if kind == "zip":
                _extract_zip(archive, writer)
            else:
                _extract_tar(archive, writer, compressed=kind == "tar.gz")
        except _CORRUPTION as exc:
            raise CorruptArchive(_CORRUPT, reason=str(exc)) from exc
        if writer.files == 0:
            raise EmptyArchive(
                "The archive contains no files (only folders or macOS metadata); "
                "check that you packed the right folder and upload it again.",
                files=0,
            )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return ExtractSummary(files=writer.files, total_bytes=writer.budget.total)


def dataset_root(dest: Path) -> Path:
    """The folder holding the dataset inside an unpacked archive.

    An archive may wrap everything in one top folder: when ``dest`` holds exactly one
    directory and nothing else, that directory is the root; otherwise ``dest`` is.
    """
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest


def detect_kind(archive: Path) -> ArchiveKind:
    """Recognise zip, tar or tar.gz by magic bytes; raise ``UnsupportedArchive`` otherwise."""
    with archive.open("rb") as f:
        head = f.read(tarfile.BLOCKSIZE)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        if _looks_like_tar(_gunzip_head(archive)):
            return "tar.gz"
        raise UnsupportedArchive(
            "The file is gzip-compressed but does not contain a tar archive; only "
            f"{', '.join(ACCEPTED_FORMATS)} archives are accepted. {_REPACK}",
            detected="gzip",
            accepted=list(ACCEPTED_FORMATS),
        )
    if _looks_like_tar(head):
        return "tar"
    name = next((label for magic, label in _SIGNATURES if head.startswith(magic)), None)
    what = f"{name} archives are" if name else "This file type is"
    raise UnsupportedArchive(
        f"{what} not supported; upload a {', '.join(ACCEPTED_FORMATS)} archive. {_REPACK}",
        detected=name.lower() if name else "unknown",
        accepted=list(ACCEPTED_FORMATS),
    )


def _human(size: int) -> str:
    """``2048`` -> ``"2048 bytes (2.0 KiB)"``: exact for support, readable for people."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    units = ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{size} bytes ({value:.1f} {units[0]})"


def _looks_like_tar(block: bytes) -> bool:
    """A ustar/GNU header, or an all-zero block (the end marker of an empty tar)."""
    if len(block) < tarfile.BLOCKSIZE:
        return False
    return block[257:262] == b"ustar" or block == bytes(tarfile.BLOCKSIZE)


def _gunzip_head(archive: Path) -> bytes:
    try:
        with gzip.open(archive, "rb") as f:
            return f.read(tarfile.BLOCKSIZE)
    except _CORRUPTION as exc:
        raise CorruptArchive(_CORRUPT, reason=str(exc)) from exc


# --- names --------------------------------------------------------------------------------


def _unsafe(entry: str, problem: str, reason: str) -> UnsafeArchive:
    return UnsafeArchive(
        f"Entry {entry!r} {problem}; the archive was rejected. {_REBUILD}",
        entry=entry,
        reason=reason,
    )


def safe_parts(name: str) -> tuple[str, ...]:
    """The components of an archive entry's name, or ``UnsafeArchive`` if it could escape.

    Empty and ``.`` components are dropped, so ``./a//b`` gives ``("a", "b")``.
    """
    if "\x00" in name:
        raise _unsafe(name, "contains a NUL character", "nul")
    if "\\" in name:
        raise _unsafe(name, "contains a backslash (a Windows path separator)", "backslash")
    if name.startswith("/"):
        raise _unsafe(name, "has an absolute path", "absolute")
    if _DRIVE.match(name):
        raise _unsafe(name, "starts with a drive letter", "drive")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise _unsafe(name, "contains a control character", "control")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _unsafe(name, "has a '..' component", "parent")
    for part in parts:
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            raise _unsafe(name, "is not valid UTF-8", "encoding") from None
        if len(encoded) > MAX_NAME_BYTES:
            raise _unsafe(name, f"has a component over {MAX_NAME_BYTES} bytes", "too_long")
    return parts


def _is_junk(parts: tuple[str, ...]) -> bool:
    """macOS metadata that archivers add: skipped silently."""
    return any(part in JUNK_FOLDERS for part in parts) or parts[-1] in JUNK_FILES


# --- limits -------------------------------------------------------------------------------


@dataclass
class _Budget:
    """Counts entries and bytes against the limits; raises ``ArchiveLimitExceeded``."""

    limits: ArchiveLimits
    archive_bytes: int
    entries: int = 0
    total: int = 0
    stream: int = 0

    def add_entry(self, entry: str) -> None:
        self.entries += 1
        limit = self.limits.max_files
        if self.entries > limit:
            raise ArchiveLimitExceeded(
                f"The archive holds more than {limit} files and folders (max_files); "
                "split the dataset into smaller archives or remove unneeded files.",
                limit="max_files",
                value=limit,
                actual=self.entries,
                entry=entry,
            )

    def check_total(self, total: int, entry: str | None, declared: bool) -> None:
        """Raise if ``total`` uncompressed bytes break max_total_bytes or max_ratio."""
        if total > self.limits.max_total_bytes:
            raise self._too_big("max_total_bytes", total, entry, declared)
        if total > self.limits.max_ratio * self.archive_bytes:
            raise self._too_big("max_ratio", total, entry, declared)

    def add_bytes(self, count: int, entry: str) -> None:
        self.total += count
        self.check_total(self.total, entry, declared=False)

    def add_stream(self, count: int) -> None:
        """Decompressed tar bytes, headers included: bounds what the tar reader buffers."""
        self.stream += count
        by_ratio = self.limits.max_ratio * self.archive_bytes
        cap = min(self.limits.max_total_bytes, by_ratio)
        if self.stream > cap + TAR_ENTRY_OVERHEAD * (self.entries + 1) + TAR_STREAM_SLACK:
            binding = "max_total_bytes" if self.limits.max_total_bytes <= by_ratio else "max_ratio"
            raise self._too_big(binding, self.stream, None, declared=False)

    def _too_big(
        self, limit: str, total: int, entry: str | None, declared: bool
    ) -> ArchiveLimitExceeded:
        how = "declares" if declared else "unpacks to"
        if limit == "max_ratio":
            value: float = self.limits.max_ratio
            problem = (
                f"more than {value:g} times its own size of {_human(self.archive_bytes)} "
                "(max_ratio), which looks like a zip bomb; repack it with less extreme "
                "compression or split it into smaller archives."
            )
        else:
            value = self.limits.max_total_bytes
            problem = (
                f"more than the limit of {_human(value)} (max_total_bytes); split the "
                "dataset into smaller archives."
            )
        return ArchiveLimitExceeded(
            f"The archive {how} at least {_human(total)}, {problem}",
            limit=limit,
            value=value,
            actual=total,
            entry=entry,
        )


class _CountingReader:
    """A read-only stream that reports every decompressed byte to a budget."""

    def __init__(self, inner: IO[bytes], budget: _Budget) -> None:
        self.inner = inner
        self.budget = budget

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(CHUNK_BYTES):
                parts.append(chunk)
            return b"".join(parts)
        data = self.inner.read(size)
        self.budget.add_stream(len(data))
        return data


# --- writing ------------------------------------------------------------------------------


class _Writer:
    """Creates the files and folders of the archive under ``dest``, and nothing else."""

    def __init__(self, dest: Path, budget: _Budget) -> None:
        self.dest = dest
        self.budget = budget
        self.files = 0
        self._root = dest.resolve()
        self._claimed_files: set[tuple[str, ...]] = set()
        self._claimed_dirs: set[tuple[str, ...]] = set()

    def claim(self, entry: str, parts: tuple[str, ...], is_dir: bool) -> None:
        """Reserve a path; entries that would overwrite each other are unsafe."""
        for depth in range(1, len(parts)):
            if parts[:depth] in self._claimed_files:
                raise _unsafe(entry, "lies below an entry that is a file", "conflict")
            self._claimed_dirs.add(parts[:depth])
        if parts in self._claimed_files or (not is_dir and parts in self._claimed_dirs):
            raise _unsafe(entry, "is a duplicate that would overwrite another entry", "duplicate")
        (self._claimed_dirs if is_dir else self._claimed_files).add(parts)

    def make_dirs(self, entry: str, parts: tuple[str, ...]) -> Path:
        path = self.dest
        for part in parts:
            path = path / part
            try:
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise _unsafe(entry, "collides with a file", "conflict") from None
        return path

    def write_file(self, entry: str, parts: tuple[str, ...], source: IO[bytes]) -> None:
        """Stream ``source`` into a new file, counting every byte against the budget."""
        parent = self.make_dirs(entry, parts[:-1])
        if not parent.resolve().is_relative_to(self._root):
            raise _unsafe(entry, "would be written outside the dataset folder", "escape")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parent / parts[-1], flags, 0o644)
        except FileExistsError:
            raise _unsafe(entry, "would overwrite another entry", "duplicate") from None
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            while chunk := _read_member(source, entry):
                self.budget.add_bytes(len(chunk), entry)
                out.write(chunk)
        self.files += 1


def _entries(
    writer: _Writer,
    members: Iterable[M],
    name_of: Callable[[M], str],
    is_dir: Callable[[M], bool],
) -> Iterator[tuple[M, str, tuple[str, ...], bool]]:
    """The members of a zip or tar to unpack, each with its name, its path's parts and
    whether it is a folder. Every member counts against the budget, and an unsafe one
    raises; members without a name and macOS metadata are skipped."""
    for member in members:
        name = name_of(member)
        parts = safe_parts(name)
        folder = is_dir(member)
        writer.budget.add_entry(name)
        if parts and not _is_junk(parts):
            yield member, name, parts, folder


def _read_member(source: IO[bytes], entry: str) -> bytes:
    """The next chunk of a member; a decoder's OSError (e.g. bad bzip2 data) means corrupt."""
    try:
        return source.read(CHUNK_BYTES)
    except OSError as exc:
        raise CorruptArchive(_CORRUPT, entry=entry, reason=str(exc)) from exc


# --- zip ----------------------------------------------------------------------------------


def _zip_is_dir(info: zipfile.ZipInfo) -> bool:
    """Whether a zip entry is a folder; links and special files raise ``UnsafeArchive``."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise _unsafe(info.orig_filename, "is a symbolic link", "symlink")
    if info.is_dir() or kind == stat.S_IFDIR:
        return True
    if kind not in (0, stat.S_IFREG):
        raise _unsafe(info.orig_filename, "is a special file (device, FIFO or socket)", "special")
    return False


def _check_zip_entry(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise UnsupportedArchive(
            f"Entry {info.orig_filename!r} is password-protected; upload an archive "
            "without encryption.",
            entry=info.orig_filename,
        )
    if info.compress_type not in _ZIP_METHODS:
        raise UnsupportedArchive(
            f"Entry {info.orig_filename!r} uses zip compression method "
            f"{info.compress_type}, which is not supported; repack it with standard "
            "Deflate compression (the default of `zip`).",
            entry=info.orig_filename,
            method=info.compress_type,
        )


def _extract_zip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], bool]] = []
        declared = 0
        members = _entries(writer, zf.infolist(), lambda info: info.orig_filename, _zip_is_dir)
        for info, name, parts, is_dir in members:
            _check_zip_entry(info)
            writer.claim(name, parts, is_dir)
            plan.append((info, parts, is_dir))
            if not is_dir:
                declared += info.file_size
                writer.budget.check_total(declared, name, declared=True)
        for info, parts, is_dir in plan:
            if is_dir:
                writer.make_dirs(info.orig_filename, parts)
            else:
                with zf.open(info) as source:
                    writer.write_file(info.orig_filename, parts, source)


# --- tar ----------------------------------------------------------------------------------


def _tar_is_dir(member: tarfile.TarInfo) -> bool:
    """Whether a tar member is a folder; anything but files and folders is unsafe."""
    if member.isdir():
        return True
    if member.isreg():
        return False
    if member.issym():
        problem, reason = "is a symbolic link", "symlink"
    elif member.islnk():
        problem, reason = "is a hard link", "hardlink"
    elif member.ischr() or member.isblk():
        problem, reason = "is a device file", "device"
    elif member.isfifo():
        problem, reason = "is a FIFO (named pipe)", "fifo"
    else:
        problem, reason = f"has the unsupported tar type {member.type!r}", "special"
    raise _unsafe(member.name, problem, reason)


def _extract_tar(archive: Path, writer: _Writer, compressed: bool) -> None:
    with archive.open("rb") as raw:
        inner: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        reader = _CountingReader(inner, writer.budget)
        with tarfile.open(fileobj=reader, mode="r|") as tf:
            for member, name, parts, is_dir in _entries(
                writer, tf, lambda member: member.name, _tar_is_dir
            ):
                writer.claim(name, parts, is_dir)
                if is_dir:
                    writer.make_dirs(name, parts)
                    continue
                writer.budget.check_total(writer.budget.total + member.size, name, declared=True)
                source = tf.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have data
                    raise CorruptArchive(_CORRUPT, entry=name)
                writer.write_file(name, parts, source)
        if compressed:  # read to the end so the gzip checksum is verified
            while reader.read(CHUNK_BYTES):
                pass
