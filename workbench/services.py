"""The one object that wires Workbench's services to a registry and an artifact store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial

from workbench.algorithms.service import AlgorithmService
from workbench.backends import Backend, get_backend
from workbench.config import Settings
from workbench.datasets.service import DatasetService
from workbench.environments import EnvBuilder
from workbench.environments.builder import default_root
from workbench.environments.service import EnvironmentService
from workbench.registry import Registry
from workbench.store import ArtifactStore
from workbench.training.service import TrainingService
from workbench.users import UserService
from workbench.workspaces.builds import WorkspaceBuilds
from workbench.workspaces.service import WorkspaceService


@dataclass
class Workbench:
    settings: Settings
    registry: Registry
    store: ArtifactStore
    users: UserService
    datasets: DatasetService
    workspaces: WorkspaceService
    environments: EnvironmentService
    builds: WorkspaceBuilds
    training: TrainingService
    algorithms: AlgorithmService
    backend: Callable[[], Backend] = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Workbench:
        """Build the services. Touches nothing on disk: run ``registry.upgrade()`` first."""
        registry = Registry(settings.db_url)
        store = ArtifactStore(settings.store_root)
        users = UserService(registry)
        build = settings.env_build

        @cache
        def backend() -> Backend:  # chosen on first use: Docker may not be up at import
            return get_backend(settings.backend, settings.home / "local-backend")

        workspaces = WorkspaceService(
            registry,
            store,
            users,
            backend,
            limits=settings.workspace_limits,
            archive_limits=settings.archive_limits,
            secret=settings.load_secret,
            api_url=settings.workspace_api_url,
            allow_file_git_urls=settings.allow_file_git_urls,
            instance=str(settings.home),
        )
        return cls(
            settings=settings,
            registry=registry,
            store=store,
            users=users,
            datasets=DatasetService(registry, store, settings.archive_limits),
            workspaces=workspaces,
            environments=EnvironmentService(
                registry,
                store,
                backend,
                envs_root=build.envs_dir or default_root(),
                make_builder=partial(
                    EnvBuilder,
                    extra_ca_bundle=build.extra_ca_bundle,
                    wheels_dir=build.wheels_dir,
                    pip_index_url=build.pip_index_url,
                ),
            ),
            builds=WorkspaceBuilds(workspaces, backend),
            training=TrainingService(
                registry,
                store,
                backend,
                limits=settings.training,
                instance=str(settings.home),
            ),
            algorithms=AlgorithmService(registry, backend, workspaces),
            backend=backend,
        )

    def close(self) -> None:
        self.training.runner.stop()
        self.registry.dispose()
