"""The one object that wires Workbench's services to a registry, an artifact store, a
backend and the job runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial

from workbench.algorithms.service import AlgorithmService
from workbench.backends import Backend, get_backend
from workbench.cluster.service import ClusterService
from workbench.config import Settings
from workbench.datasets.service import DatasetService
from workbench.deployments.proxy import Proxy
from workbench.deployments.service import DeploymentService
from workbench.environments.builder import EnvBuilder, default_root
from workbench.environments.service import EnvironmentService
from workbench.errors import WorkbenchError
from workbench.invitations import InvitationService
from workbench.jobs.runner import JobRunner
from workbench.jobs.service import JobService
from workbench.models.conversions import ConversionLimits, ConversionService
from workbench.models.imports import ImportService
from workbench.models.registry import ModelService
from workbench.models.versions import VersionService
from workbench.quotas import QuotaService
from workbench.registry.db import Registry
from workbench.store import ArtifactStore
from workbench.training.jobs import TrainingKind
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
    quotas: QuotaService
    invitations: InvitationService
    datasets: DatasetService
    workspaces: WorkspaceService
    environments: EnvironmentService
    builds: WorkspaceBuilds
    training: TrainingService
    algorithms: AlgorithmService
    models: ModelService
    model_versions: VersionService
    model_imports: ImportService
    conversions: ConversionService
    deployments: DeploymentService
    cluster: ClusterService
    jobs: JobService
    backend: Callable[[], Backend] = field(repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, backend_instance: Backend | None = None
    ) -> Workbench:
        """Build the services. Touches nothing on disk: run ``registry.upgrade()`` first.
        ``backend_instance``: use this backend instead of choosing one from the settings
        (another Workbench's, say: tests of two servers on one engine)."""
        registry = Registry(settings.db_url)
        store = ArtifactStore(settings.store_root)
        users = UserService(registry)
        quotas = QuotaService(registry, settings.quotas)
        build = settings.env_build

        @cache
        def backend() -> Backend:  # chosen on first use: Docker may not be up at import
            if backend_instance is not None:
                return backend_instance
            return get_backend(settings.backend, settings.home / "local-backend")

        runner = JobRunner(
            registry,
            store,
            backend_factory=backend,
            limits=settings.training,
            instance=settings.instance,
        )
        jobs = JobService(runner)
        # what a conversion, a benchmark and an import's check may use in a container
        container_limits = ConversionLimits()
        conversions = ConversionService(registry, store, jobs, container_limits)
        model_versions = VersionService(
            registry,
            store,
            on_registered=conversions.convert_new if settings.auto_convert else None,
        )
        model_imports = ImportService(
            registry,
            store,
            jobs,
            model_versions,
            container_limits,
            archive_limits=settings.archive_limits,
        )
        workspaces = WorkspaceService(
            registry,
            store,
            users,
            backend_factory=backend,
            limits=settings.workspace_limits,
            archive_limits=settings.archive_limits,
            secret=settings.load_secret,
            api_url=settings.workspace_api_url,
            allow_file_git_urls=settings.allow_file_git_urls,
            instance=settings.instance,
            outbound=settings.workspace_outbound,
            quotas=quotas,
        )
        environments = EnvironmentService(
            registry,
            store,
            jobs,
            backend_factory=backend,
            envs_root=build.envs_dir or default_root(),
            make_builder=partial(
                EnvBuilder,
                extra_ca_bundle=build.extra_ca_bundle,
                wheels_dir=build.wheels_dir,
                pip_index_url=build.pip_index_url,
            ),
        )
        algorithms = AlgorithmService(registry, store, workspaces, jobs, backend_factory=backend)
        builds = WorkspaceBuilds(workspaces, jobs, backend_factory=backend)
        runner.register(builds.kind)
        runner.register(environments.kind)
        runner.register(algorithms.kind)
        runner.register(conversions.conversion_kind)
        runner.register(conversions.benchmark_kind)
        runner.register(model_imports.kind)
        proxy = Proxy(settings.home / "proxy")
        deployments = DeploymentService(
            registry,
            store,
            jobs,
            proxy,
            backend_factory=backend,
            instance=settings.instance,
            quotas=quotas,
        )
        runner.register(deployments.deploy_kind)
        runner.register(
            TrainingKind(
                registry,
                store,
                model_versions,
                concurrency=settings.training.concurrency,
                outbound=settings.training_outbound,
            )
        )
        return cls(
            settings=settings,
            registry=registry,
            store=store,
            users=users,
            quotas=quotas,
            invitations=InvitationService(registry),
            datasets=DatasetService(registry, store, settings.archive_limits),
            workspaces=workspaces,
            environments=environments,
            builds=builds,
            training=TrainingService(
                registry, store, jobs, limits=settings.training, quotas=quotas
            ),
            algorithms=algorithms,
            models=ModelService(registry, store),
            model_versions=model_versions,
            model_imports=model_imports,
            conversions=conversions,
            deployments=deployments,
            cluster=ClusterService(registry, backend_factory=backend, instance=settings.instance),
            jobs=jobs,
            backend=backend,
        )

    def start(self) -> dict[str, list[object]]:
        """Bring the registry in line with what really runs, then start the job runner
        (its first round takes up the jobs a stopped server left). What was changed, by
        area (for the server's log). Call it once, when a server starts."""
        changed: dict[str, list[object]] = {
            "environments": list(self.environments.reconcile()),
            "algorithm images": list(self.algorithms.reconcile()),
        }
        try:
            changed["workspaces"] = list(self.workspaces.reconcile())
        except WorkbenchError as exc:  # no engine yet: the workspaces stay as recorded
            changed["workspaces (not reconciled)"] = [exc.message]
        try:
            self.deployments.publish()  # the endpoints of the services there are
        except WorkbenchError as exc:  # no proxy or no engine: the services wait
            changed["service endpoints (not served)"] = [exc.message]
        self.jobs.runner.start()
        self.deployments.watch()  # replicas gone or hung are replaced
        return changed

    def close(self) -> None:
        """Stop what :meth:`start` started (the services' watch, the job runner: containers
        run on, the next start takes them up) and let go of the registry. The services'
        proxy is left running: it is the data plane, whose endpoints answer while no server
        runs (a new one adopts it), and an administration command's Workbench, closed
        beside a running server, must not end them."""
        self.deployments.unwatch()
        self.jobs.runner.stop()
        self.registry.dispose()
