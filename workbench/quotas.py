"""Quotas: what one user may hold at once, so no one user fills the team's machine.

Three quotas, each the server's default (:class:`~workbench.config.QuotaDefaults`,
``WORKBENCH_QUOTA_*``) unless an admin set the user's own (``workbench quota set``,
``PUT /users/{name}/quota``):

- ``replicas``: replicas of the user's services together (a stopped service holds none);
- ``memory_mb``: MiB reserved by those replicas (replicas x each one's memory), the user's
  running workspaces and their queued or running container jobs (training runs, imports,
  conversions, benchmarks);
- ``upload_bytes``: bytes the user keeps in the store: datasets' files, model versions
  and their formats, algorithm images. An upload that would take the user past it is
  refused, from its declared size before its body is stored, else as soon as it passes.

Checked where things are made: a service's create, scale and start (the replicas and
memory the change would leave in use), a workspace's start and a training run's queueing
(the memory), and every upload. Over quota is
:class:`~workbench.errors.QuotaExceeded` (403) saying the quota, what is in use, what was
asked and what to do. What already runs is never stopped by a lowered quota; replacing a
crashed replica is never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from workbench.config import QuotaDefaults
from workbench.errors import NotFound, QuotaExceeded
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.registry.db import Registry
from workbench.registry.models import (
    Algorithm,
    AlgorithmImage,
    Dataset,
    DatasetSplit,
    Job,
    Model,
    ModelFormat,
    ModelVersion,
    Quota,
    Service,
    User,
    Workspace,
)
from workbench.schemas.quotas import NAMES, QuotaInfo, QuotaUpdate, QuotaValues

#: what to do when over each
ADVICE = {
    "replicas": "stop or scale down one of your services (`workbench service stop ID`), or "
    "ask an admin to raise your quota (`workbench quota set`)",
    "memory_mb": "stop a service, a workspace or a training run, ask for less memory, or ask "
    "an admin to raise your quota (`workbench quota set`)",
    "upload_bytes": "delete datasets, model versions or images you no longer need, or ask an "
    "admin to raise your quota (`workbench quota set`)",
}


@dataclass(frozen=True)
class UploadAllowance:
    limit: int
    used: int

    @property
    def room(self) -> int:
        """Bytes one may still upload."""
        return max(0, self.limit - self.used)

    def refused(self, asked: int) -> QuotaExceeded:
        """The error for an upload of ``asked`` bytes (more than :attr:`room`)."""
        return _exceeded("upload_bytes", self.limit, self.used, asked, "the upload")


class QuotaService:
    def __init__(self, registry: Registry, defaults: QuotaDefaults) -> None:
        self.registry = registry
        self.defaults = defaults

    # --- reading and setting ----------------------------------------------------------------

    def get(self, username: str) -> QuotaInfo:
        """A user's quotas and use (the REST layer lets an admin read anyone's, a user their
        own)."""
        with self.registry.session() as s:
            user = _user(s, username)
            return self._info(s, user)

    def set(self, username: str, update: QuotaUpdate) -> QuotaInfo:
        """Set a user's quotas (an admin's `workbench quota set`, or PUT by an admin).
        Lowering one stops nothing that runs: it refuses what would go past it from now
        on."""
        with self.registry.session() as s:
            user = _user(s, username)
            row = s.get(Quota, user.id) or Quota(user_id=user.id)
            for name in update.model_fields_set:
                setattr(row, name, getattr(update, name))
            s.add(row)
            s.flush()
            return self._info(s, user)

    # --- the checks ---------------------------------------------------------------------------

    def check_service(self, s: Session, service: Service, replicas: int) -> None:
        """Refuse (:class:`QuotaExceeded`) to run ``replicas`` replicas of ``service`` (each
        with the service's memory) if its owner would pass a quota; the service's own
        replicas now are not counted twice, and holding no more than it does is always
        allowed."""
        if service.id is not None and replicas <= _held(s, service):
            return  # holding as much or less: never refused, even over a lowered quota
        limits = self._limits(s, service.owner_id)
        used = self._running(s, service.owner_id, but=service.id)
        asked = {"replicas": replicas, "memory_mb": replicas * service.memory_mb}
        for name, amount in asked.items():
            if amount and used[name] + amount > limits[name]:
                raise _exceeded(name, limits[name], used[name], amount, f"service {service.name}")

    def check_memory(self, s: Session, user_id: int, memory_mb: int, what: str) -> None:
        """Refuse (:class:`QuotaExceeded`) ``what`` (a workspace's start, a training run),
        which reserves ``memory_mb``, if its owner would pass the memory quota."""
        limit = self._limits(s, user_id)["memory_mb"]
        used = self._running(s, user_id)["memory_mb"]
        if used + memory_mb > limit:
            raise _exceeded("memory_mb", limit, used, memory_mb, what)

    def upload_allowance(self, user_id: int) -> UploadAllowance:
        """The user's ``upload_bytes`` quota and what they keep now, read once at an
        upload's start (its bytes are then counted against it as they come)."""
        with self.registry.session() as s:
            return UploadAllowance(self._limits(s, user_id)["upload_bytes"], _stored(s, user_id))

    # --- helpers ------------------------------------------------------------------------------

    def _limits(self, s: Session, user_id: int) -> dict[str, int]:
        row = s.get(Quota, user_id)
        values = {name: getattr(self.defaults, name) for name in NAMES}
        if row is not None:
            values |= {n: getattr(row, n) for n in NAMES if getattr(row, n) is not None}
        return values

    def _running(self, s: Session, user_id: int, *, but: int | None = None) -> dict[str, int]:
        """Replicas and MiB the user holds now (``but`` one service left out)."""
        replicas = memory = 0
        services = s.scalars(
            sa.select(Service).where(Service.owner_id == user_id, Service.id != (but or 0))
        )
        for service in services:
            held = _held(s, service)
            replicas += held
            memory += held * service.memory_mb
        memory += s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Workspace.memory_mb), 0)).where(
                Workspace.owner_id == user_id, Workspace.state == "running"
            )
        )
        memory += s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Job.memory_mb), 0)).where(
                Job.owner_id == user_id, Job.state.in_(ACTIVE_JOB_STATES)
            )
        )
        return {"replicas": replicas, "memory_mb": int(memory)}

    def _info(self, s: Session, user: User) -> QuotaInfo:
        row = s.get(Quota, user.id)
        custom = [n for n in NAMES if row is not None and getattr(row, n) is not None]
        used = self._running(s, user.id) | {"upload_bytes": _stored(s, user.id)}
        return QuotaInfo(
            username=user.username,
            limits=QuotaValues(**self._limits(s, user.id)),
            custom=custom,
            used=QuotaValues(**used),
        )


def _user(s: Session, username: str) -> User:
    user = s.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound.entity("user", username)
    return user


def _held(s: Session, service: Service) -> int:
    """The replicas a service holds: none once stopped, its deploy's target while one runs."""
    if service.state == "stopped":
        return 0
    if service.state == "deploying" and service.job_id is not None:
        job = s.get(Job, service.job_id)
        if job is not None and job.state in ACTIVE_JOB_STATES:
            return int(job.spec.get("replicas", service.replicas))
    return service.replicas


def _stored(s: Session, user_id: int) -> int:
    """Bytes the user keeps in the store, as the registry records them."""
    queries: list[sa.Select[Any]] = [
        sa.select(sa.func.sum(DatasetSplit.unpacked_bytes))
        .join(Dataset, Dataset.id == DatasetSplit.dataset_id)
        .where(Dataset.owner_id == user_id),
        sa.select(sa.func.sum(ModelVersion.size))
        .join(Model, Model.id == ModelVersion.model_id)
        .where(Model.owner_id == user_id),
        sa.select(sa.func.sum(ModelFormat.size))
        .join(ModelVersion, ModelVersion.id == ModelFormat.model_version_id)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(Model.owner_id == user_id),
        sa.select(sa.func.sum(AlgorithmImage.size))
        .join(Algorithm, Algorithm.id == AlgorithmImage.algorithm_id)
        .where(Algorithm.owner_id == user_id),
    ]
    return sum(int(s.scalar(q) or 0) for q in queries)


def _exceeded(name: str, limit: int, used: int, asked: int, what: str) -> QuotaExceeded:
    unit = {"replicas": "replicas", "memory_mb": "MiB", "upload_bytes": "bytes"}[name]
    return QuotaExceeded(
        f"Over your {name} quota: {what} asks for {asked} {unit}, you use {used} of "
        f"{limit}; {ADVICE[name]}.",
        quota=name,
        limit=limit,
        used=used,
        asked=asked,
    )
