"""How long it takes to get a dataset archive into the Workbench, next to its floors and peers.

Measured in one run, on the same archive, median of --repeat runs each:

- floor, unzip: ``zipfile.extractall`` of the archive in-process (no checks at all);
- floor, safe unpack + validate: Workbench's own ``extract_archive`` + ``inspect_dataset``
  in-process (what an upload must do anyway, without HTTP and the registry);
- Workbench upload: ``WorkbenchClient.datasets.upload`` to a real server: streamed PUT,
  safe unpack, validation, statistics, registry switch-over;
- peer, JupyterLab upload: the same file through the Jupyter contents API the way
  JupyterLab's file browser sends it (1 MiB base64 chunks in JSON), which only stores
  the file and checks nothing.

    .venv/bin/python benchmarks/dataset_upload.py [--images 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.server import live_server  # noqa: E402
from workbench.client import WorkbenchClient  # noqa: E402
from workbench.config import Settings  # noqa: E402
from workbench.datasets.archives import dataset_root, extract_archive  # noqa: E402
from workbench.datasets.formats import inspect_dataset  # noqa: E402
from workbench.datasets.types import ArchiveLimits  # noqa: E402
from workbench.enums import DatasetFormat, Purpose, Role  # noqa: E402
from workbench.services import Workbench  # noqa: E402

CHUNK = 1024 * 1024


def make_archive(path: Path, images: int, classes: int = 10) -> Path:
    """A `dir` image-classification zip of distinct 32x32 PNGs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(images):
            img = Image.frombytes("L", (32, 32), bytes((i * 7 + j) % 256 for j in range(1024)))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            zf.writestr(f"data/c{i % classes}/{i:06d}.png", buf.getvalue())
    return path


def timed(fn: Callable[[int], object], repeat: int) -> list[float]:
    times = []
    for run in range(repeat):
        start = time.perf_counter()
        fn(run)
        times.append(time.perf_counter() - start)
    return times


def contents_upload(url: str, token: str, archive: Path, name: str) -> None:
    """JupyterLab's upload: PUT /api/contents/<name>, base64 chunks numbered 1, 2, ... -1."""
    size = archive.stat().st_size
    chunks = max(1, -(-size // CHUNK))
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http, archive.open("rb") as f:
        for number in range(1, chunks + 1):
            body = {
                "type": "file",
                "format": "base64",
                "name": name,
                "path": name,
                "content": base64.b64encode(f.read(CHUNK)).decode(),
            }
            if chunks > 1:
                body["chunk"] = -1 if number == chunks else number
            http.put(f"api/contents/{name}", json=body).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archive = make_archive(tmp / "bench.zip", args.images)
        size_mb = archive.stat().st_size / 1e6
        print(f"archive: {args.images} PNG images in 10 classes, {size_mb:.1f} MB zipped")

        def unzip(run: int) -> None:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp / f"unzip-{run}")

        def safe_unpack_validate(run: int) -> None:
            dest = tmp / f"safe-{run}"
            extract_archive(archive, dest, ArchiveLimits())
            report = inspect_dataset(dataset_root(dest), DatasetFormat.DIR, Purpose.IMAGE).report
            assert report.ok

        results = {
            "floor: zipfile.extractall": timed(unzip, args.repeat),
            "floor: safe unpack + validate (in-process)": timed(safe_unpack_validate, args.repeat),
        }

        with live_server(tmp / "server") as server:
            wb = Workbench.from_settings(Settings(home=server.home))
            user = wb.users.add_user("bench", role=Role.ADMIN)
            token = wb.users.create_token(user.id, "bench").secret
            wb.close()
            client = WorkbenchClient(server.url, token, timeout=300)
            ds = client.datasets.create(
                name="bench", purpose="image", sub_purpose="classification", format="dir"
            )

            def workbench_upload(_run: int) -> None:
                info = client.datasets.upload(ds.id, "train", archive)
                assert info.splits["train"].statistics.samples == args.images

            def jupyter_upload(run: int) -> None:
                contents_upload(server.url, server.jupyter_token, archive, f"bench-{run}.zip")

            results["Workbench REST upload (end to end)"] = timed(workbench_upload, args.repeat)
            results["peer: JupyterLab contents-API upload"] = timed(jupyter_upload, args.repeat)
            client.close()

    floor = statistics.median(results["floor: safe unpack + validate (in-process)"])
    print(f"\n{'':44} {'median s':>9} {'MB/s':>7} {'images/s':>9} {'vs floor':>9}")
    for name, times in results.items():
        med = statistics.median(times)
        print(
            f"{name:44} {med:9.3f} {size_mb / med:7.1f} {args.images / med:9.0f} "
            f"{med / floor:8.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
