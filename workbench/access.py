"""Who may see and change a shareable thing.

- private: only its owner sees it; to everyone else it does not exist (404, never 403,
  so ids do not leak);
- public and preset: everyone sees and uses it, only its owner changes it;
- only admins may mark something preset.

:class:`ShareableService` is what the services of shareable things (datasets, algorithms,
environments, training tasks, services) have in common.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from workbench.enums import Visibility
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.registry.db import Registry
from workbench.registry.models import Shareable
from workbench.registry.unique import flush_unique
from workbench.users import Actor

S = TypeVar("S", bound=Shareable)
I = TypeVar("I")  # noqa: E741 (the info, as S is the row)

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


def get_owned(
    session: Session,
    model: type[S],
    ident: int,
    actor: Actor,
    kind: str,
    *,
    admin_presets: bool = False,
    instead: str = "make a copy",
) -> S:
    """The row, if ``actor`` owns it (with ``admin_presets``, also if they are an admin and
    it is a preset); 404 if they cannot see it, 403 if they only see it. ``instead`` ends
    the 403's advice: what else the actor can do."""
    row = get_visible(session, model, ident, actor, kind)
    if row.owner_id != actor.id and not (
        admin_presets and actor.is_admin and row.visibility is Visibility.PRESET
    ):
        raise PermissionDenied(
            f"Only the owner of {kind} {ident} can change it; ask them, or {instead}.",
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


class ShareableService(Generic[S, I]):
    """What the services of shareable rows have in common: reading them, :meth:`get` and
    :meth:`_list` (which the service's ``list`` calls with its filters), each row turned
    into the service's info by ``_info``; the fields an update sets
    (:meth:`_changed_fields`) and the checks of those every shareable row has
    (:meth:`_check_shared_changes`: visibility, a name unique among its owner's).

    A subclass sets :attr:`model` and :attr:`entity` (and :attr:`unique_name` and
    :attr:`name_taken` where names are unique per owner), gives its instances a
    ``registry`` and writes ``_info``.
    """

    #: the rows' class
    model: type[S]
    #: what a 404 calls one ("training task")
    entity: str
    #: whether lists are newest first (else oldest first)
    newest_first: bool = False
    #: the unique constraint on (owner, name), where an owner's names are unique
    unique_name: str | None = None
    #: how the 409 for a name its owner has already begins ("There already is a service")
    name_taken: str
    #: whether admins may change the presets too (else owners only)
    admin_presets: bool = False
    #: what the 403 to someone who may not change a row advises instead
    instead: str = "make a copy"
    registry: Registry

    def get(self, actor: Actor, ident: int) -> I:
        """The thing, if ``actor`` may see it (:class:`~workbench.errors.NotFound` if not)."""
        with self.registry.session() as s:
            return self._info(s, get_visible(s, self.model, ident, actor, self.entity))

    def _list(self, actor: Actor, filters: BaseModel | None, *, mine: bool = False) -> list[I]:
        """The things ``actor`` may see, filtered as :func:`listing` does: the filters'
        ``mine`` (or the argument) and ``q`` where they have them, and every other field a
        column of the same name (None: any value)."""
        fields = filters.model_dump() if filters is not None else {}
        mine = fields.pop("mine", False) or mine
        q = fields.pop("q", None)
        columns = ((getattr(self.model, name), value) for name, value in fields.items())
        query = listing(self.model, actor, columns, mine=mine, q=q)
        ident = self.model.id  # type: ignore[attr-defined]
        with self.registry.session() as s:
            rows = s.scalars(query.order_by(ident.desc() if self.newest_first else ident))
            return [self._info(s, row) for row in rows.all()]

    def _added(self, s: Session, row: S) -> I:
        """The info of ``row``, new, once added and flushed (:meth:`_flush`)."""
        s.add(row)
        self._flush(s, row)
        return self._info(s, row)

    def _flush(self, s: Session, row: S) -> None:
        """Flush a new or changed ``row``; where names are unique, one its owner took
        meanwhile is the 409 of :meth:`_check_unique_name`."""
        if self.unique_name is None:
            s.flush()
            return
        owner_id, name = row.owner_id, row.name
        flush_unique(s, self.unique_name, lambda: self._check_unique_name(s, owner_id, name))

    def _get_changeable(self, s: Session, actor: Actor, ident: int) -> S:
        """The row, if ``actor`` may change it (:func:`get_owned`)."""
        return get_owned(
            s,
            self.model,
            ident,
            actor,
            self.entity,
            admin_presets=self.admin_presets,
            instead=self.instead,
        )

    def _info(self, s: Session, row: S) -> I:
        raise NotImplementedError

    def _check_shared_changes(
        self, s: Session, actor: Actor, row: S, fields: dict[str, Any]
    ) -> None:
        """Check what an update changes of the fields every shareable row has: its
        visibility (:func:`check_visibility`), its name (:meth:`_check_unique_name`)."""
        if "visibility" in fields:
            check_visibility(actor, fields["visibility"])
        if self.unique_name and fields.get("name") and fields["name"] != row.name:
            self._check_unique_name(s, row.owner_id, fields["name"])

    def _check_unique_name(self, s: Session, owner_id: int, name: str) -> None:
        """:class:`~workbench.errors.Conflict` if ``owner_id`` has a row called ``name``."""
        model = self.model
        clash = s.scalar(sa.select(model.id).where(model.owner_id == owner_id, model.name == name))
        if clash is not None:
            raise Conflict(
                f"{self.name_taken} named {name!r} (id {clash}); pick another name.", id=clash
            )

    @staticmethod
    def _changed_fields(changes: BaseModel, nullable: Collection[str] = ()) -> dict[str, Any]:
        """The fields an update names, with their values; null is refused for all but the
        ``nullable`` ones (leaving a field out keeps its value)."""
        fields = changes.model_dump(exclude_unset=True)
        if nulls := sorted(k for k, v in fields.items() if v is None and k not in nullable):
            raise InvalidInput(
                f"{', '.join(nulls)} cannot be null; leave a field out to keep its value.",
                fields=nulls,
            )
        return fields


class EditableService(ShareableService[S, I]):
    """A :class:`ShareableService` whose rows their owners edit: :meth:`update` is the one
    PATCH. It finds a row the actor may change (:meth:`_get_changeable`), runs the checks
    every shareable row has, lets the service apply the change (:meth:`_change`, its own
    checks first) and flushes, a name taken meanwhile being a 409 as well."""

    #: the fields an update may set to null (the others refuse null)
    nullable: tuple[str, ...] = ()

    def update(self, actor: Actor, ident: int, changes: BaseModel) -> I:
        """Change the fields ``changes`` names (left out: kept) of a row ``actor`` may
        change; checked as a whole, so a refused change changes nothing."""
        fields = self._changed_fields(changes, self.nullable)
        with self.registry.session() as s:
            row = self._get_changeable(s, actor, ident)
            self._check_shared_changes(s, actor, row, fields)
            self._change(s, actor, row, changes, fields)
            self._flush(s, row)
            return self._info(s, row)

    def _change(
        self, s: Session, actor: Actor, row: S, changes: BaseModel, fields: dict[str, Any]
    ) -> None:
        """Apply an update's checked ``fields`` to ``row``: here each to the column of its
        name; a service with more to check or to change writes its own."""
        for key, value in fields.items():
            setattr(row, key, value)
