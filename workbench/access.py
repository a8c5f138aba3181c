"""Who may see and change a shareable thing.

- private: only its owner sees it; to everyone else it does not exist (404, never 403,
  so ids do not leak);
- public and preset: everyone sees and uses it, only its owner changes it;
- only admins may mark something preset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.enums import Visibility
from workbench.errors import NotFound, PermissionDenied
from workbench.registry.models import Shareable
from workbench.users import Actor

S = TypeVar("S", bound=Shareable)

SHARED = (Visibility.PUBLIC, Visibility.PRESET)


def visible_to(model: type[Shareable], actor: Actor) -> sa.ColumnElement[bool]:
    """A WHERE clause selecting the rows of ``model`` that ``actor`` may see."""
    return sa.or_(model.owner_id == actor.id, model.visibility.in_(SHARED))


def listing(
    model: type[S],
    actor: Actor,
    equals: Iterable[tuple[Any, object]],
    *,
    mine: bool = False,
    q: str | None = None,
) -> sa.Select[tuple[S]]:
    """The rows of ``model`` ``actor`` may see, filtered the way every list route is:
    columns equal to the values given (None: no filter), only the actor's own with
    ``mine``, and ``q`` found in the name or the description (case-insensitive)."""
    query = sa.select(model).where(visible_to(model, actor))
    for column, value in equals:
        if value is not None:
            query = query.where(column == value)
    if mine:
        query = query.where(model.owner_id == actor.id)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(model.name).like(pattern),  # type: ignore[attr-defined]
                sa.func.lower(model.description).like(pattern),  # type: ignore[attr-defined]
            )
        )
    return query


def can_see(row: Shareable, actor: Actor) -> bool:
    return row.owner_id == actor.id or row.visibility in SHARED


def get_visible(session: Session, model: type[S], ident: int, actor: Actor, kind: str) -> S:
    row = session.get(model, ident)
    if row is None or not can_see(row, actor):
        raise NotFound.entity(kind, ident)
    return row


def get_owned(session: Session, model: type[S], ident: int, actor: Actor, kind: str) -> S:
    """The row, if ``actor`` owns it; 404 if they cannot see it, 403 if they only see it."""
    row = get_visible(session, model, ident, actor, kind)
    if row.owner_id != actor.id:
        raise PermissionDenied(
            f"Only the owner of {kind} {ident} can change it; ask them, or make a copy.",
            kind=kind,
            id=ident,
        )
    return row


def check_visibility(actor: Actor, visibility: Visibility) -> None:
    if visibility is Visibility.PRESET and not actor.is_admin:
        raise PermissionDenied(
            "Only admins may mark something preset; choose private or public.",
            field="visibility",
        )
