"""Names the database keeps unique, and what a service says when it refuses one.

A service looks for a clash first (its pre-check gives the friendly message), but two
requests at the same moment both pass that look. The unique constraint then refuses the
second insert or rename; :func:`flush_unique` turns that refusal into the pre-check's own
:class:`~workbench.errors.Conflict`, so the loser of a race gets the same 409 as someone
who came later, and its unit of work is rolled back whole.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.errors import Conflict
from workbench.registry.models import Base


def _unique_constraint(name: str) -> sa.UniqueConstraint:
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint) and constraint.name == name:
                return constraint
    raise KeyError(f"no unique constraint named {name!r} in the registry's models")


def violates(exc: sa.exc.IntegrityError, constraint: str) -> bool:
    """Whether the database refused a write because of the unique ``constraint``."""
    diag = getattr(exc.orig, "diag", None)  # PostgreSQL (psycopg) names the constraint
    if diag is not None:
        return diag.constraint_name == constraint
    unique = _unique_constraint(constraint)  # SQLite names the columns
    columns = ", ".join(f"{unique.table.name}.{column.name}" for column in unique.columns)
    return str(exc.orig) == f"UNIQUE constraint failed: {columns}"


def flush_unique(s: Session, constraint: str, check: Callable[[], None]) -> None:
    """Flush ``s``; if the unique ``constraint`` refuses it, raise what ``check`` raises.

    ``check`` is the service's pre-check for the same name. When the flush is refused,
    another transaction has just committed that name: ``s`` is rolled back (nothing of
    this unit of work stays) and ``check`` runs again in a new transaction, where it sees
    the winner and raises its usual :class:`~workbench.errors.Conflict`. Other integrity
    errors pass through unchanged.
    """
    try:
        s.flush()
    except sa.exc.IntegrityError as exc:
        if not violates(exc, constraint):
            raise
        s.rollback()
        check()
        raise Conflict(  # the winner is gone again already
            "Another request saved the same name at the same moment; try again or pick "
            "another name.",
            constraint=constraint,
        ) from exc
