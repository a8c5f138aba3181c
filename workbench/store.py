"""The artifact store: a local folder (the embedded default) with atomic writes.

Keys are "/"-separated relative paths such as ``datasets/7/train``. Every write goes to a
temporary name inside the store and is renamed into place, so readers see either the old
content or the new, never half of it. Uploads are streamed to disk in chunks and hashed on
the way; a 2 GB archive is never held in memory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from workbench.errors import ArchiveLimitExceeded, InvalidInput, UploadIncomplete, WorkbenchError

CHUNK = 1024 * 1024
#: the most a read of a log returns at once
LOG_PAGE = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size: int
    sha256: str


class Upload:
    """A file being received chunk by chunk; ``commit`` or ``discard`` it.

    It lives under the store's ``tmp/`` folder until committed, so a cancelled or
    failed upload leaves nothing in the store's content.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        expected_bytes: int | None,
        too_large: Callable[[int], WorkbenchError] | None = None,
    ) -> None:
        """``too_large``: the error for a body past ``max_bytes`` (given the bytes received)
        when the limit is not the archive limit (a user's quota, say)."""
        self.path = path
        self.max_bytes = max_bytes
        self.expected_bytes = expected_bytes
        self.too_large = too_large
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 (closed in finish)

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "upload already finished"
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            if self.too_large is not None:
                raise self.too_large(self.size)
            raise ArchiveLimitExceeded(
                f"The upload is larger than the limit of {self.max_bytes} bytes; "
                "split the dataset or ask an admin to raise the limit.",
                limit="max_archive_bytes",
                max=self.max_bytes,
            )
        self._file.write(chunk)
        self._hash.update(chunk)

    def finish(self) -> StoredFile:
        """Close the file; raise :class:`UploadIncomplete` if fewer bytes came than announced."""
        assert self._file is not None, "upload already finished"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        if self.expected_bytes is not None and self.size != self.expected_bytes:
            self.discard()
            raise UploadIncomplete(
                f"The upload ended after {self.size} of {self.expected_bytes} bytes; "
                "nothing was changed. Upload the file again.",
                received=self.size,
                expected=self.expected_bytes,
            )
        return StoredFile(self.path, self.size, self._hash.hexdigest())

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class ArtifactStore:
    """A local folder holding datasets, images and model files under string keys."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The absolute path of ``key``; refuses keys that would leave the store."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidInput(f"Invalid storage key {key!r}.")
        return self.root.joinpath(*parts)

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def begin_upload(
        self,
        max_bytes: int,
        expected_bytes: int | None = None,
        too_large: Callable[[int], WorkbenchError] | None = None,
    ) -> Upload:
        if too_large is not None and expected_bytes is not None and expected_bytes > max_bytes:
            raise too_large(expected_bytes)
        if expected_bytes is not None and expected_bytes > max_bytes:
            raise ArchiveLimitExceeded(
                f"The file is {expected_bytes} bytes, over the limit of {max_bytes} bytes; "
                "split the dataset or ask an admin to raise the limit.",
                limit="max_archive_bytes",
                max=max_bytes,
                actual=expected_bytes,
            )
        return Upload(
            self._tmp_dir() / f"upload-{uuid.uuid4().hex}", max_bytes, expected_bytes, too_large
        )

    def save_stream(self, stream: BinaryIO, max_bytes: int) -> StoredFile:
        """Copy a readable binary stream into a temporary upload and finish it."""
        upload = self.begin_upload(max_bytes)
        try:
            while chunk := stream.read(CHUNK):
                upload.write(chunk)
            return upload.finish()
        except BaseException:
            upload.discard()
            raise

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh temporary folder inside the store, removed when the block ends.

        Whatever the block moved out of it with :meth:`publish_dir` stays published.
        """
        staging = self._tmp_dir() / f"stage-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def publish_dir(self, source: Path, key: str) -> None:
        """Atomically put the folder ``source`` at ``key`` (a new key: no overwrite)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)  # same filesystem: atomic; fails if target exists

    def publish_file(self, source: Path, key: str) -> None:
        """Atomically put the file ``source`` at ``key``, replacing what was there."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def delete(self, key: str) -> None:
        target = self.path(key)
        if target.is_dir():
            # rename first so a reader never sees a half-deleted folder
            doomed = self._tmp_dir() / f"delete-{uuid.uuid4().hex}"
            os.rename(target, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read_log(self, key: str, offset: int, *, live: bool) -> bytes:
        """At most :data:`LOG_PAGE` bytes of the log at ``key`` from byte ``offset`` (a
        missing log reads as empty). While its writer may still be mid-line (``live``), or
        when the page is full, only whole lines: a reader going on from ``offset + len``
        never splits a line or a character."""
        try:
            with self.path(key).open("rb") as f:
                f.seek(offset)
                data = f.read(LOG_PAGE)
        except FileNotFoundError:
            return b""
        whole_lines = live or (len(data) == LOG_PAGE and b"\n" in data)
        return data[: data.rfind(b"\n") + 1] if whole_lines else data
