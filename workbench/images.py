"""``docker save`` tars and ``docker pull``, for every service that takes an image.

A tar is checked before anything is loaded into the engine: it is a tar (plain or
gzipped), holds ``manifest.json``, the config and every layer the manifest names, and at
least one tag. :func:`inspect_image_tar` also reads the image's config and digest (the
sha256 of the config blob, which is also the image id the engine gives it) and refuses a
tar over a size limit; nothing is loaded or unpacked.

    tar = inspect_image_tar(Path("train-bayes.tar"), max_bytes=MAX_IMAGE_BYTES)
    tar.digest            # "sha256:9f86d0..."
    tar.config.cmd        # ["python", "/app/train.py"]
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from workbench.errors import (
    ArchiveLimitExceeded,
    CorruptArchive,
    InvalidInput,
    UnsupportedArchive,
)

#: the largest image tar accepted unless a service is given another limit
MAX_IMAGE_BYTES = 16 * 1024**3
_MANIFEST_LIMIT = 16 * 1024**2
#: an image reference as ``docker pull`` takes it: ``[host[:port]/]path[:tag][@digest]``
ImageReference = Annotated[
    str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
]
IMAGE_REFERENCE: TypeAdapter[str] = TypeAdapter(ImageReference)
SAVE_HINT = "make one with `docker save -o NAME.tar IMAGE:TAG`"


class ImagePull(BaseModel):
    """The body of a pull: an environment's image or an algorithm's."""

    model_config = ConfigDict(extra="forbid")

    reference: ImageReference


class ImageConfig(BaseModel):
    """What an image runs: its own entrypoint, command, environment, ports, folder, user."""

    model_config = ConfigDict(frozen=True)

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    exposed_ports: list[int] = Field(default_factory=list)
    workdir: str = ""
    user: str = ""

    @property
    def has_command(self) -> bool:
        """Whether the image runs something of its own (an ENTRYPOINT or a CMD)."""
        return bool(self.entrypoint or self.cmd)


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


def read_image_tar(path: Path) -> list[str]:
    """The tags of a ``docker save`` tar (plain or gzipped, one image or several), once it
    checks out. Nothing is loaded or unpacked."""
    with _open(path) as (archive, members):
        manifest = _checked_manifest(archive, members)
    return _tags(manifest)


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
    return ImageTar(
        tags=tuple(_tags(manifest)),
        digest=f"sha256:{hashlib.sha256(blob).hexdigest()}",
        config=_config(blob),
        size=size,
        layers=len(entry.get("Layers") or ()),
    )


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
            yield archive, {m.name.removeprefix("./"): m for m in archive.getmembers()}
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
) -> ImageConfig:
    """An :class:`ImageConfig` from what a backend's ``inspect_image`` reports."""
    return ImageConfig(
        entrypoint=list(entrypoint) if entrypoint is not None else None,
        cmd=list(cmd) if cmd is not None else None,
        env=dict(env),
        exposed_ports=sorted(exposed_ports),
    )
