"""``scripts/registry``: the image registry the swarm nodes and the tests pull from, started
once and found again; refused where it would be open to other machines or where another
server holds its port."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "registry"


def _registry(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_it_starts_once_and_answers_the_registry_api(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"WORKBENCH_REGISTRY_ADDR": f"127.0.0.1:{port}", "WORKBENCH_REGISTRY_DATA": str(tmp_path)}
    first = _registry(**env)
    try:
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"127.0.0.1:{port}\n"
        assert "starting docker-registry" in first.stderr
        answer = httpx.get(f"http://127.0.0.1:{port}/v2/")
        assert answer.status_code == 200
        assert answer.headers["docker-distribution-api-version"] == "registry/2.0"
        again = _registry(**env)  # found running: nothing started
        assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, "")
    finally:
        subprocess.run(["pkill", "-f", f"docker-registry serve {tmp_path}/config.yml"])


@pytest.mark.parametrize("address", ["0.0.0.0:5999", "127.evil.example:5999", "127.0.0.1:1\nx"])
def test_an_address_other_machines_reach_is_refused(tmp_path, address):
    done = _registry(WORKBENCH_REGISTRY_ADDR=address, WORKBENCH_REGISTRY_DATA=str(tmp_path))
    assert done.returncode == 1 and done.stdout == ""
    assert "not a loopback address" in done.stderr and "no TLS nor login" in done.stderr
    assert not (tmp_path / "config.yml").exists()


def test_a_port_another_server_holds_is_refused(tmp_path):
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        done = _registry(
            WORKBENCH_REGISTRY_ADDR=f"127.0.0.1:{port}", WORKBENCH_REGISTRY_DATA=str(tmp_path)
        )
    finally:
        server.shutdown()
    assert done.returncode == 1 and done.stdout == ""
    assert "not an image registry answers" in done.stderr
