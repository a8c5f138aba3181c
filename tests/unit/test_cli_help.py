"""Every command of the ``workbench`` CLI says what it does in its ``--help``."""

from __future__ import annotations

import click

from workbench.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((" ".join((*path, name)), command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*path, name)))
    return found


def test_every_command_has_help():
    commands = _commands(main)
    assert len(commands) > 60
    silent = [name for name, command in commands if not (command.help or "").strip()]
    assert silent == []
