"""Who is making a request: jupyter_server's identity, extended with Workbench tokens.

- A request to a Workbench route carrying ``Authorization: token wb_...`` (or ``Bearer``)
  is the Workbench user that token belongs to. Such a token opens Workbench routes only,
  never the rest of Jupyter (contents, kernels, terminals), and never sets a login cookie.
- Anything else is authenticated by jupyter_server as usual. A login with the server's own
  Jupyter token or password proves that the person is the server's owner, so the
  anonymous user jupyter_server would invent is replaced by ``owner``.
- On a workspace's own origin (workbench_ext/proxy.py, another port of this server's
  host) the login cookie read is this server's: its name has the port the login was on.
- :func:`from_another_site`: browsers send a host's cookies to all its ports, and treat
  those ports as the same site, so a page on a workspace's origin could make the browser
  send requests with a member's login (an image, a script, a form) that no origin check
  sees (a GET carries no ``Origin``). Workbench's routes refuse what a browser marks as
  coming from another origin (``Sec-Fetch-Site``), unless it is the user following a link.
"""

from __future__ import annotations

import re

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from tornado.httputil import HTTPServerRequest
from traitlets import Unicode, default

from workbench.config import default_owner

#: what jupyter_server replaces by "-" in a login cookie's name
NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
WORKBENCH_TOKEN = re.compile(r"^\s*(?:token|bearer)\s+(wb_[A-Za-z0-9_-]+)\s*$", re.IGNORECASE)


def from_another_site(request: HTTPServerRequest) -> bool:
    """Whether a browser sent ``request`` for a page of another origin (a port of the same
    host included), other than a user following a link to a page. Clients that send no
    ``Sec-Fetch-Site`` (scripts, the CLI, older browsers) are not refused by it."""
    site = request.headers.get("Sec-Fetch-Site", "same-origin")
    if site in ("same-origin", "none"):
        return False
    navigating = (
        request.method in ("GET", "HEAD")
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
        and request.headers.get("Sec-Fetch-Dest", "document") == "document"
    )
    return not navigating


def workbench_secret(handler: web.RequestHandler) -> str | None:
    """The Workbench token a request presents, if any."""
    match = WORKBENCH_TOKEN.match(handler.request.headers.get("Authorization", ""))
    return match.group(1) if match else None


class WorkbenchIdentityProvider(PasswordIdentityProvider):
    owner = Unicode(
        help="""The user a login with the server's Jupyter token or password acts as.
        Defaults to $JUPYTERHUB_USER, else the operating-system user running the server.
        (New in Workbench 0.1.)""",
        config=True,
    )

    @default("owner")
    def _default_owner(self) -> str:
        return default_owner()

    async def get_user(self, handler: web.RequestHandler) -> User | None:  # type: ignore[override]
        secret = workbench_secret(handler)
        if secret is None:
            return await self._get_user(handler)
        authenticate = getattr(handler, "authenticate_workbench_token", None)
        if authenticate is None:  # not a Workbench route
            return None
        actor = await authenticate(secret)
        if actor is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(username=actor.username, name=actor.username, display_name=actor.username)

    def get_cookie_name(self, handler: web.RequestHandler) -> str:
        port = handler.settings.get("workbench_login_port")
        if self.cookie_name or port is None:
            return super().get_cookie_name(handler)
        request = handler.request
        default = {"http": 80, "https": 443}.get(request.protocol)
        host = request.host_name if port == default else f"{request.host_name}:{port}"
        return NOT_ALPHANUMERIC.sub("-", f"username-{host}")

    def generate_anonymous_user(self, handler: web.RequestHandler) -> User:
        return User(
            username=self.owner,
            name=self.owner,
            display_name=self.owner,
            initials=self.owner[:1].upper(),
        )
