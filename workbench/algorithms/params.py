"""How an algorithm's images are run: typed parameters with defaults, and the inference API
spec. Shared by the algorithm library (which stores them) and the training runner (which
checks a task's values against them and passes them as environment variables).

    EPOCHS = ParamSpec(type="int", default=10, description="passes over the train split")
    resolve_parameters({"EPOCHS": EPOCHS}, {"EPOCHS": "3"})   # -> {"EPOCHS": "3"}
    resolve_parameters({"EPOCHS": EPOCHS}, {"EPOCHS": "x"})   # InvalidInput: not an int
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workbench.errors import InvalidInput

ParamType = Literal["int", "float", "str", "bool"]
#: an environment variable's name: EPOCHS, BATCH_SIZE, LEARNING_RATE, ...
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
#: the names the platform sets itself; an algorithm cannot declare them as parameters
RESERVED = frozenset(
    {
        "DATASET_DIR",
        "DATASET_FORMAT",
        "OUTPUT_DIR",
        "MODEL_DIR",
        "METRICS_FILE",
        "EVALUATION_FILE",
        "BASE_MODEL_DIR",
        "PORT",
        "PATH",
        "HOME",
    }
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(kind: ParamType, value: Any) -> int | float | str | bool:
    """``value`` (a JSON value or the string form) as ``kind``; ValueError if it is not."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError(f"{value!r} is not a bool (true/false, 1/0, yes/no)")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a bool, not {'an' if kind == 'int' else 'a'} {kind}")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        if isinstance(value, str) and not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
    if not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not text")
    return str(value)


def env_form(value: int | float | str | bool) -> str:
    """A parameter's value as its environment variable holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ParamSpec(BaseModel):
    """One environment variable of an image: its type, default and meaning."""

    model_config = ConfigDict(extra="forbid")

    type: ParamType = "str"
    default: int | float | str | bool | None = None
    description: str = ""

    @model_validator(mode="after")
    def _default_has_the_type(self) -> ParamSpec:
        if self.default is not None:
            self.default = parse_value(self.type, self.default)
        return self


class ApiParam(BaseModel):
    """One input of the inference API (manual 2.2.1: name, type, required, example, note)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    type: Literal["string", "integer", "number", "boolean", "array", "object"] = "string"
    required: bool = True
    example: Any = None
    description: str = ""


class ApiSpec(BaseModel):
    """The inference container's route: ``POST /predict`` taking the params as a JSON object
    and answering JSON."""

    model_config = ConfigDict(extra="forbid")

    route: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=255)] = (
        "/predict"
    )
    method: Literal["GET", "POST"] = "POST"
    params: list[ApiParam] = Field(default_factory=list)


class ImageSettings(BaseModel):
    """How an algorithm's training or inference image is run. ``command`` and ``args``
    empty: the image's own ENTRYPOINT and CMD."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[EnvName, ParamSpec] = Field(default_factory=dict)
    device: Literal["cpu", "gpu"] = "cpu"
    #: the inference image's API; None for a training image
    api_spec: ApiSpec | None = None

    @model_validator(mode="after")
    def _no_reserved_names(self) -> ImageSettings:
        taken = sorted(RESERVED & set(self.env))
        if taken:
            raise ValueError(
                f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} set by the "
                "platform; name the parameter differently"
            )
        return self


def resolve_parameters(specs: Mapping[str, ParamSpec], values: Mapping[str, Any]) -> dict[str, str]:
    """The environment a run gets: every declared parameter (the given value, else its
    default) in string form. Raises :class:`InvalidInput` naming the parameter for an
    unknown name, a value of the wrong type, or a parameter without a default left out."""
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise InvalidInput(
            f"Unknown parameter {unknown[0]!r}: this algorithm takes "
            f"{', '.join(sorted(specs)) or 'no parameters'}.",
            field=unknown[0],
            known=sorted(specs),
        )
    env: dict[str, str] = {}
    for name, spec in specs.items():
        value = values.get(name)
        if value is None or value == "":  # left out: the default, or not set at all
            value = spec.default
        if value is None:
            continue
        try:
            env[name] = env_form(parse_value(spec.type, value))
        except ValueError as exc:
            raise InvalidInput(
                f"Parameter {name} must be {'an' if spec.type == 'int' else 'a'} {spec.type}: "
                f"{exc}.",
                field=name,
                expected=spec.type,
            ) from None
    return env
