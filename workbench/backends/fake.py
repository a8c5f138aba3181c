"""The ``fake`` backend: in memory and deterministic, for fast tests of the services.

Nothing runs. What a run does is told by a :class:`Script` registered with
:meth:`FakeBackend.script` for its name or its image: the lines it prints, and whether it
exits at once (with which code, OOM-killed or not), keeps running until it is stopped or
told to :meth:`~FakeBackend.finish`, or fails to start. Without a script a run prints
nothing and runs until stopped. Stopping exits with 143 (the process honoured SIGTERM).

Ids count up (``fake-run-1``, ...) and ports published on "any free port" count up from
:attr:`FakeBackend.first_port`, so tests can compare whole values. A run's network,
read-only root and tmpfs change nothing here (they are the Docker backend's).

Images are entries in a dict: add them with :meth:`~FakeBackend.add_image`, or build them:
each Dockerfile instruction is one output line (``Step 1/3 : FROM base``), and ``FROM``,
``ENV``, ``EXPOSE``, ``CMD`` and ``ENTRYPOINT`` (JSON form) make the image's config;
:meth:`~FakeBackend.fail_build` makes a tag's builds fail. Saving writes a tar in the
``docker save`` layout (``manifest.json`` naming the tags, plus a config file), and loading
reads that layout, so real ``docker save`` tars load too; a loaded image's id is the sha256
of its config, as on Docker.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import io
import itertools
import json
import os
import shlex
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, ClassVar

from workbench.backends.base import MANAGED_LABEL, ImageInfo, Replica, RunInfo, RunSpec, RunState
from workbench.backends.local import normalize_tag
from workbench.backends.replicated import RunReplicas
from workbench.errors import BackendError, BuildFailed, RunNotFound

_STOPPED = 143  # 128 + SIGTERM


@dataclass(frozen=True)
class Script:
    """What a run does in the fake backend."""

    lines: tuple[str, ...] = ()
    #: None: keeps running until stopped or finished
    exit_code: int | None = None
    oom_killed: bool = False
    #: the start fails with this message from the "engine" (nothing is left behind)
    start_error: str | None = None


@dataclass
class _FakeRun:
    id: str
    spec: RunSpec
    script: Script
    labels: dict[str, str]
    ports: dict[int, int] = field(default_factory=dict)
    state: RunState = RunState.CREATED
    exit_code: int | None = None
    oom_killed: bool = False
    output: list[str] = field(default_factory=list)
    removed: bool = False

    def info(self) -> RunInfo:
        return RunInfo(
            id=self.id,
            name=self.spec.name,
            state=self.state,
            exit_code=self.exit_code,
            ports=dict(self.ports),
            labels=dict(self.labels),
            oom_killed=self.oom_killed,
        )


class FakeBackend(RunReplicas):
    """Runs and images in memory; safe to use from several threads."""

    name = "fake"
    first_port: ClassVar[int] = 49153

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._runs: dict[str, _FakeRun] = {}
        self._images: dict[str, ImageInfo] = {}
        self._scripts: dict[str, Script] = {}
        self._build_failures: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._run_ids = itertools.count(1)
        self._image_ids = itertools.count(1)
        self._ports = itertools.count(self.first_port)

    # --- steering (what a test tells the fake) ---------------------------------------------

    def script(
        self,
        match: str,
        lines: Iterable[str] = (),
        *,
        exit_code: int | None = 0,
        oom_killed: bool = False,
        start_error: str | None = None,
    ) -> None:
        """What runs named ``match`` (or of the image ``match``) do from now on."""
        self._scripts[match] = Script(tuple(lines), exit_code, oom_killed, start_error)

    def finish(self, run_id: str, exit_code: int = 0, *, oom_killed: bool = False) -> RunInfo:
        """Make a running run end, as if its process had exited with ``exit_code``."""
        with self._cond:
            run = self._get(run_id)
            if run.state is RunState.RUNNING:
                self._exit(run, exit_code, oom_killed)
            return run.info()

    def emit(self, run_id: str, *lines: str) -> None:
        """Add output lines to a run (followers of its logs see them)."""
        with self._cond:
            self._get(run_id).output.extend(lines)
            self._cond.notify_all()

    def fail_build(self, tag: str, error: str = "build failed", lines: Iterable[str] = ()) -> None:
        """Make builds of ``tag`` print ``lines`` and fail with ``error``."""
        self._build_failures[normalize_tag(tag)] = (error, tuple(lines))

    def add_image(
        self,
        tag: str,
        *,
        entrypoint: Iterable[str] | None = None,
        cmd: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
        exposed_ports: Iterable[int] = (),
        size: int = 0,
    ) -> ImageInfo:
        """Add an image under ``tag`` (taking the tag from any image that had it)."""
        image = ImageInfo(
            id=f"sha256:{next(self._image_ids):064x}",
            tags=(),
            entrypoint=tuple(entrypoint) if entrypoint is not None else None,
            cmd=tuple(cmd) if cmd is not None else None,
            env=dict(env or {}),
            exposed_ports=tuple(sorted(set(exposed_ports))),
            size=size,
        )
        with self._cond:
            return self._tag(image, [tag])

    # --- runs -----------------------------------------------------------------------------

    def run(self, spec: RunSpec) -> RunInfo:
        with self._cond:
            if any(run.spec.name == spec.name for run in self._runs.values()):
                raise BackendError(f"a run named {spec.name!r} already exists.", run=spec.name)
            image = self._image(spec.image)
            # a script is found by the run's name, the image it names, or (a run pinned to
            # an image's id) any of the image's tags
            keys = (spec.name, spec.image, normalize_tag(spec.image), *image.tags)
            script = next((self._scripts[k] for k in keys if k in self._scripts), Script())
            run = _FakeRun(
                id=f"fake-run-{next(self._run_ids)}",
                spec=spec,
                script=script,
                labels={MANAGED_LABEL: "true", **spec.labels},
            )
            self._start(run)  # raises before the run is kept: nothing is left behind
            self._runs[run.id] = run
            return run.info()

    def _start(self, run: _FakeRun) -> None:
        if run.script.start_error:
            raise BackendError(f"Fake engine refused: {run.script.start_error}", run=run.id)
        taken = {
            host
            for other in self._runs.values()
            if other is not run and other.state is RunState.RUNNING
            for host in other.ports.values()
        }
        for host in run.spec.ports.values():
            if host in taken:
                raise BackendError(f"Fake engine refused: port {host} is already allocated")
        run.ports = {inside: host or next(self._ports) for inside, host in run.spec.ports.items()}
        run.state, run.exit_code, run.oom_killed = RunState.RUNNING, None, False
        run.output.extend(run.script.lines)
        if run.script.exit_code is not None:
            self._exit(run, run.script.exit_code, run.script.oom_killed)
        self._cond.notify_all()

    def _exit(self, run: _FakeRun, exit_code: int, oom_killed: bool = False) -> None:
        run.state, run.exit_code, run.oom_killed = RunState.EXITED, exit_code, oom_killed
        self._cond.notify_all()

    def start(self, run_id: str) -> RunInfo:
        with self._cond:
            run = self._get(run_id)
            if run.state is not RunState.RUNNING:
                self._start(run)
            return run.info()

    def stop(self, run_id: str, timeout: float = 10) -> RunInfo:
        with self._cond:
            run = self._get(run_id)
            if run.state is RunState.RUNNING:
                self._exit(run, _STOPPED)
            elif run.state is RunState.CREATED:
                self._exit(run, 0)
            return run.info()

    def remove(self, run_id: str) -> None:
        with self._cond:
            try:
                run = self._get(run_id)
            except RunNotFound:
                return
            run.removed = True
            del self._runs[run.id]
            self._cond.notify_all()

    def status(self, run_id: str) -> RunInfo:
        with self._cond:
            return self._get(run_id).info()

    def logs(self, run_id: str, *, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        with self._cond:
            run = self._get(run_id)
            lines = list(run.output)
        position = len(lines) if follow else None
        if tail is not None:
            lines = lines[max(0, len(lines) - tail) :] if tail > 0 else []
        return self._follow(run, lines, position)

    def _follow(self, run: _FakeRun, lines: list[str], position: int | None) -> Iterator[str]:
        yield from lines
        if position is None:
            return
        live = True
        while live:
            with self._cond:
                self._cond.wait_for(functools.partial(_news, run, position))
                new = run.output[position:]
                position, live = position + len(new), _live(run)
            yield from new

    def list(self, labels: Mapping[str, str] | None = None) -> list[RunInfo]:
        wanted = dict(labels or {})
        with self._cond:
            return [
                run.info()
                for run in self._runs.values()
                if all(run.labels.get(k) == v for k, v in wanted.items())
            ]

    def answers(self, replica: Replica, route: str, within: float = 0.0) -> bool:
        """A fake replica answers while it runs (nothing listens in the fake)."""
        with self._cond:
            run = self._runs.get(replica.run.id)
            return run is not None and not run.removed and run.state is RunState.RUNNING

    def _get(self, run_id: str) -> _FakeRun:
        found = self._runs.get(run_id) or next(
            (run for run in self._runs.values() if run.spec.name == run_id), None
        )
        if found is None:
            raise self._run_not_found(run_id)
        return found

    # --- images ---------------------------------------------------------------------------

    def _build(
        self, context: Path, tag: str, dockerfile: str, build_args: dict[str, str]
    ) -> Iterator[str]:
        steps = [
            line.strip()
            for line in (context / dockerfile).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        for number, step in enumerate(steps, 1):
            yield f"Step {number}/{len(steps)} : {step}"
        failure = self._build_failures.get(normalize_tag(tag))
        if failure is not None:
            error, lines = failure
            yield from lines
            raise BuildFailed(
                f"building {tag} failed: {error}\nlast lines of the build:\n"
                + "\n".join([*lines, error]),
                tag=tag,
                lines=[*lines, error],
            )
        with self._cond:
            image = self._tag(self._configure(steps), [tag])
        yield f"Successfully built {image.id[7:19]}"
        yield f"Successfully tagged {normalize_tag(tag)}"

    def _configure(self, steps: builtins.list[str]) -> ImageInfo:
        """The config a Dockerfile's instructions give (the rest of the image is pretend)."""
        image = ImageInfo(f"sha256:{next(self._image_ids):064x}", (), None, None, {}, (), 0)
        for step in steps:
            word, _, rest = step.partition(" ")
            word, rest = word.upper(), rest.strip()
            if word == "FROM":
                base = self._find_image(rest.split()[0]) if rest else None
                image = replace(base, id=image.id, tags=()) if base else image
            elif word == "ENV":
                pairs = (item.split("=", 1) for item in shlex.split(rest) if "=" in item)
                image = replace(image, env={**image.env, **dict(pairs)})
            elif word == "EXPOSE":
                ports = {int(item.split("/")[0]) for item in rest.split()}
                image = replace(image, exposed_ports=tuple(sorted({*image.exposed_ports, *ports})))
            elif word == "CMD" and rest.startswith("["):
                image = replace(image, cmd=tuple(json.loads(rest)))
            elif word == "ENTRYPOINT" and rest.startswith("["):
                image = replace(image, entrypoint=tuple(json.loads(rest)))
        return image

    def import_rootfs(self, tar: Path, tag: str) -> ImageInfo:
        if not tar.is_file() or not tarfile.is_tarfile(tar):
            raise BackendError(f"Fake engine could not import {tar}: not a tar archive.")
        return self.add_image(tag, size=tar.stat().st_size)

    def load_image(self, tar: Path) -> builtins.list[str]:
        try:
            with tarfile.open(tar) as archive:
                manifest = json.load(_member(archive, "manifest.json"))
                loaded: builtins.list[str] = []
                for entry in manifest:
                    blob = _member(archive, entry["Config"]).read()
                    config = json.loads(blob).get("config") or {}
                    image_id = f"sha256:{hashlib.sha256(blob).hexdigest()}"  # as Docker does
                    with self._cond:  # the tags in the tar are not applied (as Docker's)
                        known = self._images.get(image_id)
                        self._tag(_from_config(image_id, config), known.tags if known else ())
                    loaded.append(image_id)
        except (OSError, tarfile.TarError, KeyError, ValueError, TypeError) as exc:
            raise BackendError(f"Fake engine could not load {tar}: not a docker save tar") from exc
        return loaded

    def save_image(self, ref: str, dest: Path) -> None:
        with self._cond:
            image = self._image(ref)
        tags = [normalize_tag(ref)] if normalize_tag(ref) in image.tags else []
        config_name = f"{image.id.removeprefix('sha256:')}.json"
        files = {
            "manifest.json": [{"Config": config_name, "RepoTags": tags, "Layers": []}],
            config_name: {"config": _to_config(image)},
        }
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as archive:
                for name, content in files.items():
                    data = json.dumps(content).encode()
                    member = tarfile.TarInfo(name)
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
            os.replace(part, dest)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise

    def inspect_image(self, ref: str) -> ImageInfo:
        with self._cond:
            return self._image(ref)

    def tag_image(self, ref: str, tag: str) -> None:
        with self._cond:
            image = self._image(ref)
            self._tag(image, [*image.tags, tag])

    def remove_image(self, ref: str) -> None:
        with self._cond:
            image = self._find_image(ref)
            if image is None:
                return
            tag = normalize_tag(ref)
            if tag in image.tags and len(image.tags) > 1:
                kept = tuple(t for t in image.tags if t != tag)
                self._images[image.id] = replace(image, tags=kept)
                return
            users = [run.spec.name for run in self._runs.values() if self._uses(run, image)]
            if users:
                raise BackendError(
                    f"Fake engine refused: image {ref!r} is used by the runs {', '.join(users)}"
                )
            del self._images[image.id]

    def _uses(self, run: _FakeRun, image: ImageInfo) -> bool:
        return run.spec.image == image.id or normalize_tag(run.spec.image) in image.tags

    def _find_image(self, ref: str) -> ImageInfo | None:
        if ref in self._images:
            return self._images[ref]
        tag = normalize_tag(ref)
        return next((image for image in self._images.values() if tag in image.tags), None)

    def _image(self, ref: str) -> ImageInfo:
        image = self._find_image(ref)
        if image is None:
            raise self._image_not_found(ref, "add or build it first")
        return image

    def _tag(self, image: ImageInfo, tags: Iterable[str]) -> ImageInfo:
        """Store ``image`` with ``tags``, moving them off the images that had them."""
        wanted = tuple(dict.fromkeys(normalize_tag(tag) for tag in tags))
        for other in list(self._images.values()):
            if set(other.tags) & set(wanted):
                kept = tuple(tag for tag in other.tags if tag not in wanted)
                self._images[other.id] = replace(other, tags=kept)
        image = replace(image, tags=wanted)
        self._images[image.id] = image
        return image


def _live(run: _FakeRun) -> bool:
    return run.state is RunState.RUNNING and not run.removed


def _news(run: _FakeRun, seen: int) -> bool:
    """Whether a follower that has seen ``seen`` lines has something to do."""
    return len(run.output) > seen or not _live(run)


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    found = archive.extractfile(name)
    if found is None:
        raise KeyError(name)
    return found


def _to_config(image: ImageInfo) -> dict[str, Any]:
    return {
        "Entrypoint": list(image.entrypoint) if image.entrypoint is not None else None,
        "Cmd": list(image.cmd) if image.cmd is not None else None,
        "Env": [f"{key}={value}" for key, value in image.env.items()],
        "ExposedPorts": {f"{port}/tcp": {} for port in image.exposed_ports},
    }


def _from_config(image_id: str, config: Mapping[str, Any]) -> ImageInfo:
    env = dict(item.split("=", 1) for item in config.get("Env") or () if "=" in item)
    ports = {int(key.split("/")[0]) for key in config.get("ExposedPorts") or {}}
    return ImageInfo(
        id=image_id,
        tags=(),
        entrypoint=tuple(config["Entrypoint"]) if config.get("Entrypoint") else None,
        cmd=tuple(config["Cmd"]) if config.get("Cmd") else None,
        env=env,
        exposed_ports=tuple(sorted(ports)),
        size=0,
        labels=dict(config.get("Labels") or {}),
    )
