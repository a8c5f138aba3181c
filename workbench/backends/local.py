"""The ``local`` backend: plain processes, for machines without Docker.

Same contract as the Docker backend where a process can honour it; where it cannot, it says
so here rather than pretend:

- **No isolation.** A run is a process of the user running Workbench (or of ``spec.user``
  when Workbench runs as root): it sees the whole file system, network and GPUs.
- **Images are Python virtual environments**, not container images: a folder with
  ``bin/python`` under ``<state_dir>/images/``, registered under a tag in
  ``<state_dir>/images.json``. :meth:`LocalBackend.build_image` makes a venv and
  pip-installs the context's ``requirements.txt`` (the Dockerfile is ignored; build args
  become the environment of pip, e.g. ``PIP_INDEX_URL``). Importing a root filesystem,
  loading or saving a ``docker save`` tar need Docker and raise :class:`Unsupported`.
  An image has no default command: a run must give one.
- **Mounts are symlinks**: a run gets its own folder ``<state_dir>/runs/<id>/root``, a mount
  with target ``/data`` becomes the symlink ``root/data -> source``, and the process starts
  in ``root`` (or ``root/<workdir>``). Paths relative to the working folder therefore reach
  the mounts; an absolute target path only works where it is the source itself (absolute
  paths pass through unchanged). ``WORKBENCH_RUN_ROOT`` names the run's root folder.
- **read_only is not enforced**, nor ``read_only_root`` (``tmpfs`` folders are not made):
  the process may write wherever its user may; file modes are the only protection.
- **No networks**: ``network`` is ignored; every run shares the host's network (and
  reaches every other run's ports).
- **Limits are best effort**, set with ``setrlimit`` by a small wrapper process before it
  starts the command (not in ``preexec_fn``, which is unsafe in threaded programs):
  memory as ``RLIMIT_AS`` (address space, not resident memory: a too-large allocation
  fails with an error, nothing is "OOM killed"), processes as ``RLIMIT_NPROC`` (it counts
  all processes of the user, not of the run, and does not bind root). CPUs are not
  limited, and there is no GPU isolation (``limits.gpus`` is ignored).
- **Ports cannot be remapped**: the process must listen where it is told. The host port
  (0: a free one, picked just before the start) is passed as ``PORT`` (the first port)
  and ``PORT_<container port>``, and reported as published.
- **Environment**: a run does not inherit Workbench's environment (which may hold secrets);
  it gets ``PATH`` (the image's ``bin`` first), ``VIRTUAL_ENV``, locale, ``HOME``, proxy and
  CA-bundle variables, then the spec's ``env``.

State lives in files, so a new Python process sees the runs of the last one: each run has
``runs/<id>/run.json`` (its spec and process id), ``output.log`` (stdout and stderr) and
``exitcode``, written by the wrapper when the command ends. A run whose process is gone is
"exited", with its exit code when the wrapper could write one (killed after the stop
timeout: 137). Stopping sends SIGTERM to the run's process group, then SIGKILL.

Over 600 lines because it implements the whole backend contract (runs, their logs and
states, images as virtual environments, builds, loads, tags) for plain processes, with
the contract's docstring at each method; one backend is one module, as docker.py is.
"""

from __future__ import annotations

import builtins
import codecs
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.backends.base import MANAGED_LABEL, ImageInfo, RunInfo, RunSpec, RunState
from workbench.backends.replicated import RunReplicas
from workbench.errors import (
    BackendError,
    BuildFailed,
    InvalidInput,
    RunNotFound,
    Unsupported,
)

#: variables of Workbench's own environment that a run inherits
PASSED_ENV = (
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
_BUILD_TAIL = 20
_KILLED = 128 + signal.SIGKILL
_READY_TIMEOUT = 30  # seconds a wrapper may take to start the command

# Runs as ``python -I -c WRAPPER OPTIONS COMMAND...`` in the run's own session: sets the
# limits, starts the command, says so on the ``ready_fd`` pipe (from then on a stop cannot
# catch it unprepared), survives the SIGTERM sent to the group so that it can write the
# exit code (shell style: 128 + signal), then kills whatever the command left behind.
_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys

opts = json.loads(sys.argv[1])
command = sys.argv[2:]


def limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))


def identity(user):
    import grp, pwd
    name, _, group = user.partition(":")
    uid = int(name) if name.isdigit() else pwd.getpwnam(name).pw_uid
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    else:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
    found = {"user": uid, "group": gid}
    if os.geteuid() == 0:
        found["extra_groups"] = []
    return found


signal.signal(signal.SIGTERM, lambda *_: None)
signal.signal(signal.SIGINT, lambda *_: None)
try:
    limit(resource.RLIMIT_AS, opts["memory"])
    limit(resource.RLIMIT_NPROC, opts["pids"])
    who = identity(opts["user"]) if opts["user"] else {}
    child = subprocess.Popen(command, **who)
except (OSError, KeyError, ValueError) as exc:
    print(f"workbench: cannot start {command[0]!r}: {exc}", file=sys.stderr, flush=True)
    child, code = None, 127 if isinstance(exc, FileNotFoundError) else 126
os.write(opts["ready_fd"], b"1")
os.close(opts["ready_fd"])
if child is not None:
    code = child.wait()
    code = 128 - code if code < 0 else code
with open(opts["exit_file"] + ".part", "w") as out:
    out.write(str(code))
os.replace(opts["exit_file"] + ".part", opts["exit_file"])
os.killpg(0, signal.SIGKILL)
"""


@dataclass
class _Run:
    """What ``run.json`` holds: enough to report on the run and start it again."""

    id: str
    name: str
    image: str
    image_id: str
    command: list[str]
    env: dict[str, str]
    cwd: str
    requested_ports: dict[int, int]
    labels: dict[str, str]
    memory_mb: int
    pids: int
    user: str | None
    ports: dict[int, int] = field(default_factory=dict)
    pid: int | None = None
    started: int | None = None  # the process's start time (/proc), against pid reuse
    killed: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Run:
        for key in ("requested_ports", "ports"):
            data[key] = {int(k): int(v) for k, v in data[key].items()}
        return cls(**data)


class LocalBackend(RunReplicas):
    """Runs are process groups and images are virtual environments, all under ``state_dir``.

    A run's id is a random hex string; every method taking a ``run_id`` also accepts the
    run's name. See the module docstring for what this backend cannot do.
    """

    name = "local"
    isolates_files = False  # plain processes see the host's paths
    isolates_runs = False  # ... as the server's user: no box at all
    saves_images = False  # its images are virtual environments

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.RLock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- runs -----------------------------------------------------------------------------

    def run(self, spec: RunSpec) -> RunInfo:
        if spec.command is None:
            raise InvalidInput(
                f"run {spec.name!r} has no command: local images are virtual environments "
                "without a default command, so give one."
            )
        with self._lock:
            if self._find(spec.name) is not None:
                raise BackendError(
                    f"a run named {spec.name!r} already exists; remove it or choose another name.",
                    run=spec.name,
                )
            image_id, venv = self._image(spec.image)
            run_dir = self._runs_dir / uuid.uuid4().hex
            try:
                run = self._prepare(spec, run_dir, image_id, venv)
                self._launch(run)
            except OSError as exc:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise BackendError(f"cannot start run {spec.name!r}: {exc}", run=spec.name) from exc
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            return self._info(run)

    def _prepare(self, spec: RunSpec, run_dir: Path, image_id: str, venv: Path) -> _Run:
        root = run_dir / "root"
        root.mkdir(parents=True)
        for mount in spec.mounts:
            source = mount.source.resolve()
            if not source.exists():
                raise InvalidInput(
                    f"mount source {mount.source} does not exist; create the folder first.",
                    source=str(mount.source),
                )
            link = root / _relative(mount.target)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source, target_is_directory=source.is_dir())
        cwd = root / _relative(spec.workdir) if spec.workdir else root
        cwd.mkdir(parents=True, exist_ok=True)
        env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        env["VIRTUAL_ENV"] = str(venv)
        env["WORKBENCH_RUN_ROOT"] = str(root)
        env.update(spec.env)
        return _Run(
            id=run_dir.name,
            name=spec.name,
            image=spec.image,
            image_id=image_id,
            command=list(spec.command or ()),
            env=env,
            cwd=str(cwd),
            requested_ports=dict(spec.ports),
            labels={MANAGED_LABEL: "true", **spec.labels},
            memory_mb=spec.limits.memory_mb,
            pids=spec.limits.pids,
            user=spec.user,
        )

    def _launch(self, run: _Run) -> None:
        run_dir = self._runs_dir / run.id
        (run_dir / "exitcode").unlink(missing_ok=True)
        run.ports = {inside: host or _free_port() for inside, host in run.requested_ports.items()}
        env = dict(run.env)
        for index, (inside, host) in enumerate(run.ports.items()):
            env[f"PORT_{inside}"] = str(host)
            if index == 0:
                env.setdefault("PORT", str(host))
        options: dict[str, Any] = {
            "exit_file": str(run_dir / "exitcode"),
            "memory": run.memory_mb * 1024 * 1024,
            "pids": run.pids,
            "user": run.user,
        }
        ready, options["ready_fd"] = os.pipe()
        argv = [sys.executable, "-I", "-c", _WRAPPER, json.dumps(options), *run.command]
        try:
            with (run_dir / "output.log").open("ab") as log:
                process = subprocess.Popen(
                    argv,
                    cwd=run.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(options["ready_fd"],),
                )
        finally:
            os.close(options["ready_fd"])
        with os.fdopen(ready, "rb") as started:
            # one byte once the command started; nothing (EOF) if the wrapper died first
            select.select([started], [], [], _READY_TIMEOUT)
        self._children[process.pid] = process
        run.pid, run.started, run.killed = process.pid, _start_time(process.pid), False
        self._save(run)

    def start(self, run_id: str) -> RunInfo:
        with self._lock:
            run = self._load(run_id)
            if not self._alive(run):
                try:
                    self._launch(run)
                except OSError as exc:
                    raise BackendError(f"cannot start run {run.name!r}: {exc}", run=run.id) from exc
            return self._info(run)

    def stop(self, run_id: str, timeout: float = 10) -> RunInfo:
        run = self._load(run_id)
        if self._alive(run):
            self._signal(run, signal.SIGTERM)
            if not self._wait_dead(run, timeout):
                run.killed = True
                self._save(run)
                self._signal(run, signal.SIGKILL)
                self._wait_dead(run, 5)
        return self._info(run)

    def remove(self, run_id: str) -> None:
        try:
            run = self._load(run_id)
        except RunNotFound:
            return
        if self._alive(run):
            self.stop(run.id)
        if run.pid is not None:
            self._children.pop(run.pid, None)
        # rmtree unlinks the mount symlinks, it never follows them into the mounted folders
        shutil.rmtree(self._runs_dir / run.id, ignore_errors=True)

    def status(self, run_id: str) -> RunInfo:
        return self._info(self._load(run_id))

    def logs(self, run_id: str, *, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        run = self._load(run_id)
        return self._read_log(run, follow=follow, tail=tail)

    def _read_log(self, run: _Run, *, follow: bool, tail: int | None) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with (self._runs_dir / run.id / "output.log").open("rb") as log:
            lines, pending = _split(decoder.decode(log.read()))
            if not follow and pending:
                lines, pending = [*lines, pending], ""
            if tail is not None:
                lines = lines[max(0, len(lines) - tail) :] if tail > 0 else []
            yield from lines
            while follow:
                running = self._alive(run)  # looked at before reading: no last line is lost
                chunk = log.read()
                if chunk:
                    lines, pending = _split(pending + decoder.decode(chunk))
                    yield from lines
                elif not running:
                    break
                else:
                    time.sleep(0.05)
            pending += decoder.decode(b"", final=True)
            if pending:
                yield pending

    def list(self, labels: Mapping[str, str] | None = None) -> list[RunInfo]:
        wanted = dict(labels or {})
        runs = [self._read(path) for path in sorted(self._runs_dir.glob("*/run.json"))]
        return [
            self._info(run)
            for run in runs
            if run is not None and all(run.labels.get(k) == v for k, v in wanted.items())
        ]

    # --- run state ------------------------------------------------------------------------

    @property
    def _runs_dir(self) -> Path:
        return self.state_dir / "runs"

    def _read(self, path: Path) -> _Run | None:
        try:
            return _Run.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):  # removed or half-made meanwhile
            return None

    def _find(self, run_id: str) -> _Run | None:
        if run_id and "/" not in run_id and run_id not in (".", ".."):
            run = self._read(self._runs_dir / run_id / "run.json")
            if run is not None:
                return run
        for path in self._runs_dir.glob("*/run.json"):
            run = self._read(path)
            if run is not None and run.name == run_id:
                return run
        return None

    def _load(self, run_id: str) -> _Run:
        run = self._find(run_id)
        if run is None:
            raise self._run_not_found(run_id)
        return run

    def _save(self, run: _Run) -> None:
        _write_json(self._runs_dir / run.id / "run.json", asdict(run))

    def _info(self, run: _Run) -> RunInfo:
        running = self._alive(run)
        exit_code = None
        if not running:
            exit_code = _read_exit_code(self._runs_dir / run.id / "exitcode")
            if exit_code is None and run.killed:
                exit_code = _KILLED
        return RunInfo(
            id=run.id,
            name=run.name,
            state=RunState.RUNNING if running else RunState.EXITED,
            exit_code=exit_code,
            ports=dict(run.ports),
            labels=dict(run.labels),
        )

    def _alive(self, run: _Run) -> bool:
        if run.pid is None:
            return False
        child = self._children.get(run.pid)
        if child is not None and child.poll() is not None:  # reap our own children
            del self._children[run.pid]
            return False
        if not Path("/proc").is_dir():  # no /proc (macOS): trust the pid
            try:
                os.kill(run.pid, 0)
            except ProcessLookupError:
                return False
            return True
        started = _start_time(run.pid)
        return started is not None and started == run.started

    def _signal(self, run: _Run, sig: signal.Signals) -> None:
        if run.pid is not None and self._alive(run):
            with suppress(ProcessLookupError):
                os.killpg(run.pid, sig)

    def _wait_dead(self, run: _Run, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(run):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # --- images ---------------------------------------------------------------------------

    @property
    def _index_path(self) -> Path:
        return self.state_dir / "images.json"

    def _index(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._index_path.read_text()))
        except FileNotFoundError:
            return {}

    def _image(self, ref: str) -> tuple[str, Path]:
        """The image id and venv folder of a tag or id; :class:`ImageNotFound` if none."""
        image_id = self._index().get(normalize_tag(ref), ref)
        path = self.state_dir / "images" / image_id
        if "/" in image_id or not (path / "bin" / "python").exists():
            raise self._image_not_found(ref, "build it first")
        return image_id, path

    def _check_context(self, context: Path, dockerfile: str, tag: str) -> None:
        """:class:`BuildFailed` unless ``context`` is a folder: a local image is built from
        its ``requirements.txt`` (if any), not from the Dockerfile."""
        if not context.is_dir():
            raise BuildFailed(f"cannot build {tag}: {context} is not a folder.", tag=tag)

    def _build(
        self, context: Path, tag: str, dockerfile: str, build_args: dict[str, str]
    ) -> Iterator[str]:
        image_id = uuid.uuid4().hex
        venv = self.state_dir / "images" / image_id
        env = {**os.environ, **build_args}
        last: deque[str] = deque(maxlen=_BUILD_TAIL)
        steps = [("python -m venv", [sys.executable, "-m", "venv", str(venv)])]
        if (context / "requirements.txt").is_file():
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
            steps.append(
                ("pip install", [*pip, "--disable-pip-version-check", "-r", "requirements.txt"])
            )
        try:
            for step, argv in steps:
                yield from _stream(step, argv, context, env, last, tag)
            with self._lock:
                self._retag(normalize_tag(tag), image_id)
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        yield f"Successfully built {image_id[:12]} as {normalize_tag(tag)}"

    def register_venv(self, venv: Path, tag: str) -> ImageInfo:
        """Use an existing virtual environment (one with JupyterLab, say) as the image
        ``tag``: the local counterpart of loading a prebuilt image."""
        if not (venv / "bin" / "python").exists():
            raise BuildFailed(f"{venv} is not a virtual environment (no bin/python).", tag=tag)
        image_id = uuid.uuid4().hex
        link = self.state_dir / "images" / image_id
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(venv.resolve(), target_is_directory=True)
        with self._lock:
            self._retag(normalize_tag(tag), image_id)
        return self.inspect_image(tag)

    def _retag(self, tag: str, image_id: str) -> None:
        index = self._index()
        previous = index.get(tag)
        index[tag] = image_id
        _write_json(self._index_path, index)
        if previous and previous not in index.values() and not self._used_by(previous):
            shutil.rmtree(self.state_dir / "images" / previous, ignore_errors=True)

    def _used_by(self, image_id: str) -> builtins.list[str]:
        runs = (self._read(path) for path in self._runs_dir.glob("*/run.json"))
        return [run.name for run in runs if run is not None and run.image_id == image_id]

    def import_rootfs(self, tar: Path, tag: str) -> ImageInfo:
        raise _needs_docker("importing a root filesystem")

    def load_image(self, tar: Path) -> builtins.list[str]:
        raise _needs_docker("loading a docker save tar")

    def save_image(self, ref: str, dest: Path) -> None:
        raise _needs_docker("saving an image as a docker save tar")

    def tag_image(self, ref: str, tag: str) -> None:
        raise _needs_docker("tagging an image (algorithm images are docker images)")

    def inspect_image(self, ref: str) -> ImageInfo:
        image_id, path = self._image(ref)
        tags = tuple(tag for tag, found in self._index().items() if found == image_id)
        size = sum(
            (Path(folder) / name).lstat().st_size
            for folder, _, names in os.walk(path)
            for name in names
        )
        return ImageInfo(
            id=image_id,
            tags=tags,
            entrypoint=None,
            cmd=None,
            env={"VIRTUAL_ENV": str(path)},
            exposed_ports=(),
            size=size,
        )

    def remove_image(self, ref: str) -> None:
        with self._lock:
            index = self._index()
            tag = normalize_tag(ref)
            if tag in index:
                image_id = index[tag]
                rest = {k: v for k, v in index.items() if k != tag}
            elif "/" not in ref and (self.state_dir / "images" / ref).is_dir():
                image_id = ref
                rest = {k: v for k, v in index.items() if v != ref}
            else:
                return
            if image_id not in rest.values():
                users = self._used_by(image_id)
                if users:
                    raise BackendError(
                        f"image {ref!r} is used by the runs {', '.join(users)}; remove them first.",
                        image=ref,
                    )
                shutil.rmtree(self.state_dir / "images" / image_id, ignore_errors=True)
            _write_json(self._index_path, rest)


# --- helpers --------------------------------------------------------------------------------


def normalize_tag(tag: str) -> str:
    """``name`` means ``name:latest``, as in Docker."""
    return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"


def _relative(target: str) -> str:
    """A run's absolute path as a path inside its root folder; no way out of it."""
    parts = PurePosixPath(target).parts[1:]
    if not parts or ".." in parts:
        raise InvalidInput(f"{target!r} must be an absolute path below / without '..'.")
    return str(PurePosixPath(*parts))


def _split(text: str) -> tuple[list[str], str]:
    *lines, pending = text.split("\n")
    return [line.removesuffix("\r") for line in lines], pending


def _stream(
    step: str, argv: list[str], cwd: Path, env: Mapping[str, str], last: deque[str], tag: str
) -> Iterator[str]:
    """Run one build step, yielding its output lines; :class:`BuildFailed` if it fails."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            last.append(line)
            yield line
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        lines = list(last)
        raise BuildFailed(
            f"building {tag} failed: {step} exited with {code}\nlast lines of the build:\n"
            + "\n".join(lines),
            tag=tag,
            lines=lines,
        )


def _needs_docker(what: str) -> Unsupported:
    return Unsupported(
        f"{what} needs Docker: the local backend's images are Python virtual environments, "
        "not container images. Start a Docker Engine (scripts/docker) and use the docker "
        "backend."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot); None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _read_exit_code(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    part.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(part, path)
