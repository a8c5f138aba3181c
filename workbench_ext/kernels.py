"""Run a host notebook's kernel inside a workspace's container.

A kernelspec whose ``metadata.kernel_provisioner`` is ``{"provisioner_name":
"workbench-workspace", "config": {"workspace_id": N}}`` (written by
:func:`install_kernelspec`) makes jupyter_client start its kernel with
:class:`WorkspaceKernelProvisioner` instead of a local process:

1. The workspace is looked up as the server's owner (its ``WORKBENCH_TOKEN``, else
   :func:`~workbench.config.default_owner`) in the registry of the Workbench server the
   provisioner runs in, else in the one ``Settings.from_env()`` names (``WORKBENCH_HOME``,
   ``WORKBENCH_DB_URL``). Owner or member only; it must be running.
2. The workspaces' backend (:meth:`~workbench.backends.base.Backend.exec_start`: ``docker
   exec`` on Docker; the provisioner has no Docker client of its own) runs, as the
   container's own user and inside its limits, a short ``sh`` launcher that writes the
   connection file into a fresh 0700 folder of the container's ``/tmp`` (``ip`` 0.0.0.0,
   the session key; ports 0 on a first start) and then ``exec``s the kernelspec's argv.
   ipykernel binds five free ports of the container and writes them back; the provisioner
   reads the folder (``read_files``) and answers with the host's side of the same
   connection: ``ip`` is the container's address on its Docker network, which a Linux
   host reaches directly. No port is published.
   The kernel's ``WORKBENCH_TOKEN`` is its user's own token of the workspace's scope
   (:meth:`~workbench.workspaces.service.WorkspaceService.kernel_token`), made for this
   launch and revoked at its clean-up: a member's kernel acts as the member, never as the
   owner whose token the container's own environment holds.
3. ``poll``/``wait`` read the exec's state from the backend; signals are ``kill`` run in
   the container on the kernel's process group (the exec made it a session leader);
   ``cleanup`` removes the folder. A restart in the same container keeps the ports.

Transport encryption: other containers on the same Docker network could reach the
kernel's ports. The session key already guards what they could send; with CurveZMQ
(``encryption``, default ``auto``: on when the image's ipykernel supports it) they cannot
read iopub either.

Errors: starting a kernel raises :class:`WorkspaceKernelError`, a tornado ``HTTPError``
(jupyter_server hands an HTTPError's message to JupyterLab, any other exception becomes
"Unhandled error"). Its ``error`` (also its ``__cause__``) is the Workbench error::

    NotFound             the workspace does not exist or is not yours; no registry here
    PermissionDenied     the server's owner is no Workbench user
    InvalidInput         the kernelspec names no workspace; a transport other than tcp
    Conflict             the workspace is not running (start it first) or lost its container
    BackendUnavailable   no Docker Engine answers
    Unsupported          the server's backend runs no command in a container (not docker)
    BackendError         a Docker Engine call failed
    KernelLaunchFailed   the kernel exited or did not bind its ports in time (its log tail)

Over 600 lines because the provisioner's launch, the kernel's connection through the
container, its restart and clean-up, and the kernelspec it installs are one protocol
with jupyter_client, whose hooks it implements in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupyter_core.paths
import sqlalchemy as sa
import zmq
from jupyter_client.connect import KernelConnectionInfo, port_names
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import KernelProvisionerBase
from tornado import web
from traitlets import CaselessStrEnum, Float, Int, Unicode

from workbench.backends.base import Backend, RunState
from workbench.config import Settings, default_owner
from workbench.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    KernelLaunchFailed,
    NotFound,
    PermissionDenied,
    RunNotFound,
    Unauthenticated,
    Unsupported,
    WorkbenchError,
)
from workbench.schemas.users import NewToken
from workbench.services import Workbench
from workbench.users import Actor
from workbench.workspaces.service import CONTAINER_ROOT

#: the entry point's name in the group ``jupyter_client.kernel_provisioners``
PROVISIONER_NAME = "workbench-workspace"
KERNEL_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)  # jupyter_client's rule

_CONNECTION_VAR = "WORKBENCH_KERNEL_CONNECTION"
# $1: the kernel's folder (must not exist), then the kernel's argv. The exec's pid is the
# kernel's: `exec` keeps it. The connection (key included) comes in an environment
# variable that the kernel does not inherit.
_LAUNCHER = f"""set -e
umask 077
mkdir "$1"
printf '%s' "${_CONNECTION_VAR}" > "$1/connection.json"
unset {_CONNECTION_VAR}
echo $$ > "$1/pid"
dir=$1
shift
exec "$@" > "$dir/kernel.log" 2>&1
"""
_SIGNAL = 'kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2"'
_CURVE_PROBE = (
    "import sys; from ipykernel.kernelapp import IPKernelApp as A; "
    "sys.exit(0 if 'curve_secretkey' in A.class_trait_names() else 3)"
)
_LOG_TAIL = 20
#: the most the kernel's folder (its connection file, pid and log) may hold when read
_FOLDER_MAX_BYTES = 8 << 20


class WorkspaceKernelError(web.HTTPError):
    """Why a workspace kernel did not start, in the form jupyter_server shows users."""

    def __init__(self, error: WorkbenchError) -> None:
        super().__init__(error.status, error.message)
        self.error = error


@contextmanager
def _shown_to_users() -> Iterator[None]:
    try:
        yield
    except WorkbenchError as exc:
        raise WorkspaceKernelError(exc) from exc


# --- kernelspecs --------------------------------------------------------------------------


def kernelspec_name(workspace_id: int) -> str:
    return f"workbench-ws-{workspace_id}"


def kernelspec_display_name(workspace_name: str, workspace_id: int) -> str:
    """What JupyterLab's launcher shows, e.g. ``Python (workspace ws #3)``."""
    return f"Python (workspace {workspace_name} #{workspace_id})"


def kernelspec(workspace_id: int, display_name: str) -> dict[str, Any]:
    """The ``kernel.json`` of a workspace (``kernels/workbench-workspace/`` shows it)."""
    return {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "kernel_provisioner": {
                "provisioner_name": PROVISIONER_NAME,
                "config": {"workspace_id": workspace_id},
            },
        },
    }


def kernels_dir(prefix: str | Path | None = None) -> Path:
    """``<prefix>/share/jupyter/kernels``; without a prefix, the user's Jupyter data folder
    (``jupyter_data_dir()``, which ``JUPYTER_DATA_DIR`` moves), searched first by every
    Jupyter server of this user."""
    if prefix is None:
        return Path(jupyter_core.paths.jupyter_data_dir()) / "kernels"
    return Path(prefix) / "share" / "jupyter" / "kernels"


def install_kernelspec(
    workspace_id: int,
    name: str | None = None,
    display_name: str | None = None,
    prefix: str | Path | None = None,
) -> Path:
    """Write (or replace) the kernelspec of a workspace; return its folder.

    ``name`` defaults to ``workbench-ws-<id>``, ``display_name`` to ``Python (workspace
    #<id>)`` (pass :func:`kernelspec_display_name` for one with the workspace's name).
    """
    if workspace_id < 1:
        raise InvalidInput(f"workspace id {workspace_id} is not valid; ids start at 1.")
    name = name or kernelspec_name(workspace_id)
    if not KERNEL_NAME.match(name):
        raise InvalidInput(
            f"kernel name {name!r} is not valid; use letters, digits, '.', '_' and '-'.",
            field="name",
        )
    folder = kernels_dir(prefix) / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = kernelspec(workspace_id, display_name or f"Python (workspace #{workspace_id})")
    partial = folder / "kernel.json.partial"
    partial.write_text(json.dumps(spec, indent=2) + "\n")
    partial.replace(folder / "kernel.json")
    return folder


def remove_kernelspec(
    workspace_id: int, name: str | None = None, prefix: str | Path | None = None
) -> bool:
    """Remove a workspace's kernelspec; False if there was none."""
    folder = kernels_dir(prefix) / (name or kernelspec_name(workspace_id))
    if not (folder / "kernel.json").is_file():
        return False
    shutil.rmtree(folder)
    return True


# --- the provisioner ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    id: str
    ip: str


class WorkspaceKernelProvisioner(KernelProvisionerBase):
    """Starts the kernel in a running workspace's container (see the module docstring)."""

    workspace_id = Int(
        0, config=True, help="The workspace whose container runs the kernel (kernelspec config)."
    )
    cwd = Unicode(
        CONTAINER_ROOT,
        config=True,
        help="The kernel's working folder inside the container (the notebook's own folder "
        "is a host path, which the container does not have).",
    )
    encryption = CaselessStrEnum(
        ["auto", "required", "disabled"],
        "auto",
        config=True,
        help="CurveZMQ between the host and the kernel: auto (when the image's ipykernel "
        "supports it), required (refuse to start otherwise) or disabled. "
        "KernelManager.transport_encryption='required' also requires it.",
    )
    launch_timeout = Float(
        60.0, config=True, help="Seconds the kernel has to bind its ports in the container."
    )

    _backend: Backend | None = None
    _container: _Container | None = None
    _folder: str = ""
    _exec_id: str | None = None
    _pid: int | None = None
    _token: NewToken | None = None  # this launch's WORKBENCH_TOKEN
    _token_user: Actor | None = None

    # --- the contract ---------------------------------------------------------------------

    @property
    def has_process(self) -> bool:
        return self._exec_id is not None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        try:
            with _shown_to_users():
                kwargs = await self._pre_launch(**kwargs)
            return await super().pre_launch(**kwargs)
        except BaseException:
            await self._forget_token()
            raise

    async def _pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self._manager()
        if km.transport != "tcp":
            raise InvalidInput(f"a workspace kernel needs the tcp transport, not {km.transport}.")
        extra_arguments = kwargs.pop("extra_arguments", None) or []
        kwargs.pop("cwd", None)  # a host folder; the kernel starts in `self.cwd`
        container = await asyncio.to_thread(self._find_container)
        if self._container is None or container.id != self._container.id:
            for name in port_names:  # a first start, or the workspace got a new container
                setattr(km, name, 0)
        self._container = container
        km.ip = container.ip
        self._folder = f"/tmp/workbench-kernel-{self.kernel_id}-{secrets.token_hex(4)}"
        connection_file = f"{self._folder}/connection.json"
        cmd = [arg.replace("{connection_file}", connection_file) for arg in self.kernel_spec.argv]
        cmd += list(extra_arguments)
        if await asyncio.to_thread(self._curve_wanted, cmd[0]):
            if km.curve_publickey is None:
                km.curve_publickey, km.curve_secretkey = zmq.curve_keypair()
        else:
            km.curve_publickey = km.curve_secretkey = None
        return {**kwargs, "cmd": cmd}

    def _finalize_env(self, env: dict[str, str]) -> None:
        """Only the kernelspec's own variables (and the notebook's name) go in: the host's
        environment stays out; the container's is there already, but for its
        ``WORKBENCH_TOKEN``, replaced by the kernel's user's own."""
        super()._finalize_env(env)
        wanted = {*self.kernel_spec.env, "JPY_SESSION_NAME"}
        for key in set(env) - wanted:
            del env[key]
        assert self._token is not None, "pre_launch makes the kernel's token first"
        env["WORKBENCH_TOKEN"] = self._token.secret

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        km = self._manager()
        inside = {
            **km.get_connection_info(),
            "ip": "0.0.0.0",
            "key": km.session.key.decode(),
            "kernel_name": km.kernel_name,
        }
        try:
            with _shown_to_users():
                exec_id, pid, ports = await asyncio.to_thread(
                    self._start, cmd, kwargs.get("env") or {}, inside
                )
        except BaseException:
            await self._forget_token()
            raise
        self._exec_id, self._pid = exec_id, pid
        for name, port in ports.items():
            setattr(km, name, port)
        self.connection_info = km.get_connection_info()
        self.log.info(
            "Workspace %s: kernel %s runs in container %s (pid %s there) at %s",
            self.workspace_id,
            self.kernel_id,
            self._container_id[:12],
            pid,
            self.connection_info["ip"],
        )
        return self.connection_info

    async def poll(self) -> int | None:
        if self._exec_id is None:
            return 0
        return await asyncio.to_thread(self._exit_code, self._exec_id)

    async def wait(self) -> int | None:
        if self._exec_id is None:
            return 0
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.1)
        self._exec_id = self._pid = None
        return code

    async def send_signal(self, signum: int) -> None:
        if self._pid is not None:
            await asyncio.to_thread(self._signal, self._pid, signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """Remove the kernel's folder (its key) from the container and revoke its token; a
        restart makes new ones."""
        if self._container is not None and self._folder:
            await asyncio.to_thread(self._run_quietly, ["rm", "-rf", self._folder])
            self._folder = ""
        await self._forget_token()

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(
            workspace_id=self.workspace_id,
            container_id=self._container.id if self._container else None,
            container_ip=self._container.ip if self._container else None,
            exec_id=self._exec_id,
            pid=self._pid,
            folder=self._folder,
        )
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.workspace_id = provisioner_info["workspace_id"]
        if provisioner_info.get("container_id"):
            self._container = _Container(
                provisioner_info["container_id"], provisioner_info["container_ip"]
            )
        self._exec_id = provisioner_info.get("exec_id")
        self._pid = provisioner_info.get("pid")
        self._folder = provisioner_info.get("folder") or ""

    # --- finding the container (worker threads) -------------------------------------------

    def _find_container(self) -> _Container:
        if self.workspace_id < 1:
            raise InvalidInput(
                f"kernelspec {self.kernel_spec.display_name!r} names no workspace; set "
                "metadata.kernel_provisioner.config.workspace_id (install_kernelspec does)."
            )
        wb, owned = self._workbench()
        try:
            actor = _acting_user(wb)
            container_id = wb.workspaces.running_container(actor, self.workspace_id)
            backend = wb.workspaces.backend
            backend.require_exec()
            self._backend = backend
            self._token = wb.workspaces.kernel_token(actor, self.workspace_id, self.kernel_id[:8])
            self._token_user = actor
        finally:
            if owned:
                wb.close()
        try:
            info = backend.status(container_id)
        except RunNotFound:
            info = None
        if info is None or info.state is not RunState.RUNNING:
            raise Conflict(
                f"Workspace {self.workspace_id}'s container is not running any more "
                f"(not on this Docker Engine, or stopped); start the workspace again "
                f"(`workbench workspace start {self.workspace_id}`).",
                workspace=self.workspace_id,
            )
        if not info.address:
            raise Conflict(
                f"Workspace {self.workspace_id}'s container has no address on a Docker "
                "network, so this host cannot reach a kernel in it.",
                workspace=self.workspace_id,
            )
        return _Container(info.id, info.address)

    def _workbench(self) -> tuple[Workbench, bool]:
        """The Workbench of the server this provisioner runs in, else one built from the
        environment (and owned by the caller, who closes it)."""
        parent = self.parent
        while parent is not None:
            web_app = getattr(parent, "web_app", None)
            found = getattr(web_app, "settings", {}).get("workbench")
            if isinstance(found, Workbench):
                return found, False
            parent = getattr(parent, "parent", None)
        settings = Settings.from_env()
        url = sa.make_url(settings.db_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise NotFound(
                f"No Workbench registry at {url.database}: set WORKBENCH_HOME (or "
                "WORKBENCH_DB_URL) to the server's before starting Jupyter.",
                kind="registry",
                id=str(url.database),
            )
        wb = Workbench.from_settings(settings)
        try:
            wb.registry.check_schema()
        except BaseException:
            wb.close()
            raise
        return wb, True

    async def _forget_token(self) -> None:
        """Revoke this launch's token, if it has one (already revoked if the workspace
        stopped)."""
        token, user = self._token, self._token_user
        self._token = self._token_user = None
        if token is not None and user is not None:
            await asyncio.to_thread(self._revoke_token, user, token.id)

    def _revoke_token(self, user: Actor, token_id: int) -> None:
        wb, owned = self._workbench()
        try:
            with suppress(NotFound):
                wb.users.revoke_token(user, token_id)
        finally:
            if owned:
                wb.close()

    def _curve_wanted(self, executable: str) -> bool:
        """Whether to encrypt: the policy, and whether the image's ipykernel can."""
        policy = getattr(self._manager(), "transport_encryption", "disabled")
        required = "required" in (self.encryption, policy)
        if self.encryption == "disabled" and not required:
            return False
        if not zmq.has("curve"):
            why = "this host's pyzmq was built without CurveZMQ"
        elif self._engine.exec_run(self._container_id, [executable, "-c", _CURVE_PROBE])[0] != 0:
            why = f"the ipykernel of workspace {self.workspace_id}'s image cannot encrypt"
        else:
            return True
        if required:
            raise KernelLaunchFailed(
                f"Transport encryption is required, but {why}; rebuild the environment on a "
                "recent ipykernel, or set the provisioner's encryption to auto.",
                workspace=self.workspace_id,
            )
        self.log.info("Workspace kernel %s: no transport encryption: %s", self.kernel_id, why)
        return False

    # --- the kernel's process (worker threads) --------------------------------------------

    def _start(
        self, cmd: list[str], env: dict[str, str], inside: dict[str, Any]
    ) -> tuple[str, int, dict[str, int]]:
        try:
            exec_id = self._engine.exec_start(
                self._container_id,
                ["sh", "-c", _LAUNCHER, "workbench-kernel", self._folder, *cmd],
                env={**env, _CONNECTION_VAR: json.dumps(inside)},
                workdir=self.cwd,
            )
        except RunNotFound as exc:  # gone since it was found
            raise Conflict(
                f"Workspace {self.workspace_id}'s container is gone; start the workspace "
                f"again (`workbench workspace start {self.workspace_id}`).",
                workspace=self.workspace_id,
            ) from exc
        try:
            return exec_id, *self._wait_until_bound(exec_id)
        except BaseException:
            with suppress(BackendError):
                pid = self._read_folder().get("pid", b"").strip()
                if pid.isdigit():
                    self._signal(int(pid), signal.SIGKILL)
            self._run_quietly(["rm", "-rf", self._folder])  # even if the folder was not read
            raise

    def _wait_until_bound(self, exec_id: str) -> tuple[int, dict[str, int]]:
        """The kernel's pid and ports, once it has written them."""
        deadline = time.monotonic() + self.launch_timeout
        while True:
            files = self._read_folder()
            pid = files.get("pid", b"").strip()
            try:
                info = json.loads(files.get("connection.json", b""))
            except json.JSONDecodeError:  # not there yet, or being written
                info = {}
            ports = {name: int(info.get(name) or 0) for name in port_names}
            if pid.isdigit() and all(ports.values()):
                return int(pid), ports
            code = self._exit_code(exec_id)
            if code is not None or time.monotonic() > deadline:
                if code is not None:  # what it wrote before it exited, read after the exit
                    files = self._read_folder()
                what = (
                    f"exited with code {code}"
                    if code is not None
                    else f"did not bind its ports within {self.launch_timeout:g} s"
                )
                log = files.get("kernel.log", b"").decode(errors="replace").splitlines()
                raise KernelLaunchFailed(
                    f"The kernel in workspace {self.workspace_id}'s container {what}; "
                    "last lines of its log:\n" + "\n".join(log[-_LOG_TAIL:] or ["(empty)"]),
                    workspace=self.workspace_id,
                    exit_code=code,
                )
            time.sleep(0.1)

    def _read_folder(self) -> dict[str, bytes]:
        """The kernel folder's files, read through the backend (none once it is gone)."""
        try:
            return self._engine.read_files(self._container_id, self._folder, _FOLDER_MAX_BYTES)
        except RunNotFound:
            return {}

    def _exit_code(self, exec_id: str) -> int | None:
        try:
            return self._engine.exec_exit_code(exec_id)
        except (RunNotFound, Unsupported):  # gone with its container; no engine to ask
            return -signal.SIGKILL
        except WorkbenchError as exc:  # the engine, or this server's registry (a restore)
            self.log.warning("Workspace kernel %s: no state: %s", self.kernel_id, exc.message)
            return None  # a hiccup of the engine must not restart a live kernel

    def _signal(self, pid: int, signum: int) -> None:
        """``kill`` in the container, to the kernel's process group (else the kernel)."""
        code, out = self._run_quietly(["sh", "-c", _SIGNAL, "kill", str(signum), str(pid)])
        if code != 0:
            self.log.debug("Workspace kernel %s: signal %s: %s", self.kernel_id, signum, out)

    def _run_quietly(self, cmd: list[str]) -> tuple[int, str]:
        """A short command in the container as its user, for clean-ups: (exit code,
        output); a missing container or engine is not an error."""
        try:
            return self._engine.exec_run(self._container_id, cmd)
        except WorkbenchError as exc:
            return -1, exc.message

    # --- helpers --------------------------------------------------------------------------

    @property
    def _engine(self) -> Backend:
        """The workspaces' backend, which runs the kernel's commands in the container
        (found again by a provisioner restored from its info)."""
        if self._backend is None:
            wb, owned = self._workbench()
            try:
                self._backend = wb.workspaces.backend
            finally:
                if owned:
                    wb.close()
        return self._backend

    @property
    def _container_id(self) -> str:
        assert self._container is not None, "pre_launch finds the container first"
        return self._container.id

    def _manager(self) -> KernelManager:
        if not isinstance(self.parent, KernelManager):
            raise TypeError("WorkspaceKernelProvisioner runs under a jupyter_client KernelManager")
        return self.parent


def _acting_user(wb: Workbench) -> Actor:
    """The server's owner: the user of its ``WORKBENCH_TOKEN`` (the extension exports one),
    else the user named like :func:`default_owner`."""
    token = os.environ.get("WORKBENCH_TOKEN", "")
    if token:
        with suppress(Unauthenticated):
            return wb.users.authenticate(token)
    name = default_owner()
    actor = wb.users.find(name)
    if actor is None:
        raise PermissionDenied(
            f"{name!r} is not a Workbench user, so no workspace kernel can start for it; "
            "open JupyterLab through `workbench lab` or ask an admin to add the user."
        )
    return actor
