"""What a container job shares with the server's files: the uid it runs as, the paths it
sees its mounts at, its log's last lines, and how the server takes what it leaves
(:class:`RunOutput`: never through a link)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from workbench.backends.base import Backend
from workbench.errors import UnsafeOutput

#: the ``workbench`` user of every environment image: job containers run as it
RUN_UID = 1000


def path_in_run(backend: Backend, path: Path, target: str) -> str:
    """A mounted path as the run sees it: the mount target, or the real path on a backend
    whose runs see the host's files (no mount targets)."""
    return target if backend.isolates_files else str(path)


def give_to_run_user(root: Path) -> None:
    """Let the run's uid 1000 write into ``root``: the owner when the server runs as root,
    else (a server of another uid) a folder everyone may write."""
    for path in (root, *root.rglob("*")):
        if os.geteuid() == 0:
            os.lchown(path, RUN_UID, RUN_UID)
        elif os.geteuid() != RUN_UID:
            path.chmod(0o777)


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a job's log (none if it has none yet)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return list(deque((line.rstrip("\n") for line in f), maxlen=lines))
    except FileNotFoundError:
        return []


# --- what a run leaves behind ---------------------------------------------------------------

#: the most files and folders a run's output may hold for the server to take it
MAX_OUTPUT_ENTRIES = 100_000
#: how deep a run's output folders may nest
MAX_OUTPUT_DEPTH = 64
#: the most bytes the server copies out of a run, unless the caller says less
MAX_OUTPUT_BYTES = 32 * 1024**3
#: a file larger than this with less than half of it on disk is refused as sparse
SPARSE_FROM = 1024**2
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1024 * 1024


class RunOutput:
    """A folder a run could write into, read as hostile input (shared/SECURITY.md).

    Every path is walked from ``root`` one name at a time with file descriptors opened
    without following links (``O_NOFOLLOW``), each checked with ``fstat`` once open: what
    is read or copied is a regular file (with one link: a hard link could be another
    file's) or a folder, lying inside ``root``, whatever the run made of the names in
    between, and even if it swaps them while the server reads (the check is on the opened
    file, not on the name). Anything else fails with :class:`UnsafeOutput`, naming it.

        out = RunOutput(job_folder / "out")
        result = out.read_json("result.json", limit=1 << 20)   # None when there is none
        out.copy("files", server_folder / "version")           # only regular files and folders
    """

    def __init__(self, root: Path, what: str = "the run") -> None:
        self.root = root
        self.what = what

    # --- reading ------------------------------------------------------------------------

    def read_bytes(self, relative: str, *, limit: int) -> bytes | None:
        """The file's bytes (None when it is missing); :class:`UnsafeOutput` when it is not a
        regular file of the folder or holds more than ``limit`` bytes."""
        fd = self._open(relative, directory=False)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise UnsafeOutput(
                f"{self.what} wrote {relative} larger than the {limit} bytes the server reads "
                "of it; nothing was taken.",
                path=relative,
            )
        return data

    def read_text(self, relative: str, *, limit: int) -> str | None:
        data = self.read_bytes(relative, limit=limit)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_json(self, relative: str, *, limit: int) -> Any:
        """The file parsed as JSON; None when it is missing; :class:`UnsafeOutput` as
        :meth:`read_bytes`, ``ValueError`` when it is not JSON."""
        text = self.read_text(relative, limit=limit)
        return None if text is None else json.loads(text)

    def exists(self, relative: str) -> bool:
        """Whether ``relative`` is there, as a regular file or a folder;
        :class:`UnsafeOutput` when it (or a name on the way) is anything else."""
        fd = self._open(relative, directory=None)
        if fd is None:
            return False
        os.close(fd)
        return True

    def open(self, relative: str) -> BinaryIO | None:
        """The regular file ``relative`` open for reading (None when it is missing), for
        a file read a piece at a time as the run writes it (a metrics file)."""
        fd = self._open(relative, directory=False)
        return None if fd is None else os.fdopen(fd, "rb")

    # --- copying ------------------------------------------------------------------------

    def copy(self, relative: str, dest: Path, *, max_bytes: int = MAX_OUTPUT_BYTES) -> int:
        """Copy the regular file or folder ``relative`` to ``dest`` (which must not exist;
        its parent is the server's), never following a link; the bytes copied. What is
        copied belongs to the server and is readable by all (``0644``/``0755``): the run
        keeps no handle on it. :class:`UnsafeOutput` (and nothing left at ``dest``) when
        anything in it is not a regular file or a folder, when it holds more than
        ``max_bytes``, or a sparse file (a few blocks on disk that would copy as a
        mountain of zeros onto the server's)."""
        fd = self._open(relative, directory=None)
        if fd is None:
            raise UnsafeOutput(f"{self.what} left no {relative}.", path=relative)
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        parent = os.open(dest.parent, _DIR_FLAGS)
        tally = _Tally(max_bytes)
        try:
            if is_dir:
                os.mkdir(dest.name, 0o755, dir_fd=parent)
                target = os.open(dest.name, _DIR_FLAGS, dir_fd=parent)
                try:
                    self._copy_dir(fd, target, relative, 1, tally)
                finally:
                    os.close(target)
            else:
                self._copy_file(fd, parent, dest.name, relative, tally)
        except BaseException:
            os.close(fd)
            fd = -1
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest, ignore_errors=True)
            else:
                dest.unlink(missing_ok=True)
            raise
        finally:
            if fd >= 0:
                os.close(fd)
            os.close(parent)
        return tally.bytes

    def _copy_dir(self, fd: int, target: int, where: str, depth: int, tally: _Tally) -> None:
        if depth > MAX_OUTPUT_DEPTH:
            raise UnsafeOutput(
                f"{self.what} nested folders deeper than {MAX_OUTPUT_DEPTH} levels in {where}; "
                "nothing was taken.",
                path=where,
            )
        with os.scandir(fd) as entries:  # one name at a time: a folder may hold millions
            for entry in entries:
                tally.entries += 1
                if tally.entries > MAX_OUTPUT_ENTRIES:
                    raise UnsafeOutput(
                        f"{self.what} left more than {MAX_OUTPUT_ENTRIES} files and folders in "
                        f"{where}; nothing was taken.",
                        path=where,
                    )
                name, inner = entry.name, f"{where}/{_shown(entry.name)}"
                child = self._open_at(fd, name, inner)
                try:
                    if stat.S_ISDIR(os.fstat(child).st_mode):
                        os.mkdir(name, 0o755, dir_fd=target)
                        made = os.open(name, _DIR_FLAGS, dir_fd=target)
                        try:
                            self._copy_dir(child, made, inner, depth + 1, tally)
                        finally:
                            os.close(made)
                    else:
                        self._copy_file(child, target, name, inner, tally)
                finally:
                    os.close(child)

    def _copy_file(self, fd: int, parent: int, name: str, where: str, tally: _Tally) -> None:
        """Copy exactly the file's size as ``fstat`` gave it, once that fits the budget
        and is not sparse; a file that grows or shrinks meanwhile fails."""
        info = os.fstat(fd)
        size = info.st_size
        if tally.bytes + size > tally.max_bytes:
            raise UnsafeOutput(
                f"{self.what} left more than {tally.max_bytes} bytes (at {where}); nothing was "
                "taken.",
                path=where,
            )
        if size > SPARSE_FROM and info.st_blocks * 512 < size // 2:
            raise UnsafeOutput(
                f"{self.what} left a sparse file at {where} ({size} bytes, "
                f"{info.st_blocks * 512} on disk); write the file's data itself.",
                path=where,
            )
        out = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=parent
        )
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            left = size
            while left > 0 and (chunk := os.read(fd, min(_CHUNK, left))):
                os.write(out, chunk)
                left -= len(chunk)
            if left or os.read(fd, 1):
                raise UnsafeOutput(
                    f"{self.what} changed {where} while the server copied it; nothing was taken.",
                    path=where,
                )
            tally.bytes += size
        finally:
            os.close(out)

    # --- walking ------------------------------------------------------------------------

    def _open(self, relative: str, *, directory: bool | None) -> int | None:
        """A descriptor of ``relative`` under the root, checked (see the class doc), a
        folder or a file as ``directory`` says (None: either); None when a name on the way
        does not exist."""
        parts = [part for part in relative.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise UnsafeOutput(f"{relative!r} leads out of {self.root}.", path=relative)
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UnsafeOutput(
                f"{self.what}'s output folder is not a folder ({exc.strerror}); nothing was taken.",
                path=".",
            ) from exc
        done: list[str] = []
        try:
            for part in parts:
                done.append(part)
                child = self._open_at(fd, part, "/".join(done))
                os.close(fd)
                fd = child
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        except FileNotFoundError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if directory is not None and is_dir != directory:
            os.close(fd)
            kind = "a folder" if is_dir else "a file"
            raise UnsafeOutput(
                f"{self.what} left {kind} at {relative}, where the server takes "
                f"{'a folder' if directory else 'a file'}; nothing was taken.",
                path=relative,
            )
        return fd

    def _open_at(self, parent: int, name: str, where: str) -> int:
        """``name`` in the folder ``parent``: a folder, or a regular file with one link."""
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeOutput(
                f"{self.what} left a symbolic link at {where}; links are never followed or "
                "taken. Write the files themselves.",
                path=where,
            )
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise UnsafeOutput(
                f"{self.what} left {_kind(st.st_mode)} at {where}; only regular files and "
                "folders are taken.",
                path=where,
            )
        try:
            fd = os.open(
                name, _DIR_FLAGS if stat.S_ISDIR(st.st_mode) else _FILE_FLAGS, dir_fd=parent
            )
        except OSError as exc:  # swapped for a link or something else since the stat
            raise UnsafeOutput(
                f"{self.what} changed {where} while the server read it ({exc.strerror}); "
                "nothing was taken.",
                path=where,
            ) from exc
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not (
            stat.S_ISDIR(opened.st_mode) or stat.S_ISREG(opened.st_mode)
        ):
            os.close(fd)
            raise UnsafeOutput(
                f"{self.what} changed {where} while the server read it; nothing was taken.",
                path=where,
            )
        if stat.S_ISREG(opened.st_mode) and opened.st_nlink != 1:
            os.close(fd)
            raise UnsafeOutput(
                f"{self.what} left a hard link at {where} ({opened.st_nlink} names for one "
                "file); only files of its own are taken. Write a copy instead.",
                path=where,
            )
        return fd


@dataclass
class _Tally:
    """What a copy took so far, against its budget."""

    max_bytes: int
    entries: int = 0
    bytes: int = 0


def _shown(name: str) -> str:
    """A name a run chose, as messages and logs show it: control characters (a newline
    would forge a log line of the server's) escaped."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "something that is not a file"
