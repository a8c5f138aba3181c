"""``docker save`` tars and ``docker pull``, for every service that takes an image.

A tar is checked before anything is loaded into the engine: it is a tar (plain or
gzipped), holds ``manifest.json``, the config and every layer the manifest names, and at
least one tag. :func:`inspect_image_tar` also reads the image's config and digest (the
sha256 of the config blob, which is also the image id the engine gives it) and refuses a
tar over a size limit, or an image that carries Workbench's own labels; nothing is loaded
or unpacked.

    tar = inspect_image_tar(Path("train-bayes.tar"), max_bytes=MAX_IMAGE_BYTES)
    tar.digest            # "sha256:9f86d0..."
    tar.config.cmd        # ["python", "/app/train.py"]

Images belong to their owner (shared/SECURITY.md): ``docker load`` applies the tags written
inside the tar, whatever the caller intended, so a tar tagged like a preset image would
take the preset's tag for every user. :func:`untagged_stream` gives the engine the tar
without its tags (the backends load by id), and the services then tag the image under
names of the owner's own (``workbench/env-<id>:...``, ``workbench/algo-<id>-<kind>:...``).
A pulled reference may not name Workbench's namespace (:func:`check_reference`), and an
image's ``LABEL``s, which Docker merges into its containers' labels, may not use
Workbench's (:func:`check_labels`): labels are how Workbench marks its own runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import queue
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter

from workbench.errors import (
    ArchiveLimitExceeded,
    CorruptArchive,
    InvalidInput,
    UnsupportedArchive,
)
from workbench.schemas.images import ImageConfig, ImageReference

#: the largest image tar accepted unless a service is given another limit
MAX_IMAGE_BYTES = 16 * 1024**3
_MANIFEST_LIMIT = 16 * 1024**2
IMAGE_REFERENCE: TypeAdapter[str] = TypeAdapter(ImageReference)
SAVE_HINT = "make one with `docker save -o NAME.tar IMAGE:TAG`"
#: the labels and the image names that are Workbench's alone; ``workbench.base.*`` and
#: ``workbench.env.*`` describe the base image and the environment an image was built on
#: (set by scripts/base-image and the environment builder, inherited by every image built
#: FROM one), and are never read to find a run
RESERVED_LABEL_PREFIX = "workbench."
DESCRIPTIVE_LABEL_PREFIXES = ("workbench.base.", "workbench.env.")
RESERVED_NAMESPACE = "workbench/"
#: the registry hosts an unqualified name means (``workbench/x`` is ``docker.io/workbench/x``)
_DEFAULT_REGISTRIES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
#: the size of the pieces :func:`untagged_stream` hands the engine
_STREAM_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImageTar:
    """One image in a ``docker save`` tar, as read without loading it."""

    tags: tuple[str, ...]
    #: ``sha256:<hex>`` of the config blob: the image id the engine will give it
    digest: str
    config: ImageConfig
    #: the tar's size in bytes
    size: int
    layers: int


def inspect_image_tar(path: Path, *, max_bytes: int = MAX_IMAGE_BYTES) -> ImageTar:
    """The one image a ``docker save`` tar holds, its config and digest, once it checks out;
    :class:`ArchiveLimitExceeded` for a tar over ``max_bytes``. Nothing is loaded."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedArchive(f"{path.name} cannot be read ({exc}).") from exc
    if size > max_bytes:
        raise ArchiveLimitExceeded(
            f"{path.name} is {size / 1e9:.2f} GB, over the limit of {max_bytes / 1e9:.2f} GB "
            "for an image; make the image smaller (a slimmer base, fewer layers, no caches).",
            size=size,
            limit=max_bytes,
        )
    with _open(path) as (archive, members):
        manifest = _checked_manifest(archive, members)
        if len(manifest) != 1:
            raise InvalidInput(
                f"The tar holds {len(manifest)} images; an algorithm's image is one: save "
                "only that one (`docker save -o NAME.tar IMAGE:TAG`).",
                images=len(manifest),
            )
        [entry] = manifest
        blob = _read(archive, members[entry["Config"].removeprefix("./")], "config")
    config = _config(blob)
    check_labels(config.labels)
    return ImageTar(
        tags=tuple(_tags(manifest)),
        digest=f"sha256:{hashlib.sha256(blob).hexdigest()}",
        config=config,
        size=size,
        layers=len(entry.get("Layers") or ()),
    )


def check_labels(labels: Mapping[str, str]) -> None:
    """:class:`InvalidInput` for an image that carries Workbench's labels (``workbench.*``
    but the descriptive ones, :data:`DESCRIPTIVE_LABEL_PREFIXES`): Docker merges an image's labels
    into its containers', where Workbench finds its runs, so such an image could pass its
    containers off as another user's service replicas."""
    reserved = sorted(
        key
        for key in labels
        if key.lower().startswith(RESERVED_LABEL_PREFIX)
        and not key.lower().startswith(DESCRIPTIVE_LABEL_PREFIXES)
    )
    if reserved:
        raise InvalidInput(
            f"The image carries the label{'s' if len(reserved) > 1 else ''} "
            f"{', '.join(reserved[:5])}: labels starting with {RESERVED_LABEL_PREFIX!r} are "
            "Workbench's own, which it sets on the containers it runs. Remove those LABEL "
            "lines from the Dockerfile (or rename them), build and save the image again.",
            field="labels",
            labels=reserved[:20],
        )


def check_reference(reference: str) -> str:
    """``reference`` once it is a valid image reference outside Workbench's namespace
    (``workbench/...``, where the presets and every owner's images are tagged: a pull
    would take one of those tags for everyone); :class:`InvalidInput` otherwise."""
    try:
        reference = IMAGE_REFERENCE.validate_python(reference)
    except ValueError as exc:
        raise InvalidInput(
            f"{reference!r} is not an image reference like registry.example/team/name:tag.",
            field="reference",
        ) from exc
    name = reference.lower()
    for registry in _DEFAULT_REGISTRIES:
        name = name.removeprefix(registry)
    if name.removeprefix("library/").startswith(RESERVED_NAMESPACE):
        raise InvalidInput(
            f"{reference!r} names Workbench's own namespace ({RESERVED_NAMESPACE}...), where "
            "the preset images and each owner's images are tagged; pull the image under "
            "another name (push it to your registry as team/name:tag, say).",
            field="reference",
        )
    return reference


def untagged_stream(path: Path) -> Iterator[bytes]:
    """The one image of the ``docker save`` tar at ``path`` (plain or gzipped), checked as
    :func:`inspect_image_tar` checks it, as a new plain tar for ``docker load``: its config
    (whose sha256 must still be the digest checked) and the layers its manifest names, and
    a ``manifest.json`` written here with no tags. Nothing else of the tar reaches the
    engine: no tag, no legacy ``repositories`` file, no second manifest (Docker's untar
    cleans ``x/../manifest.json`` into ``manifest.json``: such names are refused outright).
    ``docker load`` of it tags nothing ("Loaded image ID: ..."). Written by a thread as the
    engine reads, a piece at a time: nothing is unpacked on disk and at most a few pieces
    are held in memory. :class:`CorruptArchive` when the tar cannot be read or changed."""
    plan = _load_plan(path)
    pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                pieces.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Stopped

    def produce() -> None:
        try:
            _write_untagged(path, plan, _PutWriter(put))
            put(None)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the reader, which raises it
            try:
                put(exc)
            except _Stopped:
                return

    thread = threading.Thread(target=produce, name="untagged-tar", daemon=True)
    thread.start()
    try:
        while True:
            item = pieces.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                if isinstance(item, CorruptArchive):
                    raise item
                raise CorruptArchive(
                    f"The tar could not be read while loading ({item}); {SAVE_HINT} again."
                ) from item
            yield item
    finally:
        stop.set()


class _Stopped(Exception):
    """The reader of :func:`untagged_stream` went away."""


class _PutWriter(io.RawIOBase):
    def __init__(self, put: Callable[[bytes], None]) -> None:
        self._put = put

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._put(bytes(data))
        return len(data)


@dataclass(frozen=True)
class _LoadPlan:
    """What of a checked tar goes to the engine (:func:`untagged_stream`)."""

    entry: dict[str, Any]  # the manifest's one entry, tags removed
    digest: str  # the config blob's sha256, as checked
    config: str  # the config's member name
    #: the members copied: the config, the layers, links among them to their targets
    members: frozenset[str]
    #: the folders above them
    folders: frozenset[str]


def _load_plan(path: Path) -> _LoadPlan:
    with _open(path) as (archive, members):
        manifest = _checked_manifest(archive, members)
        if len(manifest) != 1:
            raise InvalidInput(
                f"The tar holds {len(manifest)} images; an image is uploaded alone: {SAVE_HINT}.",
                images=len(manifest),
            )
        entry = {
            "Config": manifest[0]["Config"],
            "RepoTags": None,
            "Layers": list(manifest[0].get("Layers") or []),
        }
        config = entry["Config"].removeprefix("./")
        digest = hashlib.sha256(_read(archive, members[config], "config")).hexdigest()
        wanted = {config, *(layer.removeprefix("./") for layer in entry["Layers"])}
        for name in list(wanted):
            member = members[name]
            if member.issym():  # docker save links a layer it holds twice to the first
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.linkname)
                )
                found = members.get(target)
                if target.startswith("../") or found is None or not found.isfile():
                    raise CorruptArchive(
                        f"The tar's {name} links to {member.linkname}, which is not a file of "
                        f"the tar; {SAVE_HINT}."
                    )
                wanted.add(target)
            elif not member.isfile():
                raise CorruptArchive(f"The tar's {name} is not a file; {SAVE_HINT}.")
    folders = {
        "/".join(name.split("/")[:i]) for name in wanted for i in range(1, name.count("/") + 1)
    }
    return _LoadPlan(entry, f"sha256:{digest}", config, frozenset(wanted), frozenset(folders))


def _write_untagged(path: Path, plan: _LoadPlan, out: IO[bytes]) -> None:
    seen: set[str] = set()
    with (
        tarfile.open(path, "r|*") as source,
        tarfile.open(fileobj=out, mode="w|", bufsize=_STREAM_CHUNK) as target,
    ):
        for member in source:
            name = _member_name(member)
            if name in seen and not member.isdir():
                raise CorruptArchive(f"The tar holds {name} twice; {SAVE_HINT}.")
            seen.add(name)
            if (name in plan.folders and member.isdir()) or (
                name in plan.members and member.issym()
            ):
                target.addfile(member)
            elif name == plan.config:
                blob = _read(source, member, "config")
                if f"sha256:{hashlib.sha256(blob).hexdigest()}" != plan.digest:
                    raise CorruptArchive(
                        f"The tar's config changed since it was checked; {SAVE_HINT}."
                    )
                target.addfile(member, io.BytesIO(blob))
            elif name in plan.members and member.isfile():
                target.addfile(member, source.extractfile(member))
        missing = plan.members - seen
        if missing:
            raise CorruptArchive(
                f"The tar no longer holds {', '.join(sorted(missing)[:3])}; {SAVE_HINT}."
            )
        data = json.dumps([plan.entry]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mode = len(data), 0o644
        target.addfile(info, io.BytesIO(data))


def _member_name(member: tarfile.TarInfo) -> str:
    """A member's name without a leading ``./``; :class:`CorruptArchive` for a name that
    is not already clean (absolute, with ``..``, ``.`` or empty parts): the engine cleans
    names, so ``x/../manifest.json`` would land on ``manifest.json``."""
    name = member.name.removeprefix("./").rstrip("/")
    if (
        not name
        or name.startswith("/")
        or posixpath.normpath(name) != name
        or ".." in name.split("/")
    ):
        raise CorruptArchive(
            f"The tar holds a member named {member.name!r}, which docker save never writes "
            f"(absolute, or with '.', '..' or empty parts); {SAVE_HINT}.",
            member=member.name[:200],
        )
    return name


@contextmanager
def _open(path: Path) -> Iterator[tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]]:
    """The tar and its members by name; a damaged tar is :class:`CorruptArchive`."""
    try:
        is_tar = tarfile.is_tarfile(path)
    except OSError as exc:
        raise UnsupportedArchive(f"The upload cannot be read ({exc}); upload it again.") from exc
    if not is_tar:
        raise UnsupportedArchive(
            f"The upload is not a tar archive; an image is uploaded as a docker save tar: "
            f"{SAVE_HINT}.",
        )
    try:
        with tarfile.open(path) as archive:
            members: dict[str, tarfile.TarInfo] = {}
            for member in archive.getmembers():
                name = _member_name(member)
                if name in members and not (member.isdir() and members[name].isdir()):
                    raise CorruptArchive(f"The tar holds {name} twice; {SAVE_HINT}.")
                members[name] = member
            yield archive, members
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise CorruptArchive(
            f"The tar is damaged ({exc}); {SAVE_HINT} again and use that."
        ) from exc


def _checked_manifest(
    archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo]
) -> list[dict[str, Any]]:
    manifest = _manifest(archive, members)
    missing = sorted(
        {
            name
            for entry in manifest
            for name in (entry["Config"], *entry.get("Layers", []))
            if name.removeprefix("./") not in members
        }
    )
    if missing:
        raise CorruptArchive(
            f"The tar's manifest.json names files it does not hold: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}. It is incomplete or was not made by "
            f"docker save; {SAVE_HINT} and use that.",
            missing=missing[:20],
        )
    if not _tags(manifest):
        raise InvalidInput(
            "The image in the tar has no tag (RepoTags is empty): it was saved by image id. "
            "Save it by name, `docker save -o NAME.tar IMAGE:TAG`, so it can be referred to.",
            field="RepoTags",
        )
    return manifest


def _tags(manifest: list[dict[str, Any]]) -> list[str]:
    return [tag for entry in manifest for tag in entry.get("RepoTags") or ()]


def _manifest(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> list[Any]:
    member = members.get("manifest.json")
    if member is None or not member.isfile():
        raise CorruptArchive(
            f"The tar holds no manifest.json, so it is not a docker save tar; {SAVE_HINT} "
            "(a tar of a root filesystem is not an image).",
        )
    try:
        manifest = json.loads(_read(archive, member, "manifest.json"))
    except ValueError as exc:
        raise CorruptArchive(f"The tar's manifest.json is not valid JSON ({exc}).") from exc
    if not _valid_manifest(manifest):
        raise CorruptArchive(
            "The tar's manifest.json is not a docker save manifest (a list of entries with "
            f"Config, Layers and RepoTags); {SAVE_HINT}."
        )
    return manifest


def _valid_manifest(manifest: Any) -> bool:
    return (
        isinstance(manifest, list)
        and bool(manifest)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("Config"), str)
            and isinstance(entry.get("Layers", []), list)
            and all(isinstance(layer, str) for layer in entry.get("Layers", []))
            and isinstance(entry.get("RepoTags") or [], list)
            and all(isinstance(tag, str) for tag in entry.get("RepoTags") or [])
            for entry in manifest
        )
    )


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo, what: str) -> bytes:
    """A small member's bytes (a manifest, a config)."""
    if not member.isfile():
        raise CorruptArchive(f"The tar's {what} ({member.name}) is not a file; {SAVE_HINT}.")
    if member.size > _MANIFEST_LIMIT:
        raise CorruptArchive(f"The tar's {what} is implausibly large; is it an image?")
    data: IO[bytes] | None = archive.extractfile(member)
    return data.read() if data is not None else b""


def _config(blob: bytes) -> ImageConfig:
    """The run settings of an image config blob (``{"config": {"Cmd": [...], ...}}``)."""
    try:
        document = json.loads(blob)
    except ValueError as exc:
        raise CorruptArchive(f"The image's config is not valid JSON ({exc}); {SAVE_HINT}.") from exc
    config = document.get("config") if isinstance(document, dict) else None
    config = config if isinstance(config, dict) else {}
    try:
        return ImageConfig(
            entrypoint=_strings(config.get("Entrypoint")),
            cmd=_strings(config.get("Cmd")),
            env=dict(item.split("=", 1) for item in config.get("Env") or () if "=" in item),
            exposed_ports=sorted(
                {int(key.split("/", 1)[0]) for key in config.get("ExposedPorts") or {}}
            ),
            workdir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
            labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise CorruptArchive(f"The image's config cannot be read ({exc}); {SAVE_HINT}.") from exc


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(item) for item in value]


def image_config(
    entrypoint: Iterable[str] | None,
    cmd: Iterable[str] | None,
    env: dict[str, str],
    exposed_ports: Iterable[int],
    labels: Mapping[str, str] | None = None,
) -> ImageConfig:
    """An :class:`ImageConfig` from what a backend's ``inspect_image`` reports."""
    return ImageConfig(
        entrypoint=list(entrypoint) if entrypoint is not None else None,
        cmd=list(cmd) if cmd is not None else None,
        env=dict(env),
        exposed_ports=sorted(exposed_ports),
        labels=dict(labels or {}),
    )
