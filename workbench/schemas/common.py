"""What the areas' bodies share: a thing's name, and the fields every shareable thing (a
dataset, an environment, an algorithm, a training task, a model) has in the bodies that
create it, change it, filter its list and show it. An area's body adds its own fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from workbench.enums import Visibility

#: a name a user gives: no control characters, no slashes
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/\\]+$")
]


class ShareableCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str = ""
    visibility: Visibility = Visibility.PRIVATE


class ShareableUpdate(BaseModel):
    """Fields to change; the ones left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = None
    visibility: Visibility | None = None


class ShareableFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: only mine
    mine: bool = False
    #: private, public or preset (the manual's "my / public / preset" tabs)
    visibility: Visibility | None = None
    #: words in the name or the description
    q: str | None = None


class ShareableInfo(BaseModel):
    id: int
    name: str
    description: str
    owner: str
    visibility: Visibility
