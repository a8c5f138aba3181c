"""Where things run: the Docker Engine, local processes, or memory (for tests).

:mod:`workbench.backends.base` is the contract; ``docker``, ``local`` and ``fake`` implement
it. Callers import from here and pick one with :func:`get_backend`::

    backend = get_backend("docker", home / "backends")

"auto" is Docker: nothing falls back to the local backend, which isolates nothing and is
chosen only by name (single-user mode).
"""

from __future__ import annotations

from pathlib import Path

from workbench.backends.base import (
    MANAGED_LABEL,
    NO_NETWORK,
    Backend,
    ImageInfo,
    Limits,
    Mount,
    Network,
    RunInfo,
    RunSpec,
    RunState,
)
from workbench.errors import InvalidInput

__all__ = [
    "BACKEND_NAMES",
    "MANAGED_LABEL",
    "NO_NETWORK",
    "Backend",
    "ImageInfo",
    "Limits",
    "Mount",
    "Network",
    "RunInfo",
    "RunSpec",
    "RunState",
    "get_backend",
]

BACKEND_NAMES = ("auto", "docker", "local", "fake")


def get_backend(name: str, state_dir: Path) -> Backend:
    """The backend called ``name``: "docker" (or "auto", the same), "local" (its state in
    ``state_dir``) or "fake". Docker that does not answer raises :class:`BackendUnavailable`
    (503, saying how to start it), never the local backend: a server that fell back to it
    would run every user's imported models and workspaces as its own processes, unboxed,
    without anyone having asked for that."""
    # imported here: the docker SDK loads only where Docker is asked for
    from workbench.backends.docker import DockerBackend
    from workbench.backends.fake import FakeBackend
    from workbench.backends.local import LocalBackend

    if name in ("docker", "auto"):
        return DockerBackend.from_env()
    if name == "local":
        return LocalBackend(state_dir)
    if name == "fake":
        return FakeBackend()
    raise InvalidInput(
        f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}.", backend=name
    )
