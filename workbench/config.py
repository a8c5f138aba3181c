"""Where Workbench keeps its state, and the limits it enforces.

One value object, :class:`Settings`, made by :meth:`Settings.from_env`: the ``WORKBENCH_*``
variables (docs/architecture.md#configuration lists them all), then the server's traits a
user set over them (``WorkbenchApp.workbench_settings``); tests also build it directly.
The embedded default keeps everything under one folder: ``registry.db`` (SQLite in WAL
mode) and ``store/``; a team points ``WORKBENCH_DB_URL`` at PostgreSQL and
``WORKBENCH_STORE`` at a shared folder.
"""

from __future__ import annotations

import getpass
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.datasets.types import ArchiveLimits
from workbench.errors import InvalidInput

DEFAULT_HOME = Path("~/.workbench")


def default_owner() -> str:
    """The user a single-user server belongs to: $JUPYTERHUB_USER, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


@dataclass(frozen=True)
class WorkspaceLimits:
    """What an admin allows one workspace to ask for."""

    max_cpus: float = 4.0
    max_memory_mb: int = 16 * 1024
    max_gpus: int = 0


def _machine_cpus() -> float:
    return float(os.cpu_count() or 1)


def _half_the_memory_mb() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 4096
    return max(256, total // 2 // 1024**2)


@dataclass(frozen=True)
class TrainingLimits:
    """What the training runner of one server may use at once, and so the most one task
    may ask for: runs side by side, and their CPUs, memory (MiB) and GPUs together."""

    concurrency: int = 1
    cpus: float = field(default_factory=_machine_cpus)
    memory_mb: int = field(default_factory=_half_the_memory_mb)
    gpus: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TrainingLimits:
        """``WORKBENCH_TRAINING_CONCURRENCY``, ``_CPUS``, ``_MEMORY_MB`` and ``_GPUS``; each
        left unset keeps its default."""
        defaults = cls()

        def number(name: str, kind: type[int] | type[float], default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise InvalidInput(
                    f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}.",
                    variable=name,
                ) from None
            if value < 0 or (value == 0 and name != "WORKBENCH_TRAINING_GPUS"):
                raise InvalidInput(f"{name}={raw!r} must be positive.", variable=name)
            return value

        return cls(
            concurrency=int(number("WORKBENCH_TRAINING_CONCURRENCY", int, defaults.concurrency)),
            cpus=float(number("WORKBENCH_TRAINING_CPUS", float, defaults.cpus)),
            memory_mb=int(number("WORKBENCH_TRAINING_MEMORY_MB", int, defaults.memory_mb)),
            gpus=int(number("WORKBENCH_TRAINING_GPUS", int, defaults.gpus)),
        )


@dataclass(frozen=True)
class QuotaDefaults:
    """Each user's quotas unless an admin set others (`workbench quota set`): replicas
    running across their services; MiB reserved by those replicas, their running
    workspaces and their queued or running container jobs (training, imports...); bytes
    they keep in the store (datasets, model versions and formats, algorithm images)."""

    replicas: int = 16
    memory_mb: int = 64 * 1024
    upload_bytes: int = 100 * 1024**3

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> QuotaDefaults:
        """``WORKBENCH_QUOTA_REPLICAS``, ``_MEMORY_MB`` and ``_UPLOAD_BYTES``; each left
        unset keeps its default."""
        defaults = cls()

        def number(name: str, default: int) -> int:
            raw = env.get(f"WORKBENCH_QUOTA_{name}", "").strip()
            if not raw:
                return default
            if not raw.isdigit():
                raise InvalidInput(
                    f"WORKBENCH_QUOTA_{name}={raw!r} is not a whole number (0 or more).",
                    variable=f"WORKBENCH_QUOTA_{name}",
                )
            return int(raw)

        return cls(
            replicas=number("REPLICAS", defaults.replicas),
            memory_mb=number("MEMORY_MB", defaults.memory_mb),
            upload_bytes=number("UPLOAD_BYTES", defaults.upload_bytes),
        )


#: the local image every environment is built ``FROM`` (``scripts/base-image`` makes it)
DEFAULT_BASE_IMAGE = "workbench/base:bookworm"


@dataclass(frozen=True)
class EnvBuildOptions:
    """How the server builds environment images (the same options as
    `workbench environment build-local`'s)."""

    #: the folder of environment definitions; default: envs/ of the source checkout
    envs_dir: Path | None = None
    #: a CA bundle to trust inside the images (a site that re-signs TLS)
    extra_ca_bundle: Path | None = None
    #: a folder of wheels for pip (--find-links); torch comes only from here
    wheels_dir: Path | None = None
    pip_index_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvBuildOptions:
        def path(name: str) -> Path | None:
            return Path(env[name]) if env.get(name) else None

        return cls(
            envs_dir=path("WORKBENCH_ENVS_DIR"),
            extra_ca_bundle=path("WORKBENCH_EXTRA_CA_BUNDLE"),
            wheels_dir=path("WORKBENCH_ENV_WHEELS"),
            pip_index_url=env.get("WORKBENCH_PIP_INDEX_URL") or None,
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str = ""
    #: the artifact store's folder; default ``home/store``. A team shares one.
    store_dir: Path | None = None
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    #: each user's quotas where an admin set none (WORKBENCH_QUOTA_*)
    quotas: QuotaDefaults = field(default_factory=QuotaDefaults)
    #: where runs happen: "docker" ("auto" is the same: no engine answering means 503s,
    #: never a fallback), "local" (single-user mode, no isolation: only when set) or "fake"
    backend: str = "auto"
    workspace_limits: WorkspaceLimits = field(default_factory=WorkspaceLimits)
    #: the URL a workspace container uses to reach this server's REST API
    workspace_api_url: str = ""
    #: let workspaces clone file:// git URLs (tests; never on a shared server)
    allow_file_git_urls: bool = False
    env_build: EnvBuildOptions = field(default_factory=EnvBuildOptions)
    #: what training runs may use together on this server (WORKBENCH_TRAINING_*); the
    #: pool of every job whose container asks for CPUs, memory or GPUs
    training: TrainingLimits = field(default_factory=TrainingLimits)
    #: this server's name among the servers of one registry (WORKBENCH_INSTANCE): recorded
    #: on the jobs it claims and the containers it starts; default: the home folder. A
    #: restarted server must keep it to take its jobs up.
    instance_name: str = ""
    #: convert every newly registered version that declares a signature to all the formats
    #: its native model converts to (WORKBENCH_AUTO_CONVERT=1); off by default: a
    #: conversion takes a CPU for seconds to minutes per version
    auto_convert: bool = False
    #: training runs reach beyond this host (WORKBENCH_TRAINING_OUTBOUND=1); off by default:
    #: a run reads its dataset and base model from its mounts, its image holds its
    #: packages, and a user's code has no business in the team's network (or the cloud's
    #: metadata address). They never reach other runs either way
    training_outbound: bool = False
    #: workspaces reach beyond this host (WORKBENCH_WORKSPACE_OUTBOUND, on by default:
    #: notebooks install packages and fetch data; 0 keeps them to this host: the
    #: Workbench API and their proxy). They never reach other runs either way
    workspace_outbound: bool = True

    @property
    def instance(self) -> str:
        return self.instance_name or str(self.home)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.home / 'registry.db'}")

    @property
    def store_root(self) -> Path:
        return (
            Path(self.store_dir).expanduser().resolve() if self.store_dir else self.home / "store"
        )

    @property
    def secret_file(self) -> Path:
        """A random key of this installation (signs workspace JupyterLab tokens)."""
        return self.home / "secret.key"

    def load_secret(self) -> bytes:
        """The installation's secret key, created (mode 0600) on first use."""
        path = self.secret_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return path.read_bytes()
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        return path.read_bytes()

    @property
    def credentials_file(self) -> Path:
        """Where ``workbench lab``/``workbench login`` keep the URL and token for the CLI."""
        return self.home / "credentials.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The one way settings are made: the ``WORKBENCH_*`` variables of ``environ``
        (default: this process's), each unset one keeping its default, then ``overrides``
        (the server's traits a user set) over them."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "home": Path(env.get("WORKBENCH_HOME") or DEFAULT_HOME),
            "db_url": env.get("WORKBENCH_DB_URL", ""),
            "store_dir": Path(env["WORKBENCH_STORE"]) if env.get("WORKBENCH_STORE") else None,
            "backend": env.get("WORKBENCH_BACKEND", "auto"),
            "quotas": QuotaDefaults.from_env(env),
            "workspace_api_url": env.get("WORKBENCH_WORKSPACE_API_URL", ""),
            "env_build": EnvBuildOptions.from_env(env),
            "training": TrainingLimits.from_env(env),
            "instance_name": env.get("WORKBENCH_INSTANCE", ""),
            "auto_convert": flag(env, "WORKBENCH_AUTO_CONVERT", False),
            "training_outbound": flag(env, "WORKBENCH_TRAINING_OUTBOUND", False),
            "workspace_outbound": flag(env, "WORKBENCH_WORKSPACE_OUTBOUND", True),
        }
        return cls(**(values | overrides))


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable: 1/true/yes or 0/false/no (any case); unset or empty: ``default``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise InvalidInput(f"{name}={raw!r} is not a yes/no value: use 1 or 0.", variable=name)
