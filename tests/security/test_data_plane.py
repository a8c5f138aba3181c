"""The data plane outlives the control plane (issue 15, point 11), on the real engine with
`workbench lab` as a process manager runs it.

- Attack: a process manager stops the server (SIGTERM to `workbench lab`, then SIGKILL to
  whatever is left of its process group) while clients post to a service's endpoint. Safe
  outcome: the Jupyter server itself gets the SIGTERM and ends (nothing of its group is
  left for the SIGKILL), no request fails, HAProxy (not in the server's group) runs on,
  and a new server on the same home adopts it (same master pid) and its scale and stop
  take effect at the endpoint.
- Attack: an administrator runs `workbench user add` beside a running server. Safe
  outcome: the endpoints do not notice (no request fails, the same HAProxy serves them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import add_environment
from tests.integration.test_services import Load, auth
from tests.server import free_port
from tests.serving.models import CNN_SIGNATURE, make_cnn
from workbench.client import WorkbenchClient
from workbench.config import Settings
from workbench.deployments.proxy import Proxy
from workbench.models.schemas import NewVersion
from workbench.registry.models import Service
from workbench.services import Workbench

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: how long the Jupyter server may take to end after its SIGTERM
STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Home:
    path: Path
    bob: str  # a token of bob's
    version: int  # bob's ONNX CNN, in the python environment

    def environ(self) -> dict[str, str]:
        env = {**os.environ, "WORKBENCH_HOME": str(self.path), "WORKBENCH_BACKEND": "docker"}
        env.pop("WORKBENCH_URL", None)
        env.pop("WORKBENCH_TOKEN", None)
        return env

    @property
    def proxy(self) -> Proxy:
        return Proxy(self.path / "proxy")


def cnn_version(
    wb: Workbench, owner_id: int, image: str, folder: Path, visibility: str = "private"
) -> int:
    """The owner's ONNX CNN (made in ``folder``) as a version in an environment of
    ``image``: its id."""
    make_cnn(folder / "model.onnx")
    (folder / "signature.json").write_text(json.dumps(CNN_SIGNATURE))
    with wb.registry.session() as s:
        model_id = wb.model_versions.model_for(
            s, name="cnn", owner_id=owner_id, visibility=visibility
        ).id
    env = add_environment(
        wb, name="python-svc", framework="python", image_ref=image,
        owner_id=owner_id, visibility=visibility, state="ready",
    )  # fmt: skip
    lineage = NewVersion(environment_id=env)
    return wb.model_versions.register_version(model_id, folder, lineage, staging="cnn").id


@pytest.fixture
def home(tmp_path: Path, python_env_image: str) -> Iterator[Home]:
    """A migrated home with bob and his CNN version; whatever a test left serving is
    removed afterwards (replicas and proxy)."""
    path = tmp_path / "wbhome"
    wb = Workbench.from_settings(Settings(home=path, backend="docker"))
    try:
        wb.registry.upgrade()
        bob = wb.users.add_user("bob")
        token = wb.users.create_token(bob.id, "data plane").secret
        version = cnn_version(wb, bob.id, python_env_image, tmp_path / "cnn")
    finally:
        wb.close()
    made = Home(path, token, version)
    yield made
    wb = Workbench.from_settings(Settings(home=path, backend="docker"))
    try:
        with wb.registry.session() as s:
            left = s.scalars(sa.select(Service.id)).all()
        actor = wb.users.find("bob")
        assert actor is not None
        for service_id in left:
            wb.deployments.delete(actor, service_id)
        made.proxy.stop()
    finally:
        wb.close()


@dataclass(frozen=True)
class Lab:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def group(self) -> int:
        return self.process.pid  # its own session and process group (start_new_session)


def group_members(pgid: int) -> list[int]:
    """The pids of the processes in process group ``pgid`` now (zombies included)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                members.append(int(stat.parent.name))
    return members


@contextlib.contextmanager
def workbench_lab(home: Home, tmp: Path, timeout: float = 90) -> Iterator[Lab]:
    """`workbench lab` (the real command) in a session and process group of its own, as a
    process manager starts it; until bob's token is answered on its REST API. Whatever is
    left of its group is SIGKILLed at the end."""
    port, log = free_port(), tmp / f"lab-{time.monotonic_ns()}.log"
    (tmp / "root").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "workbench.cli", "lab", "--port", str(port)]
    cmd += ["--root-dir", str(tmp / "root")]
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, env=home.environ(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(process, f"http://127.0.0.1:{port}/", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"lab exited early:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(httpx.TransportError):
                me = httpx.get(
                    f"{lab.url}workbench/api/v1/me",
                    headers={"Authorization": f"token {home.bob}"},
                    timeout=2,
                )
                if me.status_code == 200:
                    break
            assert time.monotonic() < deadline, f"lab not ready:\n{log.read_text()[-4000:]}"
            time.sleep(0.3)
        yield lab
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.group, signal.SIGKILL)
        process.wait(10)


def haproxy_master(home: Home) -> int:
    master = home.proxy.master()
    assert master is not None, "no HAProxy serves the endpoints"
    return master


def test_stopping_then_killing_the_server_leaves_the_endpoint_answering(home: Home, tmp_path: Path):
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(workbench_lab(home, tmp_path))
        bob = stack.enter_context(WorkbenchClient(first.url, home.bob))
        service = bob.services.create("steady", home.version)
        assert service.state == "running", service.message
        master = haproxy_master(home)
        assert os.getpgid(master) != first.group and os.getsid(master) != first.group
        with Load(f"http://{service.address}/predict", service.key, clients=2) as load:
            time.sleep(1)
            load.mark("SIGTERM to workbench lab")
            first.process.send_signal(signal.SIGTERM)
            # the Jupyter server itself got it: it ends, and its group with it
            with contextlib.suppress(subprocess.TimeoutExpired):
                first.process.wait(STOP_TIMEOUT_S)
            left = group_members(first.group)
            load.mark(f"left after SIGTERM: {left}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.group, signal.SIGKILL)  # whatever is left of it
            time.sleep(2)  # no server at all
            load.mark("second server")
            second = stack.enter_context(workbench_lab(home, tmp_path))
            time.sleep(1)
            load.mark("adopted")
            assert haproxy_master(home) == master  # adopted, not started again
            again = stack.enter_context(WorkbenchClient(second.url, home.bob))
            scaled = again.services.scale(service.id, 2)  # takes effect at the endpoint
            assert [r.state for r in scaled.replica_states] == ["running"] * 2
            time.sleep(1)
        config = home.proxy.config.read_text()
        backend = config.split(f"\nbackend replicas_{service.id}\n")[1].split("\n\n")[0]
        assert backend.count(" check") == 2, backend
        again.services.stop(service.id)  # and so does its stop
        r = httpx.post(f"http://{service.address}/predict", json={}, headers=auth(service.key))
        assert r.status_code == 503 and "has no replica ready" in r.text
        again.services.delete(service.id)
        assert left == [], f"the Jupyter server outlived its SIGTERM: {left}"
        assert first.process.returncode is not None
        assert group_members(first.group) == []
    failed = [o for o in load.outcomes if o != 200]
    print(f"{len(load.outcomes)} requests, {len(failed)} failed: {failed[:5]}")
    assert failed == [] and len(load.outcomes) > 100
    # no endpoint left: the proxy stopped with the last one
    assert home.proxy.master() is None


def test_user_add_beside_a_running_server_changes_nothing_for_the_endpoints(
    home: Home, tmp_path: Path
):
    with workbench_lab(home, tmp_path) as lab, WorkbenchClient(lab.url, home.bob) as bob:
        service = bob.services.create("steady", home.version)
        master = haproxy_master(home)
        with Load(f"http://{service.address}/predict", service.key, clients=2) as load:
            time.sleep(1)
            for name in ("carol", "dave"):
                added = subprocess.run(
                    [sys.executable, "-m", "workbench.cli", "user", "add", name],
                    env=home.environ(),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert added.returncode == 0, added.stderr
                assert f"added {name}" in added.stdout
            time.sleep(2)
        assert haproxy_master(home) == master
        bob.services.delete(service.id)
    failed = [o for o in load.outcomes if o != 200]
    print(f"{len(load.outcomes)} requests, {len(failed)} failed: {failed[:5]}")
    assert failed == [] and len(load.outcomes) > 100
