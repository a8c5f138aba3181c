"""The ``workbench`` command: one module per area, each a click group (or command)
registered here.

Administration (``db``, ``user``, ``token``, ``quota``: :mod:`.admin`) works on the registry
directly, like ``jupyterhub`` does; everything else goes through the REST API with the client. What
the commands share (errors as one line, the client, the registry) is in :mod:`.common`.
"""

from __future__ import annotations

import click

from workbench.cli import (
    admin,
    algorithms,
    cluster,
    datasets,
    environments,
    jobs,
    lab,
    models,
    services,
    teams,
    training,
    workspaces,
)


@click.group()
@click.version_option(package_name="workbench")
def main() -> None:
    """Workbench: datasets, workspaces, algorithms, training and serving from JupyterLab."""


for command in (
    admin.db,
    admin.user,
    admin.token,
    admin.quota,
    teams.team,
    teams.invitation,
    lab.login,
    lab.lab,
    datasets.dataset,
    environments.environment,
    workspaces.workspace,
    algorithms.algorithm,
    training.task,
    models.model,
    services.service,
    jobs.job,
    cluster.cluster,
):
    main.add_command(command)
