"""Preset base environments: their definitions (``envs/<name>/env.toml``) and image builds.

    from workbench.backends.docker import DockerBackend
    from workbench.environments import EnvBuilder, load_definition

    builder = EnvBuilder(DockerBackend.from_env(), wheels_dir=Path("wheelhouse"))
    pytorch = load_definition(Path("envs"), "pytorch")
    for line in builder.build(pytorch, "workbench/env-pytorch:latest"):
        print(line)

The same from a shell: ``workbench environment build-local pytorch --wheels wheelhouse/`` (or
``python -m workbench.environments build-local ...``).
Every image starts ``FROM`` the local base image that ``scripts/base-image`` makes.
"""

from workbench.environments.builder import (
    DEFAULT_BASE_IMAGE,
    HASH_VARIABLE,
    BuildContext,
    EnvBuilder,
    build_workbench_wheel,
    server_pins,
)
from workbench.environments.definition import EnvDefinition, list_definitions, load_definition

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "HASH_VARIABLE",
    "BuildContext",
    "EnvBuilder",
    "EnvDefinition",
    "build_workbench_wheel",
    "list_definitions",
    "load_definition",
    "server_pins",
]
