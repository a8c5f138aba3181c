"""A real Jupyter server in a subprocess, configured as `workbench lab` configures it;
:meth:`LiveServer.kill` ends it as a crash or an OOM killer would (SIGKILL)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class LiveServer:
    url: str  # ends with "/"
    jupyter_token: str
    home: Path
    root_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the server: no shutdown hook runs, its threads stop where they are."""
        self.process.kill()
        self.process.wait(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(
    tmp: Path,
    app: str = "jupyter_server",
    owner: str = "owner",
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """Start ``python -m <app>`` (jupyter_server or jupyterlab) with the Workbench enabled
    (``env``: more environment variables for it)."""
    home, root, log = tmp / "wbhome", tmp / "root", tmp / "server.log"
    root.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    environ = {**os.environ, "WORKBENCH_HOME": str(home), "JUPYTERHUB_USER": owner, **(env or {})}
    environ.pop("WORKBENCH_URL", None)
    environ.pop("WORKBENCH_TOKEN", None)
    subprocess.run(
        [sys.executable, "-m", "workbench.cli", "db", "upgrade"],
        env=environ,
        check=True,
        capture_output=True,
    )
    cmd = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.identity_provider_class=workbench_ext.identity.WorkbenchIdentityProvider",
        "--ServerApp.allow_unauthenticated_access=False",
        # no panel here: a kernel warmed for it would only take CPU from what is measured
        "--WorkbenchApp.panel_warm_kernels=0",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=environ, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()[-4000:]}")
            try:
                if (
                    httpx.get(
                        f"{url}api/status", headers={"Authorization": f"token {token}"}, timeout=2
                    ).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {timeout}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield LiveServer(url, token, home, root, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
