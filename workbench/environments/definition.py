"""Environment definitions: the declarative ``envs/<name>/env.toml`` files.

::

    name = "pytorch"                      # the folder's name
    description = "PyTorch (CPU) with JupyterLab, NumPy, pandas and scikit-learn."
    framework = "pytorch"
    framework_version = "2.13.0"
    device = "cpu"                        # "cpu" or "gpu"

    [python]
    packages = ["jupyterlab==4.6.6", "torch==2.13.0", ...]   # every one pinned with ==
    local_wheels = ["torch"]              # never downloaded: taken from the wheels folder

Loading validates everything and raises :class:`EnvDefinitionInvalid` naming the file and
each problem.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import EnvDefinitionInvalid, EnvNotFound

DEFINITION_FILE = "env.toml"
#: what every environment must pin, because every workspace runs it
REQUIRED_PACKAGES = ("jupyterlab",)
#: what a definition says about its image (an environment repeats it, the image's labels
#: carry it)
DESCRIBED = ("framework", "framework_version", "device")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class PythonPackages(BaseModel):
    """The ``[python]`` table: what pip installs into the environment's venv."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    packages: tuple[str, ...] = Field(min_length=1)
    #: names of packages (among ``packages``) installed only from the builder's wheels folder
    local_wheels: tuple[str, ...] = ()

    @field_validator("packages")
    @classmethod
    def _pinned(cls, packages: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[NormalizedName] = set()
        for text in packages:
            req = _requirement(text)
            specs = list(req.specifier)
            if req.url or req.marker or len(specs) != 1 or specs[0].operator != "==":
                raise ValueError(f"{text!r} must be pinned exactly, like 'numpy==2.4.6'")
            if "*" in specs[0].version:
                raise ValueError(f"{text!r} must pin one version, not a wildcard")
            name = canonicalize_name(req.name)
            if name in seen:
                raise ValueError(f"{req.name!r} is listed twice")
            seen.add(name)
        missing = [p for p in REQUIRED_PACKAGES if p not in seen]
        if missing:
            raise ValueError(f"every environment must pin {', '.join(missing)}")
        return packages

    @model_validator(mode="after")
    def _local_wheels_are_packages(self) -> PythonPackages:
        names = {canonicalize_name(_requirement(p).name) for p in self.packages}
        stray = [n for n in self.local_wheels if canonicalize_name(n) not in names]
        if stray:
            raise ValueError(f"local_wheels {stray} must also be listed in packages")
        return self

    def requirements(self) -> list[Requirement]:
        return [_requirement(p) for p in self.packages]

    def local_requirements(self) -> list[Requirement]:
        local = {canonicalize_name(n) for n in self.local_wheels}
        return [r for r in self.requirements() if canonicalize_name(r.name) in local]


class EnvDefinition(BaseModel):
    """One preset base environment, as declared by its ``env.toml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    description: str = Field(min_length=1)
    framework: str = Field(min_length=1)
    framework_version: str = Field(min_length=1)
    device: Literal["cpu", "gpu"]
    python: PythonPackages

    def digest(self) -> str:
        """A hash of the declared content (not of where the file lies)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_toml(cls, path: Path) -> EnvDefinition:
        """Load ``path`` (an ``env.toml``); its ``name`` must be its folder's name."""
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise EnvDefinitionInvalid(path, [f"not valid TOML ({exc})"]) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise EnvDefinitionInvalid(path, [f"cannot be read ({exc})"]) from exc
        try:
            definition = cls.model_validate(data)
        except ValidationError as exc:
            raise EnvDefinitionInvalid(path, _problems(exc)) from exc
        if definition.name != path.parent.name:
            raise EnvDefinitionInvalid(
                path, [f"name {definition.name!r} differs from its folder {path.parent.name!r}"]
            )
        return definition


def list_definitions(root: Path) -> list[EnvDefinition]:
    """Every definition under ``root`` (one folder each with an ``env.toml``), by name."""
    return [EnvDefinition.from_toml(p) for p in sorted(root.glob(f"*/{DEFINITION_FILE}"))]


def load_definition(root: Path, name: str) -> EnvDefinition:
    """The definition called ``name``; :class:`EnvNotFound` (listing the known ones) if none."""
    path = root / name / DEFINITION_FILE
    if "/" in name or name.startswith(".") or not path.is_file():
        raise EnvNotFound(name, root, (p.parent.name for p in root.glob(f"*/{DEFINITION_FILE}")))
    return EnvDefinition.from_toml(path)


def _requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"{text!r} is not a requirement ({exc})") from exc


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(file)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is missing"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        problems.append(f"{where} {message}")
    return problems
