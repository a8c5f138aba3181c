"""A real Jupyter server (pytest-jupyter) with the Workbench extension, and two users."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from tests.conftest import SMALL_LIMITS, server_config
from workbench.enums import Role
from workbench.services import Workbench

OWNER = "owner"


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(
        tmp_path / "wbhome",
        "fake",
        max_archive_bytes=SMALL_LIMITS.max_archive_bytes,
        max_unpacked_bytes=SMALL_LIMITS.max_total_bytes,
    )


@dataclass
class Api:
    """jp_fetch with a Workbench token, JSON in and out, errors returned (not raised)."""

    fetch: Any
    token: str
    username: str

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = {"Authorization": f"token {self.token}", **(headers or {})}
        kwargs: dict[str, Any] = {"method": method, "headers": hdrs, "params": params}
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None or method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = json.dumps(body if body is not None else {})
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        try:
            response: HTTPResponse = await self.fetch(*path.strip("/").split("/"), **kwargs)
        except HTTPClientError as exc:
            response = exc.response
        try:
            payload = json.loads(response.body) if response.body else None
        except ValueError:
            payload = response.body
        return response.code, payload


@dataclass
class Users:
    workbench: Workbench
    alice: Api
    bob: Api
    owner: Api
    port: int
    base_url: str


@pytest.fixture
def users(jp_serverapp, jp_fetch, jp_auth_header, jp_http_port, jp_base_url) -> Users:
    wb: Workbench = jp_serverapp.web_app.settings["workbench"]
    wb.start()  # the job runner: a real server starts it once its loop runs (pytest-jupyter
    # never runs the extensions' start hooks)
    apis = {}
    for name, role in (("alice", Role.ADMIN), ("bob", Role.MEMBER)):
        info = wb.users.add_user(name, role=role)
        apis[name] = Api(jp_fetch, wb.users.create_token(info.id, "t").secret, name)
    jupyter_token = jp_auth_header["Authorization"].split()[1]
    owner = Api(jp_fetch, jupyter_token, OWNER)
    return Users(wb, apis["alice"], apis["bob"], owner, jp_http_port, jp_base_url)


async def finished(api: Api, job_id: int, timeout: float = 20) -> dict:
    """The job once it is over (the runner does it in a thread)."""
    for _ in range(int(timeout / 0.05)):
        code, job = await api("GET", f"workbench/api/v1/jobs/{job_id}")
        assert code == 200
        if job["state"] in ("succeeded", "failed", "stopped"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} not over after {timeout} s: {job}")
