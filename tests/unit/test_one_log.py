"""One log protocol (issue 17, point 3): every long work's log is its job's, read through
one route, one client helper and one CLI flag."""

from __future__ import annotations

import importlib
import pkgutil

import click

import workbench.client
from workbench.cli import main
from workbench_ext.routes import api_routes, served


def test_one_route_reads_the_log_of_any_long_work():
    logs = {route.template for route in served(api_routes()) if route.template.endswith("/log")}
    assert logs == {"/workbench/api/v1/jobs/{job_id}/log"}


def test_the_client_follows_logs_one_way():
    modules = [
        importlib.import_module(f"workbench.client.{info.name}")
        for info in pkgutil.iter_modules(workbench.client.__path__)
    ]
    followers = [
        name
        for module in modules
        for name, value in vars(module).items()
        if isinstance(value, type)
        and value.__module__ == module.__name__
        and callable(getattr(value, "follow", None))
    ]
    assert followers == ["JobsAPI"]


def test_every_log_command_takes_the_one_follow_flag():
    commands = {
        "job log": main.commands["job"].commands["log"],  # type: ignore[attr-defined]
        "environment log": main.commands["environment"].commands["log"],  # type: ignore[attr-defined]
        "task logs": main.commands["task"].commands["logs"],  # type: ignore[attr-defined]
    }
    flags = {}
    for name, command in commands.items():
        [follow] = [p for p in command.params if p.name == "follow"]
        assert isinstance(follow, click.Option) and follow.is_flag, name
        flags[name] = (tuple(follow.opts), follow.help)
    assert len(set(flags.values())) == 1, flags
