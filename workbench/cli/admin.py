"""``workbench db``, ``user``, ``token`` and ``quota``: administration on the registry itself, like
``jupyterhub`` does (no server needed)."""

from __future__ import annotations

import click

from workbench.cli.common import friendly, local_workbench
from workbench.enums import Role
from workbench.schemas.quotas import NAMES, QuotaInfo, QuotaUpdate

# --- db -----------------------------------------------------------------------------------


db = click.Group(
    "db", help="The registry's schema ($WORKBENCH_DB_URL, default SQLite in $WORKBENCH_HOME)."
)


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
    with local_workbench(check=False) as wb:
        click.echo(f"current {wb.registry.current_revision()} head {wb.registry.head_revision()}")


# --- users and tokens ---------------------------------------------------------------------


user = click.Group("user", help="Users of this registry.")


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
    """Every user: id, name and role."""
    with local_workbench() as wb:
        for u in wb.users.list_users():
            click.echo(f"{u.id:>4}  {u.username:<24} {u.role}")


token = click.Group("token", help="API tokens.")


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


quota = click.Group(
    "quota", help="Users' quotas: replicas, memory and bytes kept (on the registry, admins)."
)


def _echo_quota(info: QuotaInfo) -> None:
    for name in NAMES:
        origin = "set" if name in info.custom else "default"
        used, limit = getattr(info.used, name), getattr(info.limits, name)
        click.echo(f"{name:<13} {used:>14} used of {limit:>14} ({origin})")


@quota.command("show")
@click.argument("username")
@friendly
def quota_show(username: str) -> None:
    """USERNAME's quotas and what they use now."""
    with local_workbench() as wb:
        _echo_quota(wb.quotas.get(username))


@quota.command("set")
@click.argument("username")
@click.option("--replicas", type=click.IntRange(min=0), help="Service replicas, together.")
@click.option("--memory-mb", type=click.IntRange(min=0), help="MiB reserved, together.")
@click.option("--upload-bytes", type=click.IntRange(min=0), help="Bytes kept in the store.")
@click.option(
    "--default",
    "defaults",
    multiple=True,
    type=click.Choice(NAMES),
    help="Put this quota back to the server's default (repeatable).",
)
@friendly
def quota_set(
    username: str,
    replicas: int | None,
    memory_mb: int | None,
    upload_bytes: int | None,
    defaults: tuple[str, ...],
) -> None:
    """Set USERNAME's quotas; those not named keep their value. Lowering one stops
    nothing: it refuses what would go past it from now on."""
    given = {"replicas": replicas, "memory_mb": memory_mb, "upload_bytes": upload_bytes}
    changes: dict[str, int | None] = {k: v for k, v in given.items() if v is not None}
    changes |= dict.fromkeys(defaults)
    if not changes:
        raise click.UsageError("Name a quota to set: --replicas, --memory-mb, --upload-bytes.")
    with local_workbench() as wb:
        _echo_quota(wb.quotas.set(username, QuotaUpdate(**changes)))
