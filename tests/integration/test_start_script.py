"""The README's main command (issue 17, point 8): `scripts/start` sets up everything itself,
the Docker Engine included; where it cannot start the engine it says what to do. The
`workbench lab` it ends in serves the Workbench on the URL it prints, with no warning about
settings nobody made.

That `scripts/start` alone ends with the three preset algorithms online is shown by running
it on a machine without the preset environment images (about 15 minutes, most of it the
PyTorch environment's build), not here: the suite builds its environment images under a
tag of its own, and building the presets' as well would double that time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.server import free_port
from workbench.client import WorkbenchClient
from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def launched(cmd: list[str], home: Path, log: Path, **env: str) -> Iterator[Callable[[], str]]:
    """``cmd`` in a process group of its own with ``WORKBENCH_HOME=home``; yields what it
    has printed so far. SIGTERM to its group at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "WORKBENCH_HOME": str(home), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def printed() -> str:
        text = log.read_text()
        assert process.poll() is None, f"exited early:\n{text[-4000:]}"
        return text

    try:
        yield printed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def until(check: Callable[[], bool], printed: Callable[[], str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, printed()[-4000:]
        time.sleep(0.5)


def answers(port: int, home: Path) -> Callable[[], bool]:
    """Whether the server on ``port`` answers the token the command saved for the CLI."""

    def check() -> bool:
        with contextlib.suppress(OSError, ValueError, KeyError, WorkbenchError):
            token = json.loads((home / "credentials.json").read_text())["token"]
            with WorkbenchClient(f"http://127.0.0.1:{port}/", token, timeout=2) as client:
                return bool(client.me().username)
        return False

    return check


def test_workbench_lab_serves_and_prints_no_deprecation_warning(tmp_path: Path):
    home, port = tmp_path / "home", free_port()
    cmd = [sys.executable, "-m", "workbench.cli", "lab", "--port", str(port), "--root-dir", "/tmp"]
    with launched(cmd, home, tmp_path / "lab.log", WORKBENCH_BACKEND="fake") as printed:
        until(answers(port, home), printed, 60)
        text = printed()
    assert f"Open JupyterLab:    http://127.0.0.1:{port}/lab?token=" in text
    assert "ServerApp.token" not in text, text
    assert "DeprecationWarning" not in text, text


def test_scripts_docker_says_what_to_do_when_it_may_not_start_the_engine():
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/tmp",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # no engine answers this user
    }
    done = subprocess.run(
        [*nobody, "bash", "-s"],
        input=(ROOT / "scripts" / "docker").read_text(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no Docker Engine answers, and starting one needs root" in done.stderr
    assert "Run scripts/docker as root (or with sudo)" in done.stderr
