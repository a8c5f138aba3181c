"""What a scoped token may do over REST, in the manner of JupyterHub's scopes.

A token of scope ``full`` (a login, a token from ``workbench token create``) may call every
route its user may. A workspace's token (scope ``workspace:<id>``, made for the owner at
each start and for a member whose kernel runs in the workspace) carries the scopes of
:data:`WORKSPACE_SCOPES` and nothing more. Every REST handler names the scope each of its
methods needs (``WorkbenchHandler.token_scopes``) and one check
(``WorkbenchHandler.prepare``, :func:`check`) refuses a scoped token any method whose
scope it does not carry; a method that names none is closed to it: what is not listed is
denied, routes added later included.

Names follow JupyterHub's conventions: ``read:<resource>`` reads, ``<verb>:<resource>``
makes new things, ``access:services`` calls endpoints; a filter after ``!`` narrows a scope
to some objects: ``!workspace`` to the token's own workspace, ``!mounted`` to the datasets
its workspace mounts. As in JupyterHub, a scope never adds a right: the token's user's own
rights still apply (the services check ownership and visibility as for any request), so a
member's token sees what the member may see, never what the owner may.

What no workspace token can do, whatever its user may: mint, list or revoke tokens, manage
users, teams or quotas, delete or edit anything (models, versions, tags, aliases,
datasets, algorithms, environments, services), change a visibility or make something that
is not private, start, stop or share workspaces, rotate a service's key, deploy or scale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

import sqlalchemy as sa

from workbench.errors import PermissionDenied, Unauthenticated
from workbench.registry.db import Registry
from workbench.registry.models import Workspace, WorkspaceMember

WORKSPACE_SCOPE_PREFIX = "workspace:"

#: who the token is, and what the API offers (``GET /``, ``/me``, ``/openapi.json``)
IDENTIFY = "identify"
#: its own workspace: the record, readiness, ``code/`` and ``model/`` as zips
READ_WORKSPACE = "read:workspaces!workspace"
#: images built from its own workspace's projects, and the tars of its ``docker_image/``
BUILD_WORKSPACE = "build:workspaces!workspace"
#: the dataset its workspace mounts (read-only: the record, samples, files)
READ_DATASETS = "read:datasets!mounted"
READ_ENVIRONMENTS = "read:environments"
READ_ALGORITHMS = "read:algorithms"
#: a new (private) algorithm
CREATE_ALGORITHMS = "create:algorithms"
#: an algorithm's image loaded from its own workspace's ``docker_image/`` tar
PUBLISH_ALGORITHM_IMAGES = "publish:algorithm-images!workspace"
READ_MODELS = "read:models"
#: a model file imported as a new (private) version
IMPORT_MODELS = "import:models"
#: conversions and benchmarks of versions its user owns
CONVERT_MODELS = "convert:models"
BENCHMARK_MODELS = "benchmark:models"
READ_JOBS = "read:jobs"
READ_TRAINING = "read:training"
READ_SERVICES = "read:services"
#: a service's endpoint, relayed by the server (``/services/<id>/endpoint/...``)
ACCESS_SERVICES = "access:services"

#: every scope a workspace's token carries: what a notebook in the workspace needs for its
#: user's work (read, and make new private things of that user), nothing that deletes,
#: shares, deploys or manages accounts
WORKSPACE_SCOPES = frozenset(
    {
        IDENTIFY,
        READ_WORKSPACE,
        BUILD_WORKSPACE,
        READ_DATASETS,
        READ_ENVIRONMENTS,
        READ_ALGORITHMS,
        CREATE_ALGORITHMS,
        PUBLISH_ALGORITHM_IMAGES,
        READ_MODELS,
        IMPORT_MODELS,
        CONVERT_MODELS,
        BENCHMARK_MODELS,
        READ_JOBS,
        READ_TRAINING,
        READ_SERVICES,
        ACCESS_SERVICES,
    }
)


def needs(**by_method: str) -> Mapping[str, str]:
    """A handler's ``token_scopes``: the scope a scoped token needs for each HTTP method,
    e.g. ``needs(GET=READ_MODELS)``."""
    return MappingProxyType(by_method)


def workspace_scope(workspace_id: int) -> str:
    """The scope of workspace ``workspace_id``'s tokens (the tokens' ``scope`` column)."""
    return f"{WORKSPACE_SCOPE_PREFIX}{workspace_id}"


def workspace_of(scope: str) -> int | None:
    """The workspace a ``workspace:<id>`` scope is bound to; ``None`` for any other."""
    rest = scope.removeprefix(WORKSPACE_SCOPE_PREFIX)
    return int(rest) if rest != scope and rest.isdigit() else None


def granted(scope: str) -> frozenset[str] | None:
    """The scopes a token of ``scope`` carries: ``None`` (no limit) for ``full``, none at
    all for a scope this server does not know."""
    if scope == "full":
        return None
    return WORKSPACE_SCOPES if workspace_of(scope) is not None else frozenset()


def check(
    registry: Registry,
    *,
    scope: str,
    user_id: int,
    needed: str | None,
    route: str,
    target: int | None,
    visibility: str | None,
) -> None:
    """Refuse a request of a token of ``scope`` (of user ``user_id``) to ``route`` unless
    it carries ``needed`` (``None``: the route names no scope) and the scope's filter lets
    ``target`` (the id the route acts on) through; a workspace token also only while its
    workspace runs and its user is the owner or a member, and never names a
    ``visibility`` other than private."""
    carried = granted(scope)
    if carried is None:
        return
    workspace_id = workspace_of(scope)
    if needed is None or needed not in carried or workspace_id is None:
        raise PermissionDenied(
            f"A {scope} token cannot call {route}: a workspace's token may read its own "
            "workspace, the dataset it mounts and its user's things, and make new private "
            "ones (the list: docs/rest-api.md, 'Workspace tokens'). Do this with your own "
            "login or a token from `workbench token create`.",
            scope=scope,
            needs=needed or "full",
        )
    dataset_id = _bound(registry, workspace_id, user_id)
    _, _, only = needed.partition("!")
    if only == "workspace" and target != workspace_id:
        raise PermissionDenied(
            f"A {scope} token acts on workspace {workspace_id} only, not on workspace {target}.",
            scope=scope,
            workspace=target,
        )
    if only == "mounted" and (dataset_id is None or target != dataset_id):
        raise PermissionDenied(
            f"A {scope} token reads only the dataset its workspace mounts "
            f"({dataset_id if dataset_id is not None else 'none'}), not dataset {target}.",
            scope=scope,
            dataset=target,
        )
    if visibility not in (None, "private"):
        raise PermissionDenied(
            f"A {scope} token makes private things only, not {visibility} ones; share "
            "them afterwards with your own login.",
            scope=scope,
            visibility=visibility,
        )


def visibility_asked(query: Mapping[str, list[bytes]], body: bytes) -> str | None:
    """The ``visibility`` a request names (a query argument, or a JSON body's field)."""
    if "visibility" in query:
        return query["visibility"][-1].decode(errors="replace")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None  # the route refuses it as invalid JSON itself
    value = data.get("visibility") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _bound(registry: Registry, workspace_id: int, user_id: int) -> int | None:
    """The dataset the token's workspace mounts, once the token is checked to be live:
    its workspace runs and its user is the owner or a member (a token that outlived
    either, e.g. of a workspace whose container died, is refused like a revoked one)."""
    with registry.session() as s:
        row = s.get(Workspace, workspace_id)
        member = s.scalar(
            sa.select(sa.func.count()).where(
                WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == user_id
            )
        )
        # "running": WorkspaceState.RUNNING (the workspaces' service imports this module)
        if row is None or row.state != "running" or not (row.owner_id == user_id or member):
            raise Unauthenticated(
                f"This token belongs to workspace {workspace_id}, which is not running or "
                "no longer yours; start the workspace again for a new one.",
            )
        return row.dataset_id
