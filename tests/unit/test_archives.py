"""Unpacking uploaded archives: formats, unsafe entries, bombs, corruption and cleanup."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.datasets import archives
from workbench.datasets.archives import ExtractSummary, dataset_root, extract_archive
from workbench.datasets.types import ArchiveLimits
from workbench.errors import (
    ArchiveError,
    ArchiveLimitExceeded,
    CorruptArchive,
    EmptyArchive,
    UnsafeArchive,
    UnsupportedArchive,
)

LIMITS = ArchiveLimits()
FILES = {"top/cat/a.txt": b"meow", "top/dog/b.txt": b"woof woof"}


# --- builders -------------------------------------------------------------------------------


def make_zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def zip_entry(path: Path, name: str, data: bytes = b"", mode: int = 0) -> Path:
    """A zip with one entry whose Unix mode (file type and permissions) is ``mode``."""
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.create_system = 3
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, data)
    return path


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "top/cat/a.txt"
    return info, data


def make_tar(path: Path, members: list[tuple], compressed: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if compressed else "w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def tar_files(path: Path, files: dict[str, bytes], compressed: bool = False) -> Path:
    return make_tar(path, [tar_member(n, d) for n, d in files.items()], compressed)


def central_offset(data: bytes, name: str | bytes) -> int:
    """Offset of the central-directory header of ``name`` in a zip's bytes."""
    raw = name.encode() if isinstance(name, str) else name
    offset = data.index(b"PK\x01\x02")
    while offset >= 0:
        name_len = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_len] == raw:
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise AssertionError(f"{name} not in the central directory")


def patch_zip(path: Path, name: str | bytes, field_offset: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, central_offset(bytes(data), name) + field_offset, value)
    path.write_bytes(bytes(data))


def failing(
    archive: Path, dest: Path, error: type[ArchiveError], limits: ArchiveLimits = LIMITS
) -> ArchiveError:
    """Extract, expect ``error``, and check that nothing was left behind."""
    before = sorted(p.name for p in archive.parent.iterdir())
    with pytest.raises(error) as caught:
        extract_archive(archive, dest, limits)
    assert not dest.exists()
    assert sorted(p.name for p in archive.parent.iterdir()) == before
    assert caught.type is error
    return caught.value


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A destination outside the folder that holds the archives."""
    return tmp_path.parent / f"{tmp_path.name}-out" / "unpacked"


# --- happy paths -------------------------------------------------------------------------------


def _zip(path: Path) -> Path:
    return make_zip(path, FILES)


def _tar(path: Path) -> Path:
    return tar_files(path, FILES)


def _tgz(path: Path) -> Path:
    return tar_files(path, FILES, compressed=True)


@pytest.mark.parametrize("build", [_zip, _tar, _tgz], ids=["zip", "tar", "tar.gz"])
def test_extracts_each_format_and_finds_the_wrapper_folder(tmp_path, out, build):
    archive = build(tmp_path / "upload.bin")  # the name says nothing: magic bytes decide
    summary = extract_archive(archive, out, LIMITS)
    assert summary == ExtractSummary(files=2, total_bytes=len(b"meow") + len(b"woof woof"))
    assert (out / "top/cat/a.txt").read_bytes() == b"meow"
    assert (out / "top/dog/b.txt").read_bytes() == b"woof woof"
    assert dataset_root(out) == out / "top"


def test_permissions_from_the_archive_are_ignored(tmp_path, out):
    archive = zip_entry(tmp_path / "a.zip", "run.sh", b"#!/bin/sh", stat.S_IFREG | 0o4777)
    extract_archive(archive, out, LIMITS)
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o644
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_folders_are_created_with_0755(tmp_path, out):
    archive = tar_files(tmp_path / "a.tar", {"x/y/z.txt": b"1"})
    extract_archive(archive, out, LIMITS)
    assert stat.S_IMODE((out / "x/y").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "x/y/z.txt").stat().st_mode) == 0o644


def test_macos_junk_is_skipped(tmp_path, out):
    files = {
        "data/cat/a.txt": b"a",
        "__MACOSX/data/cat/._a.txt": b"junk",
        "data/.DS_Store": b"junk",
        "data/cat/.DS_Store": b"junk",
    }
    summary = extract_archive(make_zip(tmp_path / "a.zip", files), out, LIMITS)
    assert summary == ExtractSummary(files=1, total_bytes=1)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "data",
        "data/cat",
        "data/cat/a.txt",
    ]


def test_explicit_directory_entries_and_dot_slash_names(tmp_path, out):
    members = [
        tar_member("./", kind=tarfile.DIRTYPE),
        tar_member("./d", kind=tarfile.DIRTYPE),
        tar_member("./d/f.txt", b"abc"),
        tar_member("./d", kind=tarfile.DIRTYPE),  # a repeated folder is harmless
    ]
    summary = extract_archive(make_tar(tmp_path / "a.tar", members), out, LIMITS)
    assert summary == ExtractSummary(files=1, total_bytes=3)
    assert (out / "d/f.txt").read_bytes() == b"abc"


def test_dataset_root_without_a_wrapper(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert dataset_root(tmp_path) == tmp_path
    (tmp_path / "b").rmdir()
    (tmp_path / "file.txt").write_text("x")
    assert dataset_root(tmp_path) == tmp_path
    (tmp_path / "file.txt").unlink()
    assert dataset_root(tmp_path) == tmp_path / "a"


def test_existing_destination_is_refused_and_left_alone(tmp_path, out):
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        extract_archive(_zip(tmp_path / "a.zip"), out, LIMITS)
    assert (out / "keep.txt").read_text() == "mine"


# --- unsafe entries ----------------------------------------------------------------------------

BAD_NAMES = {
    "parent": "../evil.txt",
    "parent-deep": "top/../../evil.txt",
    "absolute": "/tmp/evil.txt",
    "drive": "C:/evil.txt",
    "backslash": "..\\evil.txt",
    "control": "top/a\nb.txt",
}


@pytest.mark.parametrize("reason", sorted(BAD_NAMES))
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_unsafe_names_are_rejected(tmp_path, out, kind, reason):
    name = BAD_NAMES[reason]
    files = {"top/ok.txt": b"ok", name: b"evil"}
    if kind == "zip":
        archive = make_zip(tmp_path / "a.zip", files)
    else:
        archive = tar_files(tmp_path / "a.tar", files)
    error = failing(archive, out, UnsafeArchive)
    assert error.details["entry"] == name
    assert error.details["reason"] == reason.split("-")[0]
    assert repr(name) in error.message
    assert not (tmp_path.parent / "evil.txt").exists()


def test_nul_in_a_zip_name_is_rejected(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/aXb.txt": b"x"})
    archive.write_bytes(archive.read_bytes().replace(b"top/aXb.txt", b"top/a\x00b.txt"))
    error = failing(archive, out, UnsafeArchive)
    assert error.details == {"entry": "top/a\x00b.txt", "reason": "nul"}
    assert "NUL" in error.message


def test_zip_symlink_is_rejected(tmp_path, out):
    archive = zip_entry(tmp_path / "a.zip", "top/link", b"/etc/passwd", stat.S_IFLNK | 0o777)
    error = failing(archive, out, UnsafeArchive)
    assert error.details == {"entry": "top/link", "reason": "symlink"}
    assert "symbolic link" in error.message


def test_zip_fifo_is_rejected(tmp_path, out):
    archive = zip_entry(tmp_path / "a.zip", "top/pipe", b"", stat.S_IFIFO | 0o644)
    assert failing(archive, out, UnsafeArchive).details["reason"] == "special"


@pytest.mark.parametrize(
    ("kind", "reason", "words"),
    [
        (tarfile.SYMTYPE, "symlink", "symbolic link"),
        (tarfile.LNKTYPE, "hardlink", "hard link"),
        (tarfile.CHRTYPE, "device", "device file"),
        (tarfile.BLKTYPE, "device", "device file"),
        (tarfile.FIFOTYPE, "fifo", "FIFO"),
    ],
)
def test_tar_links_and_special_files_are_rejected(tmp_path, out, kind, reason, words):
    members = [tar_member("top/cat/a.txt", b"meow"), tar_member("top/cat/special", kind=kind)]
    archive = make_tar(tmp_path / "a.tar.gz", members, compressed=True)
    error = failing(archive, out, UnsafeArchive)
    assert error.details == {"entry": "top/cat/special", "reason": reason}
    assert words in error.message


def test_duplicate_zip_entries_are_rejected(tmp_path, out):
    archive = tmp_path / "a.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("top/a.txt", b"first")
            zf.writestr("top/a.txt", b"second")
    error = failing(archive, out, UnsafeArchive)
    assert error.details == {"entry": "top/a.txt", "reason": "duplicate"}


def test_duplicate_tar_entries_are_rejected(tmp_path, out):
    members = [tar_member("top/a.txt", b"first"), tar_member("./top//a.txt", b"second")]
    error = failing(make_tar(tmp_path / "a.tar", members), out, UnsafeArchive)
    assert error.details == {"entry": "./top//a.txt", "reason": "duplicate"}


@pytest.mark.parametrize(
    ("names", "reason"),
    [(["top/a", "top/a/b.txt"], "conflict"), (["top/a/b.txt", "top/a"], "duplicate")],
    ids=["file-first", "dir-first"],
)
def test_a_file_and_a_folder_with_the_same_name_are_rejected(tmp_path, out, names, reason):
    archive = make_zip(tmp_path / "a.zip", dict.fromkeys(names, b"x"))
    error = failing(archive, out, UnsafeArchive)
    assert error.details == {"entry": names[1], "reason": reason}


# --- limits ------------------------------------------------------------------------------------


def test_archive_larger_than_the_limit(tmp_path, out):
    archive = _zip(tmp_path / "a.zip")
    limits = ArchiveLimits(max_archive_bytes=100)
    error = failing(archive, out, ArchiveLimitExceeded, limits)
    assert error.details == {
        "limit": "max_archive_bytes",
        "value": 100,
        "actual": archive.stat().st_size,
    }


def test_zip_bomb_by_ratio(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/zeros.bin": bytes(2_000_000)})
    error = failing(archive, out, ArchiveLimitExceeded)
    assert error.details["limit"] == "max_ratio"
    assert error.details["value"] == 200.0
    assert error.details["actual"] == 2_000_000  # caught from the declared size
    assert "zip bomb" in error.message


def test_tar_gz_bomb_by_ratio(tmp_path, out):
    archive = tar_files(tmp_path / "a.tgz", {"top/zeros.bin": bytes(5_000_000)}, True)
    error = failing(archive, out, ArchiveLimitExceeded)
    assert error.details["limit"] == "max_ratio"
    assert error.details["entry"] == "top/zeros.bin"


def test_tar_gz_header_bomb_is_caught_on_decompressed_bytes(tmp_path, out):
    """A huge pax header holds no file content: only counting the stream catches it."""
    info, data = tar_member("top/a.txt", b"a")
    info.pax_headers = {"comment": "x" * 20_000_000}
    archive = make_tar(tmp_path / "a.tgz", [(info, data)], compressed=True)
    error = failing(archive, out, ArchiveLimitExceeded)
    assert error.details["limit"] == "max_ratio"
    assert error.details["actual"] > 200 * archive.stat().st_size


def test_zip_total_size_from_declared_sizes(tmp_path, out):
    files = {f"top/{i}.bin": bytes(range(256)) * 4 for i in range(3)}
    archive = make_zip(tmp_path / "a.zip", files)
    error = failing(archive, out, ArchiveLimitExceeded, ArchiveLimits(max_total_bytes=2048))
    assert error.details == {
        "limit": "max_total_bytes",
        "value": 2048,
        "actual": 3072,
        "entry": "top/2.bin",
    }
    assert "2048" in error.message


def test_tar_total_size(tmp_path, out):
    files = {f"top/{i}.bin": bytes(range(256)) * 4 for i in range(3)}
    archive = tar_files(tmp_path / "a.tar.gz", files, compressed=True)
    error = failing(archive, out, ArchiveLimitExceeded, ArchiveLimits(max_total_bytes=2048))
    assert error.details["limit"] == "max_total_bytes"
    assert error.details["entry"] == "top/2.bin"


def test_zip_member_whose_declared_size_lies_is_rejected(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/big.bin": bytes(1_000_000)})
    patch_zip(archive, "top/big.bin", 24, "<I", 10)  # central directory: uncompressed size
    error = failing(archive, out, CorruptArchive, ArchiveLimits(max_total_bytes=1000))
    assert "truncated or corrupt" in error.message


def test_actual_bytes_are_counted_even_when_declared_sizes_pass(tmp_path, out, monkeypatch):
    """If a declared size lied and passed, counting the written bytes still stops it."""
    original = archives._Budget.check_total

    def trust_declared(self, total, entry, declared):
        if not declared:
            original(self, total, entry, declared)

    monkeypatch.setattr(archives._Budget, "check_total", trust_declared)
    archive = make_zip(tmp_path / "a.zip", {"top/big.bin": bytes(3 * archives.CHUNK_BYTES)})
    error = failing(archive, out, ArchiveLimitExceeded, ArchiveLimits(max_ratio=10))
    assert error.details["limit"] == "max_ratio"
    assert error.details["actual"] == archives.CHUNK_BYTES  # stopped after the first chunk


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_too_many_files(tmp_path, out, kind):
    files = {f"top/{i}.txt": b"x" for i in range(6)}
    if kind == "zip":
        archive = make_zip(tmp_path / "a.zip", files)
    else:
        archive = tar_files(tmp_path / "a.tar", files)
    error = failing(archive, out, ArchiveLimitExceeded, ArchiveLimits(max_files=5))
    assert error.details == {"limit": "max_files", "value": 5, "actual": 6, "entry": "top/5.txt"}


# --- corrupt, unsupported, empty ------------------------------------------------------------


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _random(size: int) -> bytes:
    return bytes((i * 7919 + i // 3) % 251 for i in range(size))


@pytest.mark.parametrize(
    "build",
    [
        lambda p: _truncate(make_zip(p, {"top/a.bin": _random(50_000)}), 0.6),
        lambda p: _truncate(tar_files(p, {"top/a.bin": _random(50_000)}, True), 0.6),
        lambda p: _truncate(tar_files(p, {"top/a.bin": _random(50_000)}), 0.5),
        lambda p: _truncate(tar_files(p, {"top/a.bin": b"x" * 5000}, True), 0.95),
    ],
    ids=["zip", "tar.gz", "tar", "tar.gz-trailer"],
)
def test_truncated_archives_are_corrupt(tmp_path, out, build: Callable[[Path], Path]):
    error = failing(build(tmp_path / "a.bin"), out, CorruptArchive)
    assert error.message == "The archive is truncated or corrupt; upload it again."


def test_zip_with_damaged_data_is_corrupt(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/a.txt": b"hello world " * 100})
    patch_zip(archive, "top/a.txt", 16, "<I", 0xDEADBEEF)  # the CRC-32
    failing(archive, out, CorruptArchive)


@pytest.mark.parametrize(
    ("head", "detected", "words"),
    [
        (b"Rar!\x1a\x07\x01\x00", "rar", "RAR archives are not supported"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z", "7z archives are not supported"),
        (b"BZh91AY&SY", "bzip2", "bzip2 archives are not supported"),
        (b"just some text\n", "unknown", "This file type is not supported"),
    ],
)
def test_unsupported_types(tmp_path, out, head, detected, words):
    archive = tmp_path / "a.zip"
    archive.write_bytes(head + bytes(600))
    error = failing(archive, out, UnsupportedArchive)
    assert error.details == {"detected": detected, "accepted": ["zip", "tar", "tar.gz"]}
    assert words in error.message
    assert "tar czf" in error.message


def test_gzip_without_a_tar_inside_is_unsupported(tmp_path, out):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(b"label\ttext\n" * 100))
    error = failing(archive, out, UnsupportedArchive)
    assert error.details["detected"] == "gzip"


def test_encrypted_zip_is_unsupported(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/a.txt": b"secret"})
    patch_zip(archive, "top/a.txt", 8, "<H", 0x1)  # general purpose flag: encrypted
    error = failing(archive, out, UnsupportedArchive)
    assert error.details == {"entry": "top/a.txt"}
    assert "password" in error.message


def test_zero_byte_file_is_empty(tmp_path, out):
    archive = tmp_path / "a.zip"
    archive.touch()
    assert failing(archive, out, EmptyArchive).details == {"actual": 0}


@pytest.mark.parametrize(
    "build",
    [
        lambda p: make_zip(p, {}),
        lambda p: make_zip(p, {"top/": b"", "top/sub/": b""}),
        lambda p: make_zip(p, {"__MACOSX/._a": b"x", ".DS_Store": b"x"}),
        lambda p: make_tar(p, []),
        lambda p: make_tar(p, [], compressed=True),
    ],
    ids=["zip", "zip-folders", "zip-junk", "tar", "tar.gz"],
)
def test_archives_without_files_are_empty(tmp_path, out, build):
    error = failing(build(tmp_path / "a.bin"), out, EmptyArchive)
    assert "contains no files" in error.message


def test_zip_name_flagged_utf8_but_not_utf8_is_corrupt(tmp_path, out):
    archive = make_zip(tmp_path / "a.zip", {"top/aXb.txt": b"x"})
    archive.write_bytes(archive.read_bytes().replace(b"top/aXb.txt", b"top/a\xffb.txt"))
    patch_zip(archive, b"top/a\xffb.txt", 8, "<H", 0x800)  # flag: names are UTF-8
    error = failing(archive, out, CorruptArchive)
    assert "utf-8" in error.details["reason"]


def test_damaged_bzip2_member_is_corrupt(tmp_path, out):
    archive = make_zip(
        tmp_path / "a.zip", {"top/a.bin": bytes(range(256)) * 400}, compression=zipfile.ZIP_BZIP2
    )
    data = bytearray(archive.read_bytes())
    for i in range(100, 200):
        data[i] ^= 0x55
    archive.write_bytes(bytes(data))
    error = failing(archive, out, CorruptArchive)
    assert error.details == {"entry": "top/a.bin", "reason": "Invalid data stream"}
