"""What a container job shares with the server's files: the uid it runs as, the paths it
sees its mounts at, and its log's last lines."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from workbench.backends.base import Backend

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
