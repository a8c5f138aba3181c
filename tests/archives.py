"""Builders of small (good and bad) dataset archives for the tests."""

from __future__ import annotations

import io
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
