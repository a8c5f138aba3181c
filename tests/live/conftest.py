"""One real Jupyter server subprocess for the client, CLI and widget tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.server import LiveServer, live_server
from workbench.client import WorkbenchClient
from workbench.config import Settings
from workbench.enums import Role
from workbench.services import Workbench


@dataclass(frozen=True)
class Live:
    server: LiveServer
    alice: str  # tokens
    bob: str

    def client(self, who: str = "alice") -> WorkbenchClient:
        return WorkbenchClient(self.server.url, getattr(self, who))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("live")) as server:
        wb = Workbench.from_settings(Settings(home=server.home))
        tokens = {}
        for name, role in (("alice", Role.ADMIN), ("bob", Role.MEMBER)):
            user = wb.users.add_user(name, role=role)
            tokens[name] = wb.users.create_token(user.id, "tests").secret
        wb.close()
        yield Live(server, tokens["alice"], tokens["bob"])
