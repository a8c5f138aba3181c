"""What can go wrong with an environment definition or its build.

Each class builds a message that says what happened and what to do next::

    WorkbenchError
    ├── InvalidInput
    │   ├── EnvDefinitionInvalid      422 env_definition_invalid
    │   └── LocalWheelMissing         422 local_wheel_missing
    ├── NotFound
    │   └── EnvNotFound               404 env_not_found
    └── Conflict
        ├── BaseImageMissing          409 base_image_missing
        └── WorkbenchWheelUnavailable 409 workbench_wheel_unavailable

A failed ``docker build`` (a pip install that fails, say) is the backend's
:class:`~workbench.backends.base.BuildFailed`, whose message ends with the build's last lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workbench.errors import Conflict, InvalidInput, NotFound


class EnvDefinitionInvalid(InvalidInput):
    """An ``env.toml`` that does not parse or breaks the schema."""

    status = 422
    code = "env_definition_invalid"

    def __init__(self, path: Path, problems: Iterable[str]) -> None:
        problems = list(problems)
        super().__init__(
            f"{path} is not a valid environment definition: "
            + "; ".join(problems)
            + ". Fix the file (envs/README.md describes the format).",
            path=str(path),
            problems=problems,
        )


class EnvNotFound(NotFound):
    code = "env_not_found"

    def __init__(self, name: str, root: Path, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f"there is no environment {name!r} in {root}; "
            f"choose one of: {', '.join(known) or '(none defined)'}.",
            kind="environment",
            id=name,
            known=known,
        )


class LocalWheelMissing(InvalidInput):
    """A package the definition takes from local wheels (torch) has no wheel to take."""

    status = 422
    code = "local_wheel_missing"

    def __init__(self, env: str, requirement: str, wheels_dir: Path | None) -> None:
        where = (
            f"the wheels folder {wheels_dir} holds no wheel matching it"
            if wheels_dir
            else "no wheels folder was given"
        )
        super().__init__(
            f"environment {env!r} installs {requirement} from a local wheel, never from a "
            f"download, but {where}. Pass the folder that holds it with --wheels DIR "
            "(EnvBuilder(wheels_dir=...)); `pip config list` shows this machine's find-links.",
            env=env,
            requirement=requirement,
        )


class BaseImageMissing(Conflict):
    code = "base_image_missing"

    def __init__(self, image: str) -> None:
        super().__init__(
            f"the base image {image} does not exist on this engine (no registry is pulled "
            "from); make it with scripts/base-image (debootstrap + docker import, about a "
            "minute), then build again.",
            image=image,
        )


class WorkbenchWheelUnavailable(Conflict):
    code = "workbench_wheel_unavailable"
