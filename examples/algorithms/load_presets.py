"""Register the three example algorithms as preset algorithms, build their images and put
them online, in the local registry.

Used by ``scripts/start`` so a fresh Workbench can train models at once::

    python examples/algorithms/load_presets.py --owner "$USER"

Each ``<name>/algorithm.json`` becomes a preset (admins only; idempotent). With a Docker
Engine, each ``<name>/train`` and ``<name>/predict`` folder is built FROM the preset
environment its Dockerfile names (``workbench/env-python:latest`` or
``workbench/env-pytorch:latest``; built first when missing, which takes minutes and, for
PyTorch, the torch wheel folder ``WORKBENCH_ENV_WHEELS``), saved as a ``docker save`` tar
and loaded through the same checks as an upload, then the algorithm goes online. An
algorithm whose images are ready and online is left alone. Without Docker only the
settings are registered (drafts), and the script says so.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.backends.base import Backend
from workbench.config import Settings, default_owner
from workbench.environments.service import PRESET_TAG
from workbench.errors import BackendError, WorkbenchError
from workbench.services import Workbench
from workbench.users import Actor

HERE = Path(__file__).resolve().parent
#: the default of a Dockerfile's ``ARG WORKBENCH_ENV_IMAGE=...``
_ENV_ARG = re.compile(r"^ARG WORKBENCH_ENV_IMAGE=(\S+)", re.MULTILINE)


def environment_image(wb: Workbench, actor: Actor, dockerfile: Path) -> str:
    """The preset environment image the Dockerfile starts from, built when missing."""
    match = _ENV_ARG.search(dockerfile.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"{dockerfile} has no `ARG WORKBENCH_ENV_IMAGE=<image>` default")
    image = match.group(1)
    try:
        wb.backend().inspect_image(image)
        return image
    except BackendError:
        pass
    env = next(
        (
            e
            for e in wb.environments.list(actor)
            if PRESET_TAG.format(definition=e.definition) == image
        ),
        None,
    )
    if env is None:
        raise SystemExit(f"no preset environment builds {image}; is envs/ complete?")
    print(f"  building the environment {env.name} ({image}); this takes minutes")
    wb.environments.build(actor, env.id)
    return image


def load_images(wb: Workbench, actor: Actor, algo: AlgorithmInfo, backend: Backend) -> None:
    for kind in ("train", "predict"):
        folder = HERE / algo.name / kind
        image = environment_image(wb, actor, folder / "Dockerfile")
        tag = f"workbench/example-{algo.name}-{kind}:latest"
        for _ in backend.build_image(folder, tag, build_args={"WORKBENCH_ENV_IMAGE": image}):
            pass
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / f"{kind}-{algo.name}.tar"
            backend.save_image(tag, tar)
            backend.remove_image(tag)
            with tar.open("rb") as f:
                stored = wb.store.save_stream(f, wb.algorithms.max_image_bytes)
            try:
                queued = wb.algorithms.upload_image(actor, algo.id, kind, stored)
            finally:
                stored.path.unlink(missing_ok=True)
        job_id = getattr(queued, kind).job_id
        assert job_id is not None
        wb.jobs.wait(job_id, check=True)  # the load, done here (no server runs it)
        loaded = wb.algorithms.get(actor, algo.id)
        print(f"  {kind}: {getattr(loaded, kind).image_ref}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owner", default=default_owner(), help="an admin: the presets' owner")
    args = parser.parse_args(argv)
    wb = Workbench.from_settings(Settings.from_env())
    failed = 0
    try:
        wb.registry.check_schema()
        actor = wb.users.ensure_owner(args.owner)
        wb.environments.sync_presets(actor)
        presets = wb.algorithms.sync_presets(actor, HERE)
        backend = wb.backend()
        if not backend.saves_images:
            print(
                f"registered {', '.join(a.name for a in presets)} as drafts; their images need "
                f"a Docker Engine (this server's backend is {backend.name!r})"
            )
            return 0
        for algo in presets:
            if algo.state == "online" and algo.train.state == algo.predict.state == "ready":
                print(f"{algo.name}: online (preset {algo.id})")
                continue
            print(f"{algo.name}: building its images")
            try:
                if algo.state == "online":
                    wb.algorithms.take_offline(actor, algo.id)
                load_images(wb, actor, algo, backend)
                wb.algorithms.publish(actor, algo.id)
                print(f"{algo.name}: online (preset {algo.id})")
            except WorkbenchError as exc:
                failed += 1
                print(f"{algo.name}: not online: {exc.message}")
    finally:
        wb.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
