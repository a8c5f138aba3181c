"""What the areas' bodies share: a thing's name, the fields every shareable thing (a
dataset, an environment, an algorithm, a training task, a model) has in the bodies that
create it, change it, filter its list and show it, the two purposes of those made for one
(a dataset, an algorithm, a training task), and :func:`from_row`, which shows a registry
row as the body of its info. An area's body adds its own fields."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from workbench.enums import Purpose, SubPurpose, Visibility

M = TypeVar("M", bound=BaseModel)

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


class PurposedCreate(ShareableCreate):
    purpose: Purpose
    sub_purpose: SubPurpose


class PurposedUpdate(ShareableUpdate):
    purpose: Purpose | None = None
    sub_purpose: SubPurpose | None = None


class PurposedFilter(ShareableFilter):
    purpose: Purpose | None = None
    sub_purpose: SubPurpose | None = None


class PurposedInfo(ShareableInfo):
    purpose: Purpose
    sub_purpose: SubPurpose


def from_row(info: type[M], row: object, **fields: Any) -> M:
    """The ``info`` body of a registry ``row``: each field of ``info`` that ``fields`` does
    not name takes the row's attribute of the same name (the field's default where the row
    has none). ``fields`` gives the others: values computed, or shown otherwise than the
    row holds them (a relationship's rows as infos, a null as "")."""
    names = info.model_fields.keys() - fields.keys()
    held = {name: getattr(row, name) for name in names if hasattr(row, name)}
    return info.model_validate({**held, **fields})
