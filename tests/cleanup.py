"""What the test suite leaves on the Docker Engine, found and removed: the containers,
networks and volumes of this session when it ends, and those of sessions that ended without
removing theirs (killed, or a failed test's replicas) when the next one starts. Never what a
developer's own Workbench runs, nor what another test session that still runs made (two
checkouts may test side by side on one engine).

A resource is the suite's when it carries

- ``workbench.test=<session>``: made by a test on the engine itself; :data:`SESSION` is
  this session's, the pytest process's id and a random part;
- ``workbench.managed=<instance>`` where the instance (a Workbench's home, by default) lies
  in a pytest base folder (``.../pytest-of-<user>/pytest-<n>/...``): made by a test's
  Workbench. The base folder holds :data:`SESSION_FILE`, naming its session. A test that
  names its Workbench (``WORKBENCH_INSTANCE``) ends the name with ``-<session>``
  (:func:`instance_name`).

A session has ended when its process is gone, or its base folder (pytest removes old ones).
What cannot be told (a label of another form, a base folder without the file) is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import docker
import docker.errors

from workbench.backends.base import MANAGED_LABEL

SUITE_LABEL = "workbench.test"
SESSION = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: in a session's base folder: its session
SESSION_FILE = "workbench-test-session"
#: what decides whether a resource goes, from its labels
Wanted = Callable[[Mapping[str, str]], bool]


def engine() -> docker.APIClient | None:
    """The engine's API, or None when none answers (a run without Docker removes nothing)."""
    try:
        client = docker.APIClient(timeout=10, **docker.utils.kwargs_from_env())
        client.ping()
    except docker.errors.DockerException:
        return None
    return client


def ended(session: str) -> bool:
    """Whether the session ``session`` names has ended (False when it cannot be told)."""
    found = re.fullmatch(r"(\d+)-[0-9a-f]{8}", session)
    if found is None:
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        return False
    return False


def instance_name(name: str) -> str:
    """A Workbench instance name for a test (``WORKBENCH_INSTANCE``), known as this
    session's."""
    return f"{name}-{SESSION}"


#: a named instance's session (:func:`instance_name`)
NAMED = re.compile(r".*-(\d+-[0-9a-f]{8})")


def this_session(basetemp: Path, session: str = SESSION) -> Wanted:
    """What a session made: its label, an instance in its base folder, or one it named."""
    base = f"{basetemp}{os.sep}"

    def wanted(labels: Mapping[str, str]) -> bool:
        instance = labels.get(MANAGED_LABEL, "")
        named = NAMED.fullmatch(instance)
        return (
            labels.get(SUITE_LABEL) == session
            or instance.startswith(base)
            or (named is not None and named.group(1) == session)
        )

    return wanted


def left_over(root: Path | None) -> Wanted:
    """What sessions that have ended made: by their label, or by an instance in a base
    folder under ``root`` (pytest's ``pytest-of-<user>``; None: by label only)."""

    def wanted(labels: Mapping[str, str]) -> bool:
        if SUITE_LABEL in labels:
            return ended(labels[SUITE_LABEL])
        named = NAMED.fullmatch(labels.get(MANAGED_LABEL, ""))
        if named is not None:
            return ended(named.group(1))
        if root is None:
            return False
        instance = Path(labels.get(MANAGED_LABEL, ""))
        if not instance.is_absolute() or root not in instance.parents:
            return False
        base = root / instance.relative_to(root).parts[0]
        if not re.fullmatch(r"pytest-\d+", base.name):
            return False
        if not base.exists():
            return True
        marker = base / SESSION_FILE
        return marker.is_file() and ended(marker.read_text().strip())

    return wanted


def pytest_root(basetemp: Path) -> Path | None:
    """pytest's folder of this user's base folders (None for a ``--basetemp`` elsewhere)."""
    return next((p for p in basetemp.parents if p.name.startswith("pytest-of-")), None)


def service_network_prefix(instance: str) -> str:
    """What the names of an instance's service networks begin with
    (:func:`workbench.networks.service_network`)."""
    return f"workbench-svc-{hashlib.sha256(instance.encode()).hexdigest()[:8]}-"


def remove(api: docker.APIClient, wanted: Wanted) -> list[str]:
    """Removes the containers (with their anonymous volumes), then the networks and the
    volumes whose labels ``wanted`` takes, and the service networks of the instances found
    on those containers once no container uses them: the names of what it removed."""
    removed: list[str] = []
    instances: set[str] = set()
    for key in (SUITE_LABEL, MANAGED_LABEL):
        for container in api.containers(all=True, filters={"label": key}):
            labels = container.get("Labels") or {}
            if not wanted(labels):
                continue
            instances.add(labels.get(MANAGED_LABEL, ""))
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(container["Id"], force=True, v=True)
                removed.append(container["Names"][0].lstrip("/"))
    prefixes = tuple(service_network_prefix(i) for i in instances if i)
    for network in api.networks(filters={"label": MANAGED_LABEL}):
        name, labels = network["Name"], network.get("Labels") or {}
        if not (wanted(labels) or (prefixes and name.startswith(prefixes))):
            continue
        with contextlib.suppress(docker.errors.APIError):  # gone, or still in use
            if not api.inspect_network(network["Id"]).get("Containers"):
                api.remove_network(network["Id"])
                removed.append(name)
    for key in (SUITE_LABEL, MANAGED_LABEL):
        for volume in api.volumes(filters={"label": key}).get("Volumes") or []:
            if wanted(volume.get("Labels") or {}):
                with contextlib.suppress(docker.errors.APIError):  # gone, or still in use
                    api.remove_volume(volume["Name"])
                    removed.append(volume["Name"])
    return removed


def remove_instance(home: Path) -> list[str]:
    """Removes what the Workbench of ``home`` left running (a test server's replicas once
    the server has stopped: they outlive it on purpose), and stops its endpoints' proxy."""
    from workbench.deployments.proxy import Proxy

    Proxy(home / "proxy").stop()
    api = engine()
    if api is None:
        return []
    with api:
        instance = str(home.resolve())
        return remove(api, lambda labels: labels.get(MANAGED_LABEL) == instance)
