"""An endpoint's port belongs to one proxy (found for issue 18's data plane).

- Attack: a second Workbench home on the machine (another team's server, or a user's own
  `workbench lab`) gets, by a race between choosing a free port and binding it, the port
  of a running endpoint. With ``SO_REUSEPORT`` (HAProxy's default) both proxies bound it
  and the kernel split the endpoint's connections between them: callers of the first
  service were silently answered by the second home's replicas. Safe outcome: the second
  proxy cannot bind the port (its start fails loudly), every request still reaches the
  first service, and a home whose service's port was taken moves that endpoint to a free
  port when it publishes, and tells its owner.
- Attack: a port is taken between the check and the proxy's reload. Safe outcome: the
  reload fails loudly, the endpoints already served go on, and the proxy does not count
  the port as its own (the next publish moves that endpoint instead of failing forever).
- A proxy started before this rule (its listeners shared) starts again on its next change
  instead of handing its shared listeners to a reload.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import add_people, make_workbench
from tests.server import free_port
from workbench.deployments.proxy import Endpoint, Proxy
from workbench.errors import ProxyUnavailable
from workbench.registry.models import Service


@contextmanager
def upstream(name: str) -> Iterator[str]:
    """A replica stand-in answering every GET with its ``name``: its ``host:port``."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def endpoint(port: int, replica: str, service_id: int = 1) -> list[Endpoint]:
    return [Endpoint(service_id, f"svc{service_id}", port, (replica,), "/health", public=True)]


def test_a_second_proxy_cannot_take_a_served_port(tmp_path: Path):
    first, second = Proxy(tmp_path / "first"), Proxy(tmp_path / "second")
    port = free_port()
    with upstream("first") as mine, upstream("second") as theirs:
        try:
            first.apply(endpoint(port, mine))
            assert first.held_elsewhere([port]) == set()  # its own
            assert second.held_elsewhere([port]) == {port}
            with pytest.raises(ProxyUnavailable, match="Address already in use"):
                second.apply(endpoint(port, theirs))
            answers = {httpx.get(f"http://127.0.0.1:{port}/").text for _ in range(40)}
            assert answers == {"first"}
            assert second.master() is None
        finally:
            first.stop()
            second.stop()


def test_a_service_whose_port_was_taken_moves_when_it_publishes(tmp_path: Path):
    wb = make_workbench(tmp_path / "home", backend="fake")
    squatter = Proxy(tmp_path / "squatter")
    port = free_port()
    try:
        bob = add_people(wb).bob
        with wb.registry.session() as s:
            service = Service(name="digits", owner_id=bob.id, port=port, public_endpoint=True)
            s.add(service)
            s.flush()
            service_id = service.id
        with upstream("squatter") as theirs:
            squatter.apply(endpoint(port, theirs))  # took the port since it was chosen
            wb.deployments.publish()
            with wb.registry.session() as s:
                moved = s.scalar(sa.select(Service.port).where(Service.id == service_id))
            assert moved is not None and moved != port
            assert wb.deployments.proxy.serving() == {moved}
            with wb.registry.session() as s:
                message = s.scalar(sa.select(Service.message).where(Service.id == service_id))
            assert f"moved from port {port} to {moved}" in str(message)
            # the squatter's endpoint is its own still; the service answers on its new port
            assert httpx.get(f"http://127.0.0.1:{port}/").text == "squatter"
            stopped = httpx.get(f"http://127.0.0.1:{moved}/v2/health/ready")
            assert stopped.status_code == 503 and "digits" in stopped.json()["error"]
    finally:
        wb.deployments.proxy.stop()
        squatter.stop()
        wb.close()


def test_a_port_taken_before_a_reload_fails_it_and_is_not_counted_as_served(tmp_path: Path):
    proxy = Proxy(tmp_path / "proxy")
    first, second = free_port(), free_port()
    with upstream("one") as one, upstream("two") as two, socket.socket() as squatter:
        try:
            proxy.apply(endpoint(first, one))
            squatter.bind(("127.0.0.1", second))
            squatter.listen()
            with pytest.raises(ProxyUnavailable, match=f"listens on port\\(s\\) {second},"):
                proxy.apply([*endpoint(first, one), *endpoint(second, two, service_id=2)])
            assert proxy.serving() == {first}
            assert proxy.held_elsewhere([first, second]) == {second}
            assert httpx.get(f"http://127.0.0.1:{first}/").text == "one"
        finally:
            proxy.stop()


def test_a_proxy_that_shares_its_ports_starts_again_on_its_next_change(tmp_path: Path):
    proxy = Proxy(tmp_path / "proxy")
    port = free_port()
    with upstream("one") as one:
        try:
            proxy.apply(endpoint(port, one))
            master = proxy.master()
            proxy.apply(endpoint(port, one))
            assert proxy.master() == master  # a reload: the same master
            # as a proxy started before noreuseport (and served.ports) was written: its
            # ports are its own still (an upgrade moves no endpoint), and it starts again
            text = proxy.config.read_text()
            proxy.config.write_text(text.replace("    noreuseport\n", ""))
            proxy.served.unlink()
            assert proxy.held_elsewhere([port]) == set()
            proxy.apply(endpoint(port, one))
            assert proxy.master() not in (None, master)
            assert httpx.get(f"http://127.0.0.1:{port}/").text == "one"
        finally:
            proxy.stop()
