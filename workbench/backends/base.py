"""The backend contract: where workspaces, training tasks, builds and services run.

A backend runs an image with a command, mounts, environment, ports and limits; stops,
starts again (files kept), removes; reports status and logs; and manages images (build
from a folder with a Dockerfile, load from a ``docker save`` tar, save to a tar, import a
root filesystem tar, inspect, tag, remove). Every run carries labels, so what Workbench started
can be listed and reconciled after a restart. Where :attr:`Backend.execs`, it also runs
commands in a running run and reads a folder of it (a workspace's kernels).

It also keeps replicated services (a service's replicas of the model server): N replicas
of one run, each answering a health route, changed by a rolling update that keeps the old
replicas until the new ones answer and keeps all of them when a new one fails
(:meth:`Backend.deploy_replicated`). :mod:`workbench.backends.replicated` implements that
with single runs for every backend here; an engine that places, restarts and reschedules
replicas itself (Swarm's services) implements it with those, and sets
:attr:`Backend.heals_replicas`, so that no watch of Workbench's is needed.

The methods are synchronous (services call them from a worker thread); long operations
(builds, log following) yield lines as they come. Implementations convert their
library's exceptions into the :class:`BackendError` tree at the boundary.

- ``docker``: the Docker Engine through the docker SDK (isolation, limits enforced);
- ``local``: plain processes, for machines without Docker (no isolation: documented);
- ``fake``: in memory, for fast unit tests of the services above.
"""

from __future__ import annotations

import builtins
import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal

from workbench.errors import BuildFailed, ImageNotFound, RunNotFound, Unsupported

#: every run Workbench starts carries this label (value: the Workbench home it belongs to)
MANAGED_LABEL = "workbench.managed"
#: the most characters of one output line a backend hands on (a run's code may print a
#: 100 MiB line: the rest is dropped as it streams, never held; see :func:`cut_line`)
LINE_MAX_CHARS = 16 * 1024


def cut_line(kept: str, dropped: int) -> str:
    """A line of which ``dropped`` characters past :data:`LINE_MAX_CHARS` were left out,
    saying so."""
    return f"{kept} [... line cut: {dropped} more characters]" if dropped else kept


class LineSplitter:
    """Splits text as it comes into lines of at most :data:`LINE_MAX_CHARS` (what passes
    is dropped as it comes, counted, and said at the line's end: memory stays bounded and
    each piece is looked at once, however long a line a run prints)."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._kept = self._dropped = 0

    def feed(self, text: str) -> Iterator[str]:
        """The lines ``text`` ends (without their ``\n``, nor a ``\r`` before it)."""
        *ended, rest = text.split("\n")
        for part in ended:
            self._add(part)
            yield self._take()
        self._add(rest)

    def close(self) -> Iterator[str]:
        """The last line, if the text did not end with one."""
        if self._kept or self._dropped:
            yield self._take()

    def _add(self, part: str) -> None:
        room = LINE_MAX_CHARS - self._kept
        if len(part) > room:
            self._dropped += len(part) - room
            part = part[:room]
        if part:
            self._pending.append(part)
            self._kept += len(part)

    def _take(self) -> str:
        line = cut_line("".join(self._pending).removesuffix("\r"), self._dropped)
        self._pending, self._kept, self._dropped = [], 0, 0
        return line


#: the most of a command's output :meth:`Backend.exec_run` keeps (its end)
EXEC_OUTPUT_MAX_BYTES = 64 * 1024

#: :attr:`RunSpec.network` for a run with no network at all
NO_NETWORK: Literal["none"] = "none"


class RunState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"  # stopped or finished; exit_code says how


@dataclass(frozen=True)
class Mount:
    source: Path  # a folder on the host
    target: str  # an absolute path inside the run
    read_only: bool = False

    def __post_init__(self) -> None:
        if not self.target.startswith("/"):
            raise ValueError(f"mount target must be absolute, got {self.target!r}")


@dataclass(frozen=True)
class Limits:
    cpus: float = 1.0
    memory_mb: int = 2048
    pids: int = 512
    gpus: int = 0

    def __post_init__(self) -> None:
        if self.cpus <= 0 or self.memory_mb < 16 or self.pids < 16 or self.gpus < 0:
            raise ValueError(f"invalid limits {self}")


@dataclass(frozen=True)
class Network:
    """A network of Workbench's own for the runs of one purpose (jobs, workspaces, one
    service's replicas), made by the backend on first use and marked as Workbench's.

    Runs on it never reach one another (the engine's inter-container traffic is off on
    it), nor runs on any other network; this host reaches them at their address. With
    ``outbound`` False it is internal: nothing beyond this host is reached (the engine
    then publishes no ports for it either: this host uses the run's address).
    ``remove_when_empty``: the backend removes it with its last run (a service's network:
    each takes one of the engine's address pools, which are few); shared networks stay,
    as another run may be joining them at that moment. ``owner``: the Workbench instance
    that alone uses it (a service's network), set as its ``workbench.managed`` label
    (else ``true``): a network left behind says whose it was.
    """

    name: str
    outbound: bool = False
    remove_when_empty: bool = False
    owner: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", self.name) or self.name in (
            "bridge",
            "host",
            "none",
            "default",
        ):
            raise ValueError(f"invalid network name {self.name!r}")


@dataclass(frozen=True)
class RunSpec:
    name: str  # unique among runs; also the container name
    image: str
    command: tuple[str, ...] | None = None  # None: the image's own command
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    #: container port -> host port on 127.0.0.1 (0: any free port)
    ports: Mapping[int, int] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    labels: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    #: extra names in the run's /etc/hosts: name -> address
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    #: started again by the engine when it exits with an error (not when it is stopped or
    #: killed through the engine); backends without that ignore it
    restart_on_failure: bool = False
    #: where the run's traffic goes: ``None`` the engine's default network (Docker's shared
    #: bridge, where every container reaches every other: for tools and tests; every kind
    #: of Workbench chooses), :data:`NO_NETWORK` none at all (only its own loopback), or a
    #: :class:`Network` Workbench manages. The local backend ignores it (processes share
    #: the host's network)
    network: Network | Literal["none"] | None = None
    #: the run's root file system is read-only: it writes only to its writable mounts and
    #: its ``tmpfs``; its ``HOME``, unless ``env`` sets one, is its first tmpfs. The local
    #: backend ignores it (file modes are a process's only limit there)
    read_only_root: bool = False
    #: in-memory folders of the run: absolute path -> size in MiB (counted in its memory)
    tmpfs: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for target, size_mb in self.tmpfs.items():
            if not target.startswith("/") or size_mb < 1:
                raise ValueError(f"tmpfs {target!r} needs an absolute path and a size >= 1 MiB")


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    state: RunState
    exit_code: int | None
    #: container port -> the host port it is published on
    ports: Mapping[int, int]
    labels: Mapping[str, str]
    oom_killed: bool = False
    #: how many times the engine started it again (``restart_on_failure``)
    restarts: int = 0
    #: its own address on its network, reachable from this host (Docker: the container's
    #: IP on its bridge network); None when it is not running or the backend has none
    address: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: Mapping[str, str]
    exposed_ports: tuple[int, ...]
    size: int
    #: the image's own ``LABEL``s (Docker merges them into its containers' labels)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthCheck:
    """How a replica says it is ready: ``GET route`` on its server's port answers 200."""

    route: str
    #: a new replica not ready this long after its start fails the deploy
    ready_timeout_s: float = 120
    #: a replica a deploy would keep that does not answer within this long is replaced
    kept_grace_s: float = 3.0


@dataclass(frozen=True)
class ReplicatedSpec:
    """A replicated service: ``replicas`` runs of ``run``. ``run.name`` names the service
    (a replica is named after it, its slot and a random suffix) and ``run.labels`` find its
    replicas; ``port`` is the replica's server port that the data plane reaches."""

    run: RunSpec
    replicas: int
    port: int
    health: HealthCheck

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"replicas must be 0 or more, got {self.replicas}")


@dataclass(frozen=True)
class Replica:
    """One replica of a replicated service: its slot (0 to replicas - 1), its run, and
    ``host:port`` where the data plane reaches its server while it runs (else None)."""

    slot: int
    run: RunInfo
    target: str | None


def _no_log(line: str) -> None:
    return None


def _no_check() -> None:
    return None


def _no_progress(done: float) -> None:
    return None


@dataclass(frozen=True)
class Rollout:
    """What a deploy of a replicated service tells its caller, and asks of it."""

    #: point the traffic at these targets (``host:port``): called once the replicas kept
    #: answer, before the others go, so that no request goes to a replica being removed
    route: Callable[[list[str]], None]
    log: Callable[[str], None] = _no_log
    #: raises to stop the deploy (its job was cancelled); what it started is removed
    check: Callable[[], None] = _no_check
    #: the share of the replicas ready (0 to 1)
    progress: Callable[[float], None] = _no_progress
    #: every replica replaced by a new one
    restart: bool = False
    #: the slots whose replicas are replaced (hung ones)
    replace: frozenset[int] = frozenset()


@dataclass(frozen=True)
class NodeInfo:
    """A machine runs are placed on: a swarm's node, or the one engine or host of a backend
    without nodes."""

    id: str
    #: its host name
    name: str
    #: ``manager`` or ``worker`` (a swarm's), ``engine`` (a Docker Engine alone), ``host``
    role: str
    #: ``ready``, ``down``, ``disconnected`` or ``unknown``
    state: str
    #: ``active`` (takes work), ``pause`` (keeps what runs, takes nothing new) or ``drain``
    #: (what runs moves elsewhere)
    availability: str
    #: where the other nodes reach it (None: no other node)
    address: str | None
    labels: Mapping[str, str]
    cpus: float
    memory_bytes: int
    gpus: int
    #: what runs it (``Docker 20.10.24``)
    engine: str
    #: the labels of each run and replica of Workbench's running on it
    runs: tuple[Mapping[str, str], ...] = ()


class Backend(ABC):
    name: ClassVar[str]
    #: a run sees its mounts at their targets (containers); False: at their host paths
    #: (plain processes), so paths handed to a run must be the host's
    isolates_files: ClassVar[bool] = True
    #: a run is boxed in (a container): it cannot read the server's files or reach other
    #: users' runs. False (plain processes of the server's user): the kinds that load
    #: files a user brought (model imports, conversions, benchmarks) refuse to run there
    isolates_runs: ClassVar[bool] = True
    #: the backend pulls images from registries (:meth:`pull_image`)
    pulls_images: ClassVar[bool] = False
    #: its images are container images, which ``docker save`` tars hold: it loads and
    #: saves them (:meth:`load_image`, :meth:`save_image`) and tags them
    saves_images: ClassVar[bool] = True
    #: it runs commands in a running run and reads its files (:meth:`exec_run`,
    #: :meth:`exec_start`, :meth:`exec_exit_code`, :meth:`read_files`)
    execs: ClassVar[bool] = False
    #: the engine itself keeps a replicated service's replicas at their number and healthy
    #: (restarts, reschedules); False: Workbench's services watch replaces the gone and the
    #: hung ones (:meth:`workbench.deployments.service.DeploymentService.heal`)
    heals_replicas: ClassVar[bool] = False

    def host_gateway(self) -> str | None:
        """The address at which runs reach services of the host that listen there, when
        it is not the host's own loopback (Docker's bridge gateway); None when runs share
        the host's network."""
        return None

    def _run_not_found(self, run: str) -> RunNotFound:
        """The error for ``run`` (an id or a name) that this backend does not have."""
        return RunNotFound(
            f"run {run!r} does not exist on the {self.name} backend; list the runs to find it.",
            run=run,
        )

    def _image_not_found(self, ref: str, advice: str) -> ImageNotFound:
        """The error for image ``ref`` (a tag or an id) that this backend does not have;
        ``advice`` says how to get it ("build it first")."""
        return ImageNotFound(
            f"image {ref!r} does not exist on the {self.name} backend; {advice}.", image=ref
        )

    # --- runs -----------------------------------------------------------------------------

    @abstractmethod
    def run(self, spec: RunSpec) -> RunInfo:
        """Create and start a run; on failure nothing is left behind."""

    @abstractmethod
    def start(self, run_id: str) -> RunInfo:
        """Start a stopped run again (its files are kept)."""

    @abstractmethod
    def stop(self, run_id: str, timeout: float = 10) -> RunInfo:
        """Stop a run (SIGTERM, then SIGKILL after ``timeout`` seconds); keep it."""

    @abstractmethod
    def remove(self, run_id: str) -> None:
        """Remove a run (stopping it first); removing a missing run is not an error."""

    @abstractmethod
    def status(self, run_id: str) -> RunInfo:
        """The run's state; :class:`RunNotFound` if it does not exist."""

    @abstractmethod
    def logs(self, run_id: str, *, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        """The run's output lines (stdout and stderr), following until it ends if asked."""

    @abstractmethod
    def list(self, labels: Mapping[str, str] | None = None) -> list[RunInfo]:
        """Runs carrying all of ``labels`` (all managed runs when None)."""

    # --- replicated services ----------------------------------------------------------------

    @abstractmethod
    def deploy_replicated(self, spec: ReplicatedSpec, rollout: Rollout) -> builtins.list[Replica]:
        """Bring the service to ``spec`` (creating it): start the replicas missing and
        those to replace (all with :attr:`Rollout.restart`; the slots in
        :attr:`Rollout.replace`; those that do not answer within
        :attr:`HealthCheck.kept_grace_s`), wait until every replica kept answers,
        :attr:`Rollout.route` to them, then remove the others. An engine that heals its own
        replicas (:attr:`heals_replicas`) replaces a dead or hung one itself and leaves
        ``replace`` aside. A replica that exits or is not ready in time fails the deploy
        (:class:`JobFailed`, with its last log lines): what it started is removed and the
        replicas before it serve on (a rollback). The replicas it keeps, by slot."""

    @abstractmethod
    def replicas(self, labels: Mapping[str, str], port: int) -> builtins.list[Replica]:
        """The replicas of the services whose run carries all of ``labels``, by slot, each
        with its target on ``port``."""

    @abstractmethod
    def answers(self, replica: Replica, route: str, within: float = 0.0) -> bool:
        """Whether ``replica`` answers 200 on ``route``: one try, or tries until ``within``
        seconds have passed. One that is not running does not."""

    @abstractmethod
    def remove_replicated(self, labels: Mapping[str, str]) -> None:
        """Remove the replicas (and the service) whose run carries all of ``labels``."""

    # --- nodes ----------------------------------------------------------------------------

    def nodes(self) -> builtins.list[NodeInfo]:
        """The machines runs are placed on, each with the runs on it: here one, this host."""
        return [
            NodeInfo(
                id=socket.gethostname(),
                name=socket.gethostname(),
                role="host",
                state="ready",
                availability="active",
                address=None,
                labels={},
                cpus=float(os.cpu_count() or 1),
                memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                gpus=0,
                engine=f"the {self.name} backend",
                runs=tuple(run.labels for run in self.list() if run.state is RunState.RUNNING),
            )
        ]

    def set_availability(self, node_id: str, availability: str) -> NodeInfo:
        """Make node ``node_id`` take work (``active``), keep what runs but take nothing new
        (``pause``), or move what runs elsewhere (``drain``); the node then.
        :class:`Unsupported` where there is no other node to move work to."""
        raise Unsupported(
            f"the {self.name} backend runs everything on one machine: there is no other node "
            "to move its work to. Draining a node needs the swarm backend (docs/cluster.md).",
            backend=self.name,
        )

    # --- images ---------------------------------------------------------------------------

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: str = "Dockerfile",
        build_args: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Build ``context`` into ``tag``, yielding log lines; :class:`BuildFailed` at the end
        of the iteration if it fails (with the last lines in the message), or at its start
        if ``context`` lacks what this backend builds from (see :meth:`_check_context`)."""
        self._check_context(context, dockerfile, tag)
        yield from self._build(context, tag, dockerfile, dict(build_args or {}))

    def _check_context(self, context: Path, dockerfile: str, tag: str) -> None:
        """:class:`BuildFailed` unless ``context`` holds ``dockerfile``; a backend that
        builds from something else checks for that instead."""
        path = context / dockerfile
        if not path.is_file():
            raise BuildFailed(
                f"cannot build {tag}: {path} does not exist; "
                "the build context must hold the Dockerfile.",
                tag=tag,
            )

    @abstractmethod
    def _build(
        self, context: Path, tag: str, dockerfile: str, build_args: dict[str, str]
    ) -> Iterator[str]:
        """The build itself, once :meth:`_check_context` has passed (see :meth:`build_image`)."""

    @abstractmethod
    def import_rootfs(self, tar: Path, tag: str) -> ImageInfo:
        """Make an image from a root filesystem tar (like ``docker import``)."""

    @abstractmethod
    def load_image(self, tar: Path) -> builtins.list[str]:
        """Load a ``docker save`` tar *without* the tags written in it (they could name
        any image, a preset's included: the caller tags what it loaded under names of its
        own); the ids of the images loaded (``sha256:...``)."""

    @abstractmethod
    def save_image(self, ref: str, dest: Path) -> None:
        """Write ``ref`` as a ``docker save`` tar to ``dest`` (atomically)."""

    @abstractmethod
    def inspect_image(self, ref: str) -> ImageInfo:
        """The image's config; :class:`ImageNotFound` if there is none."""

    @abstractmethod
    def tag_image(self, ref: str, tag: str) -> None:
        """Give the image ``ref`` (a tag or an id) the tag ``tag`` as well (``name`` means
        ``name:latest``); a tag another image had moves to this one. :class:`ImageNotFound`
        if there is no such image."""

    @abstractmethod
    def remove_image(self, ref: str) -> None:
        """Remove an image; removing a missing image is not an error."""

    def pull_image(self, reference: str, progress: Callable[[str], None]) -> str:
        """Pull ``reference`` from its registry, writing the pull's status lines; the
        reference of the pulled image (``repo:tag`` or ``repo@sha256:...``).
        :class:`Unsupported` where :attr:`pulls_images` is False."""
        self.require_pull()
        raise NotImplementedError

    # --- commands in a running run (where :attr:`execs`) -----------------------------------

    def exec_run(self, run_id: str, argv: Sequence[str], *, timeout: float = 60) -> tuple[int, str]:
        """Run ``argv`` in the running run ``run_id``, as its own user and inside its
        limits, and wait for it: its exit code and the end of its output (stdout and
        stderr, the last :data:`EXEC_OUTPUT_MAX_BYTES`: the run is hostile and may print
        without end). :class:`BackendError` if it has not ended within ``timeout`` seconds
        (it is left running); :class:`RunNotFound` if the run is gone."""
        self.require_exec()
        raise NotImplementedError

    def exec_start(
        self, run_id: str, argv: Sequence[str], *, env: Mapping[str, str], workdir: str
    ) -> str:
        """Start ``argv`` in the running run ``run_id`` as :meth:`exec_run` does, with
        ``env`` added to the run's environment, in ``workdir``, without waiting: the id to
        ask :meth:`exec_exit_code` with. :class:`RunNotFound` if the run is gone."""
        self.require_exec()
        raise NotImplementedError

    def exec_exit_code(self, exec_id: str) -> int | None:
        """The exit code of what :meth:`exec_start` started, None while it runs;
        :class:`RunNotFound` once it is gone (with its run)."""
        self.require_exec()
        raise NotImplementedError

    def read_files(self, run_id: str, folder: str, max_bytes: int = 1 << 20) -> dict[str, bytes]:
        """The regular files directly in ``folder`` of the run ``run_id`` (by name), none
        if there is no such folder. What a run wrote is hostile: links and other kinds of
        file are left out, and :class:`BackendError` refuses a folder of more than
        ``max_bytes``. :class:`RunNotFound` if the run is gone."""
        self.require_exec()
        raise NotImplementedError

    def require_exec(self) -> None:
        """:class:`Unsupported`, with what to do instead, unless this backend execs."""
        if self.execs:
            return
        raise Unsupported(
            f"running a command in a run needs a Docker Engine; this server's backend is "
            f"{self.name!r}. Start the server with the docker backend (WORKBENCH_BACKEND="
            "docker) to run a notebook's kernel in a workspace.",
            backend=self.name,
        )

    def require_pull(self) -> None:
        """:class:`Unsupported`, with what to do instead, unless this backend pulls."""
        if self.pulls_images:
            return
        raise Unsupported(
            f"pulling an image needs a Docker Engine; this server's backend is {self.name!r}. "
            "Upload the image as a docker save tar instead (make one with `docker save -o "
            "NAME.tar IMAGE:TAG` on a machine that can pull it).",
            backend=self.name,
        )


@dataclass(eq=False, kw_only=True)
class OnBackend:
    """A part of Workbench that runs things on the backend, which it is given as a
    factory: the backend is chosen on first use (Docker may not be up when a server
    starts). Subclasses are dataclasses; ``backend_factory`` is a keyword of theirs."""

    #: makes the backend (the same one at each call)
    backend_factory: Callable[[], Backend] = field(repr=False)

    @property
    def backend(self) -> Backend:
        return self.backend_factory()
