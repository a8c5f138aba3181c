"""Images over REST: a pull's body and what an image runs (the checks of ``docker save``
tars and references: :mod:`workbench.images`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: an image reference as ``docker pull`` takes it: ``[host[:port]/]path[:tag][@digest]``
ImageReference = Annotated[
    str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
]


class ImagePull(BaseModel):
    """The body of a pull: an environment's image or an algorithm's."""

    model_config = ConfigDict(extra="forbid")

    reference: ImageReference


class ImageConfig(BaseModel):
    """What an image runs: its own entrypoint, command, environment, ports, folder, user."""

    model_config = ConfigDict(frozen=True)

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    exposed_ports: list[int] = Field(default_factory=list)
    workdir: str = ""
    user: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def has_command(self) -> bool:
        """Whether the image runs something of its own (an ENTRYPOINT or a CMD)."""
        return bool(self.entrypoint or self.cmd)
