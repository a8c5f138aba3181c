"""The one object that wires Workbench's services to a registry and an artifact store."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config import Settings
from workbench.datasets.service import DatasetService
from workbench.registry import Registry
from workbench.store import ArtifactStore
from workbench.users import UserService


@dataclass
class Workbench:
    settings: Settings
    registry: Registry
    store: ArtifactStore
    users: UserService
    datasets: DatasetService

    @classmethod
    def from_settings(cls, settings: Settings) -> Workbench:
        """Build the services. Touches nothing on disk: run ``registry.upgrade()`` first."""
        registry = Registry(settings.db_url)
        store = ArtifactStore(settings.store_root)
        return cls(
            settings=settings,
            registry=registry,
            store=store,
            users=UserService(registry),
            datasets=DatasetService(registry, store, settings.archive_limits),
        )

    def close(self) -> None:
        self.registry.dispose()
