"""Browser tests: a real ``jupyter lab`` subprocess driven by headless Chromium (Playwright).

- ``lab_server`` (session): builds the lab extension if needed (scripts/build-labextension),
  starts ``jupyter lab`` from this venv on a free port with a random token, an empty
  root_dir and WORKBENCH_HOME in a temporary folder, and the repository's own server config
  (jupyter-config/server-config) and freshly built lab extension taking precedence over
  whatever is installed. Its log goes to test-artifacts/jupyter-lab.log; a failing test
  gets the log's tail in its report and a screenshot in test-artifacts/.
- ``page``: a fresh Chromium context and page (1400x900) per test.
- :func:`open_workbench_panel`: opens Lab, opens the Workbench sidebar panel, waits until
  the Voila-rendered widgets are on screen and returns the panel iframe's FrameLocator.

Chromium is the Debian package (/usr/bin/chromium, or $WORKBENCH_CHROMIUM): Playwright's own
browser download does not work on these machines.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
PANEL_ID = "workbench-panel"  # the sidebar widget's id (workbench_ext/lab/src/index.ts)
START_TIMEOUT_S = 90.0
RENDER_TIMEOUT_MS = 90_000


@dataclass
class LabServer:
    """A running ``jupyter lab``: ``url`` is its base URL and ends with a slash."""

    url: str
    token: str
    home: Path
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def lab_url(self, path: str = "lab", query: str = "") -> str:
        """A URL that logs the browser in (the token sets the login cookie)."""
        extra = f"&{query}" if query else ""
        return f"{self.url}{path}?token={self.token}{extra}"

    def api(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """Call the server's REST API with the token; return the decoded JSON (or None)."""
        response = httpx.request(
            method,
            f"{self.url}{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
            timeout=30,
            **kwargs,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def log_tail(self, lines: int = 150) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _build_labextension() -> None:
    """Make sure workbench_ext/labextension matches the sources (a no-op when up to date)."""
    result = subprocess.run(
        [str(REPO / "scripts" / "build-labextension")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/build-labextension failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )


def _lab_environment(base: Path) -> tuple[dict[str, str], list[str]]:
    """Environment and extra CLI flags isolating the server from the user's Jupyter setup."""
    config_path = base / "config-path" / "jupyter_server_config.d"
    config_path.mkdir(parents=True)
    for config in (REPO / "jupyter-config" / "server-config").glob("*.json"):
        shutil.copy(config, config_path / config.name)

    labextensions = base / "labextensions"
    (labextensions / "@workbench").mkdir(parents=True)
    (labextensions / "@workbench" / "panel").symlink_to(REPO / "workbench_ext" / "labextension")

    settings = base / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )

    env = {
        **os.environ,
        "JUPYTER_CONFIG_PATH": str(config_path.parent),  # the repo's config wins over the venv's
        "JUPYTER_CONFIG_DIR": str(base / "user-config"),
        "JUPYTER_DATA_DIR": str(base / "user-data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "WORKBENCH_HOME": str(base / "workbench-home"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WORKBENCH_URL", None)
    env.pop("WORKBENCH_TOKEN", None)
    flags = [
        f"--LabApp.extra_labextensions_path={labextensions}",
        f"--LabApp.user_settings_dir={base / 'lab-settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    return env, flags


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    _build_labextension()
    base = tmp_path_factory.mktemp("lab")
    root_dir = base / "root"
    root_dir.mkdir()
    env, flags = _lab_environment(base)
    home = Path(env["WORKBENCH_HOME"])
    home.mkdir()
    port = _free_port()
    token = secrets.token_hex(24)
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = base / "jupyter-lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.allow_root=True",
        "--ServerApp.allow_unauthenticated_access=False",
        # jupyter_server_config.d files only enable extensions: other settings in them are
        # ignored, so the identity provider is named here.
        "--ServerApp.identity_provider_class=workbench_ext.identity.WorkbenchIdentityProvider",
        "--WorkbenchApp.upgrade_on_start=True",
        "--VoilaConfiguration.show_tracebacks=True",  # failures explain themselves
        *flags,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = LabServer(
        url=f"http://127.0.0.1:{port}/",
        token=token,
        home=home,
        root_dir=root_dir,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(process)
        shutil.copy(log_path, ARTIFACTS / "jupyter-lab.log")
        _remove_runs_of(home)


def _remove_runs_of(home: Path) -> None:
    """Workspaces outlive a server stop by design; the tests' ones go with the test server."""
    from workbench.backends.docker import DockerBackend
    from workbench.errors import BackendUnavailable

    try:
        backend = DockerBackend.from_env()
    except BackendUnavailable:
        return
    for run in backend.list({"workbench.managed": str(home)}):
        backend.remove(run.id)


def _wait_until_ready(server: LabServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            pytest.fail(
                f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            server.api("api/status")
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                _stop(server.process)
                pytest.fail(
                    f"jupyter lab did not answer /api/status in {START_TIMEOUT_S:.0f} s:\n"
                    f"{server.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.25)
    log = server.log_path.read_text(errors="replace")
    for extension in ("workbench_ext", "voila.server_extension"):
        if f"{extension} | extension failed loading" in log:
            _stop(server.process)
            pytest.fail(f"{extension} failed to load:\n{server.log_tail()}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # the server shuts its kernels down on SIGTERM
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """Replaces pytest-jupyter's autouse loop fixture: browser tests run no in-process
    server, and closing "its" loop would close the one Playwright's sync API runs on."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """Replaces pytest-jupyter's autouse in-process server cleanup (see above)."""
    yield None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: `apt-get install chromium` "
            "(or set WORKBENCH_CHROMIUM), or deselect with -m 'not browser'.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def open_workbench_panel(page: Page, lab_server: LabServer) -> FrameLocator:
    """Open JupyterLab (default layout), open the Workbench panel, wait for its widgets.

    Returns the panel iframe's FrameLocator once the Voila page shows its ipywidgets;
    fails with the page's text if the notebook raised instead.
    """
    page.goto(lab_server.lab_url(query="reset"))  # `reset`: the default layout, panel closed
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    tab = page.locator(f'.jp-SideBar [data-id="{PANEL_ID}"]')
    expect(tab, "the Workbench sidebar tab is missing: lab extension not loaded?").to_be_visible()
    panel = page.locator(f"#{PANEL_ID}")
    if not panel.is_visible():
        tab.click()
    expect(panel).to_be_visible()

    frame = page.frame_locator(f"#{PANEL_ID} iframe")
    widgets = frame.locator(".jupyter-widgets")
    # A failing cell shows as stderr output (Voila turns errors into text there).
    errors = frame.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(widgets.or_(errors).first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    if errors.count() > 0:
        text = frame.locator("body").inner_text()[-4000:]
        raise AssertionError(f"the Workbench panel's notebook failed; the panel says:\n{text}")
    return frame


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure: attach the server log's tail and save a screenshot of the page."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {})
        server = funcargs.get("lab_server")
        if isinstance(server, LabServer):
            report.sections.append(("jupyter lab log (tail)", server.log_tail()))
        page = funcargs.get("page")
        if page is not None and report.when == "call":
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{item.name}-failure.png"))
            except Exception as error:  # a dead page must not hide the real failure
                report.sections.append(("screenshot", f"failed: {error}"))
    return report
