"""A workspace's JupyterLab, in its container on the real Docker Engine, reached only through
the server's authenticated proxy: who gets in, cookies and XSRF, websockets, errors."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.integration.conftest import BASE_URL, Lab
from workbench.registry import models as m

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KERNEL_PROTOCOL = "v1.kernel.websocket.jupyter.org"


async def login(lab: Lab, client) -> str:
    """Log ``client`` in with the server's token like a browser does; its ``_xsrf``."""
    await client.get(f"{lab.server_url}login")
    xsrf = client.cookies["_xsrf"]
    r = await client.post(
        f"{lab.server_url}login", data={"password": lab.jupyter_token, "_xsrf": xsrf}
    )
    assert r.status_code == 302, r.text
    return xsrf


async def test_only_the_owner_and_members_get_in(lab: Lab):
    ws_id = lab.create(lab.owner)
    other = lab.create(lab.alice, name="alices")
    api_status = lab.url(ws_id, "api/status")

    async with lab.client(headers=lab.auth) as c:
        r = await c.get(api_status)
        assert r.status_code == 409
        assert "start it first" in r.json()["message"]

        started = time.monotonic()
        await lab.start(lab.owner, ws_id)
        waiting = await lab.wait_ready(ws_id)
        print(f"\nJupyterLab answered {time.monotonic() - started:.1f} s after the start")
        assert waiting, "JupyterLab answered at once: no 503 seen"
        for r in waiting:  # before it listens: 503, JSON, Retry-After
            assert r.headers["Retry-After"] == "2"
            assert r.json()["error"] == "workspace_not_ready"

        r = await c.get(api_status)
        assert r.status_code == 200 and "kernels" in r.json()  # the container's own answer
        assert "set-cookie" not in r.headers
        # the server's own token in the query is not passed on (it would shadow the header)
        r = await c.get(api_status, params={"token": lab.jupyter_token})
        assert r.status_code == 200

        # someone else's workspace and an unknown one look the same; a member gets in
        assert (await c.get(lab.url(other, "api/status"))).status_code == 404
        assert (await c.get(lab.url(999, "api/status"))).status_code == 404
        with lab.wb.registry.session() as s:
            s.add(m.WorkspaceMember(workspace_id=other, user_id=lab.owner.id))
        assert (await c.get(lab.url(other, "api/status"))).status_code == 409

    async with lab.client() as anonymous:
        # the API answers 403, a page sends the browser to the login page
        r = await anonymous.get(api_status)
        assert r.status_code == 403 and r.json()["error"] == "http_403"
        r = await anonymous.post(lab.url(ws_id, "api/kernels"), json={})
        assert r.status_code == 403
        r = await anonymous.get(lab.url(ws_id, "lab"))
        assert r.status_code == 302 and r.headers["Location"].startswith(f"{BASE_URL}login")
        # a Workbench API token opens the REST API, never a workspace
        wb_token = lab.wb.users.create_token(lab.owner.id, "t").secret
        r = await anonymous.get(api_status, headers={"Authorization": f"token {wb_token}"})
        assert r.status_code == 403 and "REST API" in r.json()["message"]
        r = await anonymous.get(
            f"{lab.server_url}workbench/api/v1/workspaces/{ws_id}",
            headers={"Authorization": f"token {wb_token}"},
        )
        assert r.status_code == 200

    await asyncio.get_running_loop().run_in_executor(None, lab.wb.workspaces.stop, lab.owner, ws_id)
    async with lab.client(headers=lab.auth) as c:
        r = await c.get(api_status)
        assert r.status_code == 409 and r.json()["error"] == "conflict"
        assert "start it first" in r.json()["message"]


async def test_a_browser_login_works_with_one_set_of_cookies_and_xsrf(lab: Lab):
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    container_token = lab.wb.workspaces.jupyter_token(ws_id)

    async with lab.client() as browser:
        xsrf = await login(lab, browser)
        host_cookies = set(browser.cookies.keys())

        # JupyterLab's page, on the workspace's own origin (proxy.py), with the same login
        moved = await browser.get(lab.url(ws_id, "lab"))
        assert moved.status_code == 302
        page = await browser.get(moved.headers["Location"])
        assert page.status_code == 200 and "JupyterLab" in page.text
        assert container_token not in page.text
        config = json.loads(
            re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text)[1]
        )
        assert config["baseUrl"] == f"{BASE_URL}workbench/proxy/workspaces/{ws_id}/"
        assert config["token"] == ""  # so its JupyterLab relies on this server's cookie
        assert "set-cookie" not in page.headers  # the container sets no cookie
        assert set(browser.cookies.keys()) == host_cookies

        kernels = lab.url(ws_id, "api/kernels")
        # the server's XSRF rule holds on the proxy: cookie without X-XSRFToken is refused
        r = await browser.post(kernels, json={"name": "python3"})
        assert r.status_code == 403
        r = await browser.post(kernels, json={"name": "python3"}, headers={"X-XSRFToken": xsrf})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        # a websocket with the login cookie, from this server's pages only
        channels = lab.ws_url(ws_id, f"api/kernels/{kernel_id}/channels")
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        origin = lab.server_url.split(BASE_URL)[0]
        ws = await websocket_connect(
            HTTPRequest(channels, headers={"Cookie": cookie, "Origin": origin})
        )
        ws.close()
        evil = HTTPRequest(channels, headers={"Cookie": cookie, "Origin": "http://evil.example"})
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(evil)
        assert refused.value.code == 404
        r = await browser.delete(f"{kernels}/{kernel_id}", headers={"X-XSRFToken": xsrf})
        assert r.status_code == 204

        # bodies stream both ways: an 8 MB file up through the contents API, then down
        text = "0123456789abcdef" * (512 * 1024)
        r = await browser.put(
            lab.url(ws_id, "api/contents/big.txt"),
            json={"type": "file", "format": "text", "content": text},
            headers={"X-XSRFToken": xsrf},
        )
        assert r.status_code == 201, r.text
        r = await browser.get(lab.url(ws_id, "files/big.txt"))
        assert r.status_code == 200 and r.text == text
        assert r.headers["Content-Length"] == str(len(text))
        # the container's redirects stay under this server's URL
        r = await browser.get(lab.url(ws_id))
        assert r.status_code == 302
        assert r.headers["Location"].startswith(f"{BASE_URL}workbench/proxy/workspaces/{ws_id}/")

        # and on the server's own routes, unchanged
        r = await browser.post(f"{lab.server_url}api/contents", json={"type": "notebook"})
        assert r.status_code == 403


async def test_kernels_and_terminals_over_the_proxied_websockets(lab: Lab):
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client(headers=lab.auth) as c:
        r = await c.post(lab.url(ws_id, "api/kernels"), json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        r = await c.post(lab.url(ws_id, "api/terminals"))
        assert r.status_code == 200, r.text
        terminal = r.json()["name"]

    channels = HTTPRequest(
        lab.ws_url(ws_id, f"api/kernels/{kernel_id}/channels?session_id=test"),
        headers=lab.auth,
    )
    kernel_ws = await websocket_connect(channels, subprotocols=[KERNEL_PROTOCOL])
    assert kernel_ws.selected_subprotocol == KERNEL_PROTOCOL
    session = Session()
    request = session.msg(
        "execute_request",
        content={"code": "1+1", "silent": False, "store_history": False, "allow_stdin": False},
    )
    await kernel_ws.write_message(
        serialize_msg_to_ws_v1(request, "shell", session.pack), binary=True
    )
    result = None
    while result is None:
        channel, parts = deserialize_msg_from_ws_v1(
            await asyncio.wait_for(kernel_ws.read_message(), 30)
        )
        header, parent = session.unpack(parts[0]), session.unpack(parts[1])
        if header["msg_type"] == "execute_result" and parent["msg_id"] == request["msg_id"]:
            assert channel == "iopub"
            result = session.unpack(parts[3])["data"]["text/plain"]
    assert result == "2"
    kernel_ws.close()

    term_ws = await websocket_connect(
        HTTPRequest(lab.ws_url(ws_id, f"terminals/websocket/{terminal}"), headers=lab.auth)
    )
    await term_ws.write_message(json.dumps(["stdin", "echo $((6 * 7))\r"]))
    output = ""
    while "42" not in output:
        message = await asyncio.wait_for(term_ws.read_message(), 30)
        assert message is not None, output
        kind, *payload = json.loads(message)
        if kind == "stdout":
            output += payload[0]
    term_ws.close()

    # without the server's login the websocket is refused before reaching the container
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(lab.ws_url(ws_id, f"terminals/websocket/{terminal}"))
    assert refused.value.code == 403
