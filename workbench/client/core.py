"""The client itself: its connection (requests, streams, uploads, errors turned back into
the server's exception classes), the users' and teams' calls, and one attribute per area
(``datasets``, ``workspaces``, ``environments``, ``algorithms``, ``training``, ``models``,
``services``, ``jobs``, ``cluster``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from workbench.client._http import API, CHUNK, Progress, error_from, parse_list
from workbench.client.algorithms import AlgorithmsAPI
from workbench.client.cluster import ClusterAPI
from workbench.client.datasets import DatasetsAPI
from workbench.client.environments import EnvironmentsAPI
from workbench.client.jobs import JobsAPI
from workbench.client.models import ModelsAPI
from workbench.client.services import ServicesAPI
from workbench.client.training import TrainingAPI
from workbench.client.workspaces import WorkspacesAPI
from workbench.config import Settings
from workbench.errors import ServerUnreachable, Unauthenticated
from workbench.schemas.invitations import InvitationInfo
from workbench.schemas.quotas import QuotaInfo
from workbench.schemas.users import NewToken, TeamInfo, TokenInfo, UserInfo


class WorkbenchClient:
    """The REST API of the Workbench at ``url``, as the user whose API token is ``token``
    (:meth:`from_env`: the saved login). ``transport``: httpx's, e.g. a mock in tests."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self._http = httpx.Client(
            base_url=self.url + API,
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            transport=transport,
        )
        self.datasets = DatasetsAPI(self)
        self.workspaces = WorkspacesAPI(self)
        self.environments = EnvironmentsAPI(self)
        self.algorithms = AlgorithmsAPI(self)
        self.training = TrainingAPI(self)
        self.models = ModelsAPI(self)
        self.services = ServicesAPI(self)
        self.jobs = JobsAPI(self)
        self.cluster = ClusterAPI(self)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WorkbenchClient:
        """From ``WORKBENCH_URL`` and ``WORKBENCH_TOKEN``, else the credentials file that
        ``workbench login`` or ``workbench lab`` wrote under ``WORKBENCH_HOME``."""
        env = os.environ if environ is None else environ
        url, token = env.get("WORKBENCH_URL"), env.get("WORKBENCH_TOKEN")
        if not (url and token):
            path = Settings.from_env(dict(env)).credentials_file
            if not path.exists():
                raise Unauthenticated(
                    "No Workbench server configured: set WORKBENCH_URL and WORKBENCH_TOKEN, "
                    "or run `workbench login URL --token TOKEN` (or `workbench lab`)."
                )
            saved = json.loads(path.read_text())
            url, token = saved["url"], saved["token"]
        return cls(url, token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WorkbenchClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Cannot reach the Workbench at {self.url} ({exc}); is the server running?",
                url=self.url,
            ) from exc
        if response.is_error:
            raise error_from(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it comes; errors raised like :meth:`request`."""
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise error_from(response)
                yield response
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Cannot reach the Workbench at {self.url} ({exc}); is the server running?",
                url=self.url,
            ) from exc

    def upload(
        self,
        path: str,
        file: Path,
        progress: Progress | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """PUT a file's bytes as the body, streamed in chunks (never read whole)."""
        total = file.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with file.open("rb") as f:
                while chunk := f.read(CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress:
                        progress(sent, total)

        return self.json(
            "PUT",
            path,
            params=params,
            content=chunks(),
            headers={"Content-Length": str(total), "Content-Type": "application/octet-stream"},
            timeout=httpx.Timeout(60.0, read=None, write=None),
        )

    # --- users and tokens -----------------------------------------------------------------

    def me(self) -> UserInfo:
        return UserInfo.model_validate(self.json("GET", "/me"))

    def users(self) -> list[UserInfo]:
        return parse_list(UserInfo, self.json("GET", "/users"))

    def add_user(self, username: str, role: str = "member") -> UserInfo:
        body = {"username": username, "role": role}
        return UserInfo.model_validate(self.json("POST", "/users", json=body))

    def create_token(self, name: str, expires_in_days: int | None = None) -> NewToken:
        body = {"name": name, "expires_in_days": expires_in_days}
        return NewToken.model_validate(self.json("POST", "/tokens", json=body))

    def tokens(self) -> list[TokenInfo]:
        return parse_list(TokenInfo, self.json("GET", "/tokens"))

    def revoke_token(self, token_id: int) -> None:
        self.request("DELETE", f"/tokens/{token_id}")

    def teams(self) -> list[TeamInfo]:
        return parse_list(TeamInfo, self.json("GET", "/teams"))

    def create_team(self, name: str, description: str = "") -> TeamInfo:
        body = {"name": name, "description": description}
        return TeamInfo.model_validate(self.json("POST", "/teams", json=body))

    def add_team_member(self, team_id: int, username: str) -> TeamInfo:
        """Invite ``username`` to the team: a member once they accept."""
        data = self.json("POST", f"/teams/{team_id}/members", json={"username": username})
        return TeamInfo.model_validate(data)

    def invitations(self) -> list[InvitationInfo]:
        """The invitations to you and those you sent."""
        return parse_list(InvitationInfo, self.json("GET", "/invitations"))

    def accept_invitation(self, invitation_id: int) -> InvitationInfo:
        data = self.json("POST", f"/invitations/{invitation_id}/accept")
        return InvitationInfo.model_validate(data)

    def decline_invitation(self, invitation_id: int) -> InvitationInfo:
        data = self.json("POST", f"/invitations/{invitation_id}/decline")
        return InvitationInfo.model_validate(data)

    def cancel_invitation(self, invitation_id: int) -> None:
        self.request("DELETE", f"/invitations/{invitation_id}")

    def quota(self, username: str) -> QuotaInfo:
        """A user's quotas and use (your own; anyone's for an admin)."""
        return QuotaInfo.model_validate(self.json("GET", f"/users/{username}/quota"))

    def set_quota(self, username: str, **quotas: int | None) -> QuotaInfo:
        """Set a user's ``replicas``, ``memory_mb`` or ``upload_bytes`` (admins; None: the
        server's default)."""
        data = self.json("PUT", f"/users/{username}/quota", json=quotas)
        return QuotaInfo.model_validate(data)
