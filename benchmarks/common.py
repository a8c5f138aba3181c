"""What the benchmarks that run envs/python on the Docker Engine share: their set-up, the
environment and model version they register, and their table of times against the floor.

Imported by the scripts of this folder after they have put the repository on
``sys.path`` (for ``tests`` and ``workbench``).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from tests.docker_fixtures import PYTHON_ENV_TAG, python_env_image_for
from workbench.backends.docker import DockerBackend
from workbench.models.schemas import ModelVersionInfo, NewVersion
from workbench.registry import models as m
from workbench.services import Workbench


def docker_benchmark(description: str) -> tuple[int, DockerBackend]:
    """The ``--repeat`` asked for (default 5) and the Docker Engine, with envs/python
    built on it if it is not yet."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    backend = DockerBackend.from_env()
    python_env_image_for(backend)
    return args.repeat, backend


def python_environment(wb: Workbench, owner_id: int) -> int:
    """The id of a new environment ``python`` of ``owner_id`` on the envs/python image."""
    with wb.registry.session() as s:
        env = m.Environment(
            name="python", framework="python", image_ref=PYTHON_ENV_TAG, owner_id=owner_id
        )
        s.add(env)
        s.flush()
        return env.id


def register_cnn(wb: Workbench, owner_id: int, folder: Path) -> ModelVersionInfo:
    """The files of ``folder`` (moved) as a version of the private model ``cnn`` of
    ``owner_id``, served from envs/python."""
    env_id = python_environment(wb, owner_id)
    with wb.registry.session() as s:
        model_id = wb.model_versions.model_for(
            s, name="cnn", owner_id=owner_id, visibility="private"
        ).id
    return wb.model_versions.register_version(
        model_id, folder, NewVersion(environment_id=env_id), staging="bench"
    )


def print_against_floor(results: dict[str, list[float]], floor_name: str) -> None:
    """Each timing's median, min and max, and its median over the floor's."""
    floor = statistics.median(results[floor_name])
    width = max(map(len, results)) + 1
    print(f"\n{'':{width}} {'median s':>9} {'min s':>7} {'max s':>7} {'vs floor':>9}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:{width}} {med:9.2f} {min(times):7.2f} {max(times):7.2f} {med / floor:8.2f}x")
