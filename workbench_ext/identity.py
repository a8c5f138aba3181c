"""Who is making a request: jupyter_server's identity, extended with Workbench tokens.

- A request to a Workbench route carrying ``Authorization: token wb_...`` (or ``Bearer``)
  is the Workbench user that token belongs to. Such a token opens Workbench routes only,
  never the rest of Jupyter (contents, kernels, terminals), and never sets a login cookie.
- Anything else is authenticated by jupyter_server as usual. A login with the server's own
  Jupyter token or password proves that the person is the server's owner, so the
  anonymous user jupyter_server would invent is replaced by ``owner``.
"""

from __future__ import annotations

import re

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from traitlets import Unicode, default

from workbench.config import default_owner

WORKBENCH_TOKEN = re.compile(r"^\s*(?:token|bearer)\s+(wb_[A-Za-z0-9_-]+)\s*$", re.IGNORECASE)


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

    def generate_anonymous_user(self, handler: web.RequestHandler) -> User:
        return User(
            username=self.owner,
            name=self.owner,
            display_name=self.owner,
            initials=self.owner[:1].upper(),
        )
