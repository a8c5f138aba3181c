"""The shapes Workbench installs in (``pyproject.toml``'s extras), each into a fresh virtual
environment from the wheel built here, and run there: the wheel alone is the client and the
CLI's client commands, ``[serve]`` adds the model server, as every environment image has
it; neither brings the server's packages. pip takes the rest from its package index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.environments.builder import build_workbench_wheel

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT_S = 300
#: the server's packages (its extra): none of them is installed with the client or [serve]
SERVER_PACKAGES = ("sqlalchemy", "alembic", "docker", "jupyter_server", "plotly", "ipywidgets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workbench_wheel(tmp_path_factory.mktemp("wheel"))


def install(folder: Path, requirement: str) -> Path:
    """A fresh virtual environment at ``folder`` with ``requirement``; its ``bin/``."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    done = run([folder / "bin" / "python", "-m", "pip", "install", "-q", requirement], folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "bin"


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` as a user of that environment would run it: away from this checkout
    (neither the current folder nor ``PYTHONPATH`` leads to its sources)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=INSTALL_TIMEOUT_S,
    )


def installed(bin_dir: Path, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` that environment can import."""
    code = (
        "import importlib.util, json\n"
        f"print(json.dumps([n for n in {names!r} if importlib.util.find_spec(n)]))"
    )
    done = run([bin_dir / "python", "-c", code], bin_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_wheel_alone_is_the_client_and_the_cli(wheel, tmp_path):
    bin_dir = install(tmp_path / "client", f"workbench @ {wheel.as_uri()}")

    assert installed(bin_dir, SERVER_PACKAGES) == []
    code = "import workbench, workbench.client; print(workbench.client.WorkbenchClient.__name__)"
    done = run([bin_dir / "python", "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "WorkbenchClient"
    done = run([bin_dir / "workbench", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dataset" in done.stdout and "service" in done.stdout
    # a command on this machine's registry says what to install
    done = run([bin_dir / "workbench", "db", "current"], tmp_path)
    assert done.returncode == 1
    assert "pip install 'workbench[server]'" in done.stderr


def test_serve_adds_the_model_server(wheel, tmp_path):
    bin_dir = install(tmp_path / "serve", f"workbench[serve] @ {wheel.as_uri()}")

    assert installed(bin_dir, SERVER_PACKAGES) == []
    done = run([bin_dir / "python", "-m", "workbench.serving", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--runtime" in done.stdout
    done = run([bin_dir / "python", "-c", "import workbench.serving.http"], tmp_path)
    assert done.returncode == 0, done.stderr
