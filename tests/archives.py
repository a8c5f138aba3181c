"""Builders of small (good and bad) dataset archives for the tests, and of image tars a
real engine loads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from PIL import Image


def png(value: int, size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, color=value).save(buf, format="PNG")
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def image_classes(path: Path, counts: dict[str, int], top: str = "data") -> Path:
    """A `dir` image-classification zip: <top>/<class>/<n>.png."""
    members = {
        f"{top}/{label}/{i:03d}.png": png(10 * i % 255)
        for label, n in counts.items()
        for i in range(n)
    }
    return write_zip(path, members)


def zip_slip(path: Path) -> Path:
    return write_zip(path, {"data/a/1.png": png(1), "../../evil.txt": b"owned"})


def zip_symlink(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/a/1.png", png(1))
        info = zipfile.ZipInfo("data/a/link.png")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return path


def zip_bomb(path: Path, megabytes: int = 60) -> Path:
    """A highly compressible member far above the tests' 50 MiB unpacked limit."""
    chunk = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("data/a/1.png", "w") as f:
        for _ in range(megabytes):
            f.write(chunk)
    return path


def truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def tar_with_device(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("data/a/dev")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tf.addfile(info)
    return path


def loadable_image_tar(path: Path, megabytes: int) -> tuple[Path, str, str]:
    """A ``docker save`` tar of one image whose single layer is ``megabytes`` of random
    bytes (so the engine has none of it); the tar, the image's id and its tag."""
    work = path.parent / f"{path.stem}-layer"
    work.mkdir(parents=True)
    blob = work / "blob"
    with blob.open("wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1024 * 1024))
    layer = work / "layer.tar"
    with tarfile.open(layer, "w") as t:
        t.add(blob, arcname="blob")
    blob.unlink()
    digest = hashlib.sha256()
    with layer.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/blob"], "Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
        }
    ).encode()
    image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
    tag = f"wbtest/big-{image_id[7:15]}:1"
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": ["l1/layer.tar"]}]
    with tarfile.open(path, "w") as t:
        t.add(layer, arcname="l1/layer.tar")
        for name, data in (("config.json", config), ("manifest.json", json.dumps(manifest))):
            raw = data if isinstance(data, bytes) else data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
    shutil.rmtree(work)
    return path, image_id, tag
