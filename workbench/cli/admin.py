"""``workbench db``, ``user`` and ``token``: administration on the registry itself, like
``jupyterhub`` does (no server needed)."""

from __future__ import annotations

import click

from workbench.cli.common import friendly, local_workbench
from workbench.config import Settings
from workbench.enums import Role
from workbench.services import Workbench

# --- db -----------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """The registry's schema ($WORKBENCH_DB_URL, default SQLite in $WORKBENCH_HOME)."""


@db.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply all migrations (safe to run again)."""
    with local_workbench(upgrade=True) as wb:
        click.echo(
            f"registry {wb.registry.engine.url!r} at revision {wb.registry.current_revision()}"
        )


@db.command("current")
@friendly
def db_current() -> None:
    """Show the schema revision of the registry and the one this version needs."""
    wb = Workbench.from_settings(Settings.from_env())
    try:
        click.echo(f"current {wb.registry.current_revision()} head {wb.registry.head_revision()}")
    finally:
        wb.close()


# --- users and tokens ---------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users of this registry."""


@user.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option("--display-name", default="")
@friendly
def user_add(username: str, admin: bool, display_name: str) -> None:
    """Add a user and print their first API token (shown once)."""
    with local_workbench() as wb:
        info = wb.users.add_user_with_token(
            username, role=Role.ADMIN if admin else Role.MEMBER, display_name=display_name
        )
    click.echo(f"added {info.username} ({info.role}); token (shown once): {info.token}")


@user.command("list")
@friendly
def user_list() -> None:
    with local_workbench() as wb:
        for u in wb.users.list_users():
            click.echo(f"{u.id:>4}  {u.username:<24} {u.role}")


@click.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="A label to recognise the token by.")
@click.option("--days", type=int, default=None, help="Expire after this many days.")
@friendly
def token_create(username: str, name: str, days: int | None) -> None:
    """Create a token for USERNAME (registry access needed) and print it once."""
    from datetime import timedelta

    with local_workbench() as wb:
        actor = wb.users.find(username)
        if actor is None:
            raise click.UsageError(f"No user {username!r}; add one with `workbench user add`.")
        new = wb.users.create_token(
            actor.id, name, expires_in=timedelta(days=days) if days else None
        )
    click.echo(new.secret)
