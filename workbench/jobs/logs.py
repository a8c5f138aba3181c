"""A job's log has a size cap: a run's code may print without end (200 MiB, or forever),
and its log is a file of the store every reader pages through.

:class:`CappedLog` writes lines (each already at most ``LINE_MAX_CHARS``, as backends cut
them, else cut here) until the file reaches about :data:`LOG_MAX_BYTES`, then one last line
saying the rest was not kept; whatever comes after is dropped. Whether a log was cut is
read from its size alone, so appending again later (a kind's ``ctx.log``, a runner that
follows the run again after a restart) keeps the cap.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from workbench.backends.base import LINE_MAX_CHARS, cut_line

#: about the most a job's log holds (the cut line may pass it by a line)
LOG_MAX_BYTES = 64 * 1024**2
#: the most bytes one line takes once cut: its characters at 4 bytes each and the note
_LINE_MAX_BYTES = 4 * LINE_MAX_CHARS + 128


class CappedLog:
    """Lines appended to an open binary file, up to ``limit`` bytes (see the module doc)."""

    def __init__(self, out: BinaryIO, limit: int = LOG_MAX_BYTES) -> None:
        self._out = out
        self._limit = limit
        self._size = out.seek(0, os.SEEK_END)

    @property
    def full(self) -> bool:
        """The log holds what it may: what comes now is dropped."""
        return self._size >= self._limit - _LINE_MAX_BYTES

    def write(self, line: str) -> None:
        """Append ``line`` (flushed: readers tail the log live), unless the log is full."""
        if self.full:
            return
        line = line.rstrip("\n")
        if len(line) > LINE_MAX_CHARS:
            line = cut_line(line[:LINE_MAX_CHARS], len(line) - LINE_MAX_CHARS)
        data = f"{line}\n".encode("utf-8", errors="replace")
        if self._size + len(data) >= self._limit - _LINE_MAX_BYTES:
            note = (
                f"[workbench] log cut at {self._limit // 1024**2} MiB: the rest of the "
                "output is not kept\n"
            )
            data += note.encode()
            self._size = self._limit  # full, whatever this line's size
        else:
            self._size += len(data)
        self._out.write(data)
        self._out.flush()
