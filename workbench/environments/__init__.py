"""Environments: preset base environments (their definitions, ``envs/<name>/env.toml``, in
``definition``), their image builds (``builder``) and the environment registry
(``service``; REST bodies in ``schemas``).

    from workbench.backends.docker import DockerBackend
    from workbench.environments.builder import EnvBuilder
    from workbench.environments.definition import load_definition

    builder = EnvBuilder(DockerBackend.from_env(), wheels_dir=Path("wheelhouse"))
    pytorch = load_definition(Path("envs"), "pytorch")
    for line in builder.build(pytorch, "workbench/env-pytorch:latest"):
        print(line)

The same from a shell: ``workbench environment build-local pytorch --wheels wheelhouse/``.
Every image starts ``FROM`` the local base image that ``scripts/base-image`` makes.
"""
