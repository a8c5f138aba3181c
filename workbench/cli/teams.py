"""``workbench team``: teams (through the REST API)."""

from __future__ import annotations

import click

from workbench.cli.common import client, friendly


@click.group()
def team() -> None:
    """Teams (through the REST API)."""


@team.command("create")
@click.argument("name")
@click.option("--description", default="")
@friendly
def team_create(name: str, description: str) -> None:
    """Create a team; you become its admin."""
    with client() as c:
        t = c.create_team(name, description)
    click.echo(f"team {t.id} {t.name}")


@team.command("add")
@click.argument("team_id", type=int)
@click.argument("username")
@friendly
def team_add(team_id: int, username: str) -> None:
    """Add USERNAME to a team you administer."""
    with client() as c:
        t = c.add_team_member(team_id, username)
    click.echo(", ".join(f"{u} ({r})" for u, r in t.members.items()))


@team.command("list")
@friendly
def team_list() -> None:
    """The teams you belong to."""
    with client() as c:
        for t in c.teams():
            click.echo(f"{t.id:>4}  {t.name:<24} {', '.join(t.members)}")
