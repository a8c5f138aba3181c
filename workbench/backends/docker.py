"""The ``docker`` backend: runs and images on a Docker Engine, through the docker SDK.

Every container it creates is locked down the same way, whatever the caller asks:

- ``cap_drop=["ALL"]`` and no capability added back (:attr:`DockerBackend.cap_add` is
  empty). JupyterLab, Python, pip installing into a user-owned environment and ordinary
  file work need none. What it rules out: ``apt-get`` at run time (it switches to the
  ``_apt`` user: SETUID/SETGID), ``chown``/``su``/``sudo``, binding ports below 1024, and
  root writing into folders it does not own (DAC_OVERRIDE). Images install their system
  packages at build time, where these limits do not apply, and mounted folders must be
  owned by the run's user. A deployment that needs more subclasses and sets ``cap_add``.
- ``security_opt=["no-new-privileges"]`` (setuid binaries do not raise privileges), never
  privileged, and ``init=True`` (a small init as PID 1 forwards SIGTERM and reaps zombies).
- The Docker socket never goes in: a mount whose source is the socket, or a folder that
  holds it (``/``, ``/run``, ``/var/run``, ...), is refused with :class:`InvalidInput`.
- Networks (:attr:`RunSpec.network`): none at all (``network_mode="none"``), or a bridge
  network of Workbench's own, made on first use with inter-container traffic off
  (``com.docker.network.bridge.enable_icc=false``: no run reaches another on it, and
  Docker's isolation rules keep bridges apart) and internal unless its runs may reach
  beyond the host. A network of that name that is not such is refused, never joined.
  Only the engine's default bridge (``network=None``, tools and tests) lets containers
  talk. What a run on any bridge still reaches: this host's own addresses (the engine
  filters forwarding, not the host's input), so services of the host that must not be
  reached listen on 127.0.0.1.
- A read-only root (``read_only=True``) with size-limited tmpfs folders (``exec`` allowed:
  JIT compilers write code there), HOME on the first of them.
- Ports are published on 127.0.0.1 only (none on an internal network or without one: the
  host reaches such a run at its address); limits set memory with no swap beyond it
  (``memswap_limit == mem_limit``), CPUs (``nano_cpus``), processes (``pids_limit``), and
  GPUs through ``device_requests`` when ``limits.gpus > 0``.

The SDK's exceptions become the :class:`BackendError` tree in :func:`engine_errors`.

Over 600 lines because it implements the whole backend contract on the Docker Engine,
with the lock-down every container gets, the engine's errors mapped to the backend's and
the image calls; one backend is one module, as local.py is.
"""

from __future__ import annotations

import builtins
import codecs
import io
import ipaddress
import math
import os
import posixpath
import re
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.errors
import requests
from docker.types import DeviceRequest, LogConfig
from docker.utils import parse_repository_tag

from workbench.backends.base import (
    EXEC_OUTPUT_MAX_BYTES,
    MANAGED_LABEL,
    NO_NETWORK,
    ImageInfo,
    LineSplitter,
    Mount,
    Network,
    NodeInfo,
    RunInfo,
    RunSpec,
    RunState,
)
from workbench.backends.replicated import RunReplicas
from workbench.errors import (
    BackendError,
    BackendUnavailable,
    BuildFailed,
    ImageNotFound,
    InvalidInput,
    RunNotFound,
)
from workbench.images import RESERVED_LABEL_PREFIX, untagged_stream

DOCKER_SOCKETS = (Path("/var/run/docker.sock"), Path("/run/docker.sock"))
_STATES = {
    "created": RunState.CREATED,
    "running": RunState.RUNNING,
    "paused": RunState.RUNNING,
    "restarting": RunState.RUNNING,
}
_HOW_TO_START = (
    "Start it with scripts/docker (installs Debian's docker.io if needed and starts "
    "dockerd), or run `dockerd &` as root. On a single-user machine without Docker, choose "
    "the local backend explicitly (WORKBENCH_BACKEND=local): it runs everything as your own "
    "processes, without isolation, and refuses model imports, conversions and benchmarks."
)
_BUILD_TAIL = 20
#: the bridge driver's option that lets containers on one network talk to each other
_ICC = "com.docker.network.bridge.enable_icc"
#: on a network Workbench made: "true" when it goes with its last container
REMOVE_WHEN_EMPTY = "workbench.network.remove-when-empty"


class DockerBackend(RunReplicas):
    """Runs are containers and images are the engine's images.

    Build one with :meth:`from_env`; a run's id is its container id, and every method
    taking a ``run_id`` also accepts the run's name.
    """

    name = "docker"
    pulls_images = True
    execs = True
    #: capabilities added back after dropping them all (none: see the module docstring)
    cap_add: ClassVar[tuple[str, ...]] = ()
    #: seconds :meth:`remove` lets a running container stop before killing it
    remove_timeout: ClassVar[float] = 10

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api
        host = os.environ.get("DOCKER_HOST", "")
        custom = (Path(host.removeprefix("unix://")),) if host.startswith("unix://") else ()
        #: what a mount must never expose: the well-known sockets and the one in use
        self.sockets: tuple[Path, ...] = (*DOCKER_SOCKETS, *custom)
        #: image id -> the labels the image itself carries (:meth:`_image_labels`)
        self._labels_of_images: dict[str, Mapping[str, str]] = {}
        #: one network made at a time (two runs of one purpose start together)
        self._networks_lock = threading.Lock()

    @classmethod
    def from_env(cls, *, timeout: int = 120) -> DockerBackend:
        """Connect like the docker CLI does (``DOCKER_HOST``, else the local socket) and
        check that the engine answers; :class:`BackendUnavailable` if it does not."""
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise BackendUnavailable(
                f"No Docker Engine answers at {where} ({exc}). {_HOW_TO_START}", host=where
            ) from exc
        return cls(client)

    # --- runs -----------------------------------------------------------------------------

    def run(self, spec: RunSpec) -> RunInfo:
        for mount in spec.mounts:
            check_mount(mount, self.sockets)
        network = spec.network if isinstance(spec.network, Network) else None
        if network is not None:
            self._ensure_network(network)
        try:
            with engine_errors(image=spec.image):
                container = self._client.containers.create(**self._create_args(spec))
            try:
                with engine_errors(run=spec.name):
                    container.start()
            except BaseException:
                self._discard(container.id)
                raise
        except BaseException:
            if network is not None:
                self._drop_if_empty(network.name)
            raise
        return self.status(container.id)

    def _ensure_network(self, network: Network, driver: str = "bridge") -> None:
        """Make ``network`` if the engine has none of that name: a bridge with its
        containers kept apart, or Swarm's ``overlay`` for a service's tasks on any node;
        refuse one that exists without the isolation asked (made by someone else, or with
        other settings)."""
        options = {_ICC: "false"} if driver == "bridge" else {}
        with self._networks_lock, engine_errors():
            try:
                attrs = self._api.inspect_network(network.name)
            except docker.errors.NotFound:
                self._api.create_network(
                    network.name,
                    driver=driver,
                    internal=not network.outbound,
                    options=options,
                    labels={
                        MANAGED_LABEL: network.owner or "true",
                        REMOVE_WHEN_EMPTY: str(network.remove_when_empty).lower(),
                    },
                    check_duplicate=True,
                )
                return
        found, labels = attrs.get("Options") or {}, attrs.get("Labels") or {}
        if (
            attrs.get("Driver") != driver
            or bool(attrs.get("Internal")) == network.outbound
            or any(found.get(key) != value for key, value in options.items())
            or MANAGED_LABEL not in labels
        ):
            raise BackendError(
                f"Docker network {network.name!r} exists but is not the one Workbench makes "
                f"(a {driver}, {'with' if network.outbound else 'without'} outbound access, "
                f"{'containers kept apart, ' if options else ''}labelled workbench.managed): "
                f"a run joining it could reach others. Remove it (`docker network rm "
                f"{network.name}`) once no container uses it, and run again; a changed "
                "outbound setting takes effect that way too.",
                network=network.name,
            )

    def _drop_if_empty(self, name: str) -> None:
        """Remove the network ``name`` if it goes with its last container and has none;
        best effort (a run joining it meanwhile keeps it)."""
        with self._networks_lock, suppress(docker.errors.APIError):
            attrs = self._api.inspect_network(name)
            labels = attrs.get("Labels") or {}
            if labels.get(REMOVE_WHEN_EMPTY) == "true" and not attrs.get("Containers"):
                self._api.remove_network(name)

    def host_gateway(self) -> str:
        """The host's address on Docker's default bridge: containers reach the host there."""
        try:
            config = self._client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        except (docker.errors.DockerException, KeyError, IndexError) as exc:
            raise BackendError(f"Docker's bridge network is not usable: {exc}") from exc
        if config.get("Gateway"):
            return str(config["Gateway"])
        return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))

    def _create_args(self, spec: RunSpec) -> dict[str, Any]:
        limits = spec.limits
        memory = f"{limits.memory_mb}m"
        args: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command) if spec.command is not None else None,
            "name": spec.name,
            "labels": {MANAGED_LABEL: "true", **spec.labels},
            "environment": dict(spec.env),
            "volumes": {
                mount_source(m): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                for m in spec.mounts
            },
            "ports": {
                f"{inside}/tcp": ("127.0.0.1", host) if host else ("127.0.0.1",)
                for inside, host in spec.ports.items()
            },
            "working_dir": spec.workdir,
            "extra_hosts": dict(spec.extra_hosts) or None,
            "user": spec.user,
            "mem_limit": memory,
            "memswap_limit": memory,
            "nano_cpus": round(limits.cpus * 1e9),
            "pids_limit": limits.pids,
            "cap_drop": ["ALL"],
            "cap_add": list(self.cap_add) or None,
            "security_opt": ["no-new-privileges"],
            "privileged": False,
            "init": True,
            # the engine's own copy of the output, on the host's disk: rotated, so a run
            # that prints without end fills no disk (its job's log is capped the same way)
            "log_config": LogConfig(
                type=LogConfig.types.JSON, config={"max-size": "64m", "max-file": "2"}
            ),
        }
        args.update(_network_args(spec))
        if spec.read_only_root:
            args["read_only"] = True
            if spec.tmpfs and "HOME" not in spec.env:
                args["environment"]["HOME"] = next(iter(spec.tmpfs))
        if spec.tmpfs:
            args["tmpfs"] = {
                target: f"rw,exec,nosuid,nodev,size={size_mb}m,mode=1777"
                for target, size_mb in spec.tmpfs.items()
            }
        if limits.gpus > 0:
            args["device_requests"] = [DeviceRequest(count=limits.gpus, capabilities=[["gpu"]])]
        if spec.restart_on_failure:
            args["restart_policy"] = {"Name": "on-failure", "MaximumRetryCount": 0}
        return {key: value for key, value in args.items() if value is not None}

    def _discard(self, container_id: str) -> None:
        """Remove a container that must not stay (its start failed); best effort."""
        with suppress(docker.errors.NotFound):
            self._api.remove_container(container_id, force=True, v=True)

    def start(self, run_id: str) -> RunInfo:
        with engine_errors(run=run_id):
            self._api.start(run_id)
        return self.status(run_id)

    def stop(self, run_id: str, timeout: float = 10) -> RunInfo:
        with engine_errors(run=run_id):
            self._api.stop(run_id, timeout=math.ceil(timeout))
        return self.status(run_id)

    def remove(self, run_id: str) -> None:
        try:
            info = self.status(run_id)
            with engine_errors(run=run_id):
                networks = _networks(self._api.inspect_container(info.id))
            if info.state is RunState.RUNNING:
                self.stop(run_id, timeout=self.remove_timeout)
            with engine_errors(run=run_id):
                self._api.remove_container(info.id, force=True, v=True)
        except RunNotFound:
            return
        for name in networks:
            self._drop_if_empty(name)

    def status(self, run_id: str) -> RunInfo:
        with engine_errors(run=run_id):
            attrs = self._api.inspect_container(run_id)
        return _run_info(attrs, self._image_labels(str(attrs.get("Image", ""))))

    def _image_labels(self, image_id: str) -> Mapping[str, str]:
        """The labels an image set itself (cached: an image id's labels never change)."""
        labels = self._labels_of_images.get(image_id)
        if labels is None:
            try:
                with engine_errors(image=image_id):
                    attrs = self._api.inspect_image(image_id)
            except ImageNotFound:  # removed while a container of it is kept
                return {}
            labels = dict((attrs.get("Config") or {}).get("Labels") or {})
            self._labels_of_images[image_id] = labels
        return labels

    def logs(self, run_id: str, *, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        with engine_errors(run=run_id):
            chunks = self._api.logs(
                run_id, stream=True, follow=follow, tail="all" if tail is None else tail
            )
        return follow_errors(split_lines(chunks), run_id)

    def list(self, labels: Mapping[str, str] | None = None) -> list[RunInfo]:
        wanted = [MANAGED_LABEL] if labels is None else [f"{k}={v}" for k, v in labels.items()]
        with engine_errors():
            found = self._api.containers(all=True, filters={"label": wanted})
        infos = []
        for summary in found:
            try:
                info = self.status(summary["Id"])
            except RunNotFound:  # removed since the listing
                continue
            # what the engine matched may be the image's labels, which Workbench did not set
            if labels is None or all(info.labels.get(k) == v for k, v in labels.items()):
                infos.append(info)
        return infos

    def nodes(self) -> builtins.list[NodeInfo]:
        """This engine, the one node, with the runs on it."""
        with engine_errors():
            info = self._api.info()
        labels = dict(item.partition("=")[::2] for item in info.get("Labels") or [])
        return [
            NodeInfo(
                id=str(info.get("ID") or info.get("Name")),
                name=str(info.get("Name")),
                role="engine",
                state="ready",
                availability="active",
                address=None,
                labels=labels,
                cpus=float(info.get("NCPU") or 0),
                memory_bytes=int(info.get("MemTotal") or 0),
                gpus=0,
                engine=f"Docker {info.get('ServerVersion', '')}".strip(),
                runs=tuple(run.labels for run in self.list() if run.state is RunState.RUNNING),
            )
        ]

    # --- commands in a running run --------------------------------------------------------

    def exec_run(self, run_id: str, argv: Sequence[str], *, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        output = bytearray()
        with engine_errors(run=run_id):
            exec_id = self._api.exec_create(run_id, list(argv))["Id"]
            chunks = self._api.exec_start(exec_id, stream=True)
            try:
                for chunk in chunks:
                    output += chunk
                    del output[:-EXEC_OUTPUT_MAX_BYTES]
                    if time.monotonic() > deadline:
                        break
            finally:
                chunks.close()
            state = self._api.exec_inspect(exec_id)
        if state.get("Running") or state.get("ExitCode") is None:
            raise BackendError(
                f"{argv[0]} in run {run_id} did not end within {timeout:g} s; it is left running.",
                run=run_id,
            )
        return int(state["ExitCode"]), output.decode(errors="replace")

    def exec_start(
        self, run_id: str, argv: Sequence[str], *, env: Mapping[str, str], workdir: str
    ) -> str:
        with engine_errors(run=run_id):
            exec_id = str(
                self._api.exec_create(run_id, list(argv), environment=dict(env), workdir=workdir)[
                    "Id"
                ]
            )
            self._api.exec_start(exec_id, detach=True)
        return exec_id

    def exec_exit_code(self, exec_id: str) -> int | None:
        with engine_errors(run=exec_id):
            state = self._api.exec_inspect(exec_id)
        if state.get("Running") or state.get("ExitCode") is None:
            return None
        return int(state["ExitCode"])

    def read_files(self, run_id: str, folder: str, max_bytes: int = 1 << 20) -> dict[str, bytes]:
        # no trailing "/" or "/.": the engine would then follow a folder that is a link
        folder = posixpath.normpath(folder)
        data = bytearray()
        try:
            with engine_errors(run=run_id):
                chunks, _ = self._api.get_archive(run_id, folder)
                try:
                    for chunk in chunks:
                        data += chunk
                        if len(data) > max_bytes:
                            raise BackendError(
                                f"{folder} of run {run_id} holds more than {max_bytes} bytes; "
                                "only a small folder is read.",
                                run=run_id,
                            )
                finally:
                    chunks.close()
        except RunNotFound:  # no such folder, or no such run
            self.status(run_id)  # RunNotFound if it is the run
            return {}
        base = posixpath.basename(folder)
        files = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar.getmembers():
                    parent, name = posixpath.split(member.name)
                    if member.isfile() and parent == base:
                        extracted = tar.extractfile(member)
                        if extracted is not None:
                            files[name] = extracted.read()
        except tarfile.TarError as exc:  # cut short: the run stopped meanwhile
            raise BackendError(
                f"reading {folder} of run {run_id} failed: {exc}", run=run_id
            ) from exc
        return files

    # --- images ---------------------------------------------------------------------------

    def _build(
        self, context: Path, tag: str, dockerfile: str, build_args: dict[str, str]
    ) -> Iterator[str]:
        last: deque[str] = deque(maxlen=_BUILD_TAIL)
        try:
            entries = self._api.build(
                path=str(context),
                tag=tag,
                dockerfile=dockerfile,
                buildargs=build_args,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for entry in entries:
                if "error" in entry:
                    raise _build_failed(tag, str(entry["error"]).strip(), last)
                for line in str(entry.get("stream", "")).splitlines():
                    if line.strip():
                        last.append(line)
                        yield line
        except docker.errors.APIError as exc:
            raise _build_failed(tag, str(exc.explanation or exc), last) from exc
        except requests.exceptions.ConnectionError as exc:
            raise BackendUnavailable(f"lost the Docker Engine while building {tag}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BackendError(f"building {tag} failed: {exc}", tag=tag) from exc

    def import_rootfs(self, tar: Path, tag: str) -> ImageInfo:
        _require_file(tar)
        repository, version = parse_repository_tag(tag)
        with engine_errors(image=tag):
            result = self._api.import_image_from_file(
                str(tar), repository=repository, tag=version or "latest"
            )
        error = _stream_error(str(result))
        if error:
            raise BackendError(f"Docker Engine could not import {tar} as {tag}: {error}", tag=tag)
        return self.inspect_image(tag)

    def load_image(self, tar: Path) -> builtins.list[str]:
        _require_file(tar)
        ids: list[str] = []
        with engine_errors():
            for entry in self._api.load_image(untagged_stream(tar)):
                if "error" in entry:
                    raise BackendError(f"Docker Engine could not load {tar}: {entry['error']}")
                for line in str(entry.get("stream", "")).splitlines():
                    match = re.match(r"Loaded image ID: (sha256:[0-9a-f]{64})", line)
                    if match:
                        ids.append(match.group(1))
        return ids

    def pull_image(self, reference: str, progress: Callable[[str], None]) -> str:
        repository, tag = parse_repository_tag(reference)
        tag = tag or "latest"
        ref = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
        try:
            _write_pull_progress(
                self._api.pull(repository, tag, stream=True, decode=True), progress
            )
        except docker.errors.NotFound as exc:
            raise ImageNotFound(
                f"The registry has no image {reference!r} ({exc.explanation}); check the name "
                "and tag.",
                image=reference,
            ) from exc
        except docker.errors.APIError as exc:
            raise BackendError(
                f"docker pull {reference} failed: {exc.explanation or exc}. The engine must "
                "reach the registry; where it cannot, upload a docker save tar instead.",
                image=reference,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise BackendUnavailable(f"Lost the Docker Engine while pulling {reference}.") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BackendError(f"docker pull {reference} failed: {exc}", image=reference) from exc
        return ref

    def save_image(self, ref: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, engine_errors(image=ref):
                for chunk in self._api.get_image(ref):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, dest)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise

    def inspect_image(self, ref: str) -> ImageInfo:
        with engine_errors(image=ref):
            attrs = self._api.inspect_image(ref)
        config = attrs.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or () if "=" in item)
        ports = {int(key.split("/", 1)[0]) for key in config.get("ExposedPorts") or {}}
        return ImageInfo(
            id=attrs["Id"],
            tags=tuple(attrs.get("RepoTags") or ()),
            entrypoint=_tuple_or_none(config.get("Entrypoint")),
            cmd=_tuple_or_none(config.get("Cmd")),
            env=env,
            exposed_ports=tuple(sorted(ports)),
            size=int(attrs.get("Size") or 0),
            labels=dict(config.get("Labels") or {}),
        )

    def tag_image(self, ref: str, tag: str) -> None:
        repository, version = parse_repository_tag(tag)
        with engine_errors(image=ref):
            self._api.tag(ref, repository, version or "latest")

    def remove_image(self, ref: str) -> None:
        try:
            with engine_errors(image=ref):
                self._api.remove_image(ref)
        except ImageNotFound:
            return


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def engine_errors(*, run: str | None = None, image: str | None = None) -> Iterator[None]:
    """Turn the SDK's exceptions into the backend's, naming the run or image concerned."""
    try:
        yield
    except docker.errors.NotFound as exc:
        if run is not None and not isinstance(exc, docker.errors.ImageNotFound):
            raise RunNotFound(
                f"run {run!r} does not exist on this Docker Engine; list the runs to find it.",
                run=run,
            ) from exc
        raise ImageNotFound(
            f"image {image or ''!r} does not exist on this Docker Engine; build, load or "
            "import it first (no registry is pulled from).",
            image=image or "",
        ) from exc
    except docker.errors.APIError as exc:
        raise BackendError(
            f"Docker Engine refused: {exc.explanation or exc}", status=exc.status_code
        ) from exc
    except requests.exceptions.ConnectionError as exc:
        raise BackendUnavailable(f"lost the Docker Engine ({exc}). {_HOW_TO_START}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise BackendError(f"Docker Engine call failed: {exc}") from exc


def mount_source(mount: Mount) -> str:
    """The folder a mount gives the run: its source's real path, once the source itself is
    no link (a link left in the store by a run could point anywhere on the host; the
    folders Workbench mounts are real folders)."""
    source = Path(os.path.abspath(mount.source))
    if source.is_symlink():
        raise InvalidInput(
            f"mount source {mount.source} is a symbolic link; only real folders are mounted "
            "(a link may point anywhere on the host).",
            source=str(mount.source),
        )
    return str(source.parent.resolve() / source.name)


def check_mount(mount: Mount, sockets: Iterable[Path]) -> None:
    source = Path(mount_source(mount))
    for socket in sockets:
        for path in {socket, socket.resolve()}:
            if source == path or source in path.parents:
                raise InvalidInput(
                    f"mounting {mount.source} would give the run the Docker socket ({socket}) "
                    "and with it the whole machine; mount a narrower folder.",
                    source=str(mount.source),
                )
    if not source.exists():
        raise InvalidInput(
            f"mount source {mount.source} does not exist; create the folder first.",
            source=str(mount.source),
        )


def _run_info(attrs: Mapping[str, Any], image_labels: Mapping[str, str]) -> RunInfo:
    """The run a container is; its labels are those Workbench set: Docker merges the
    image's own labels into the container's, so a ``workbench.*`` label that the image
    carries (with that value) proves nothing and is left out (shared/SECURITY.md)."""
    state = attrs.get("State") or {}
    run_state = _STATES.get(state.get("Status", ""), RunState.EXITED)
    exited = run_state is RunState.EXITED
    return RunInfo(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        state=run_state,
        exit_code=int(state.get("ExitCode", 0)) if exited else None,
        ports=_ports(attrs),
        labels={
            key: value
            for key, value in ((attrs.get("Config") or {}).get("Labels") or {}).items()
            if not (key.startswith(RESERVED_LABEL_PREFIX) and image_labels.get(key) == value)
        },
        oom_killed=bool(state.get("OOMKilled")),
        restarts=int(attrs.get("RestartCount") or 0),
        address=_address(attrs) if run_state is RunState.RUNNING else None,
    )


def _network_args(spec: RunSpec) -> dict[str, Any]:
    """The container's network: none, a Workbench network, or the engine's default; the
    ports it publishes (none where the engine could not: no network, an internal one)."""
    if spec.network == NO_NETWORK:
        return {"network_mode": "none", "ports": {}}
    if not isinstance(spec.network, Network):
        return {}
    args: dict[str, Any] = {"network": spec.network.name}
    if not spec.network.outbound:
        args["ports"] = {}
    return args


def _networks(attrs: Mapping[str, Any]) -> builtins.list[str]:
    """The names of the networks a container is on."""
    return list(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())


def _address(attrs: Mapping[str, Any]) -> str | None:
    """The container's IP address on its (first) network."""
    settings = attrs.get("NetworkSettings") or {}
    for network in (settings.get("Networks") or {}).values():
        if (network or {}).get("IPAddress"):
            return str(network["IPAddress"])
    return settings.get("IPAddress") or None


def _ports(attrs: Mapping[str, Any]) -> dict[int, int]:
    """Published host ports while running; the requested ones (0: any) otherwise."""
    live = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    asked = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    ports: dict[int, int] = {}
    for key, bindings in asked.items():
        published = live.get(key) or bindings or [{}]
        local = [b for b in published if b.get("HostIp") == "127.0.0.1"] or published
        ports[int(key.split("/", 1)[0])] = int(local[0].get("HostPort") or 0)
    return ports


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The output's lines, each cut at ``LINE_MAX_CHARS`` as it streams (:class:`LineSplitter`)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(decoder.decode(chunk))
    yield from splitter.feed(decoder.decode(b"", final=True))
    yield from splitter.close()


def follow_errors(lines: Iterator[str], run_id: str) -> Iterator[str]:
    with engine_errors(run=run_id):
        yield from lines


def _build_failed(tag: str, error: str, last: Iterable[str]) -> BuildFailed:
    lines = [*last, error]
    return BuildFailed(
        f"building {tag} failed: {error}\nlast lines of the build:\n" + "\n".join(lines),
        tag=tag,
        lines=lines,
    )


def _stream_error(result: str) -> str:
    match = re.search(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"', result)
    return match.group(1) if match else ""


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file; give the path of a tar archive.")


def _tuple_or_none(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _write_pull_progress(entries: Iterable[dict[str, Any]], write: Callable[[str], None]) -> None:
    """The pull's status lines (not its progress bars)."""
    for entry in entries:
        if "error" in entry:
            raise BackendError(f"docker pull failed: {entry['error']}")
        if "progressDetail" in entry and entry.get("progress"):
            continue
        status = str(entry.get("status", "")).strip()
        if status:
            write(f"{entry['id']}: {status}" if entry.get("id") else status)
