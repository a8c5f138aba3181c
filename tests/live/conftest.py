"""One real Jupyter server subprocess for the client, CLI and widget tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cleanup import remove_instance
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
    """The module's server; what its Workbench still runs when the module ends (a failed
    test's service, whose replicas outlive the server on purpose) goes with it."""
    home = None
    try:
        with live_server(tmp_path_factory.mktemp("live")) as server:
            home = server.home
            wb = Workbench.from_settings(Settings(home=server.home))
            tokens = {}
            for name, role in (("alice", Role.ADMIN), ("bob", Role.MEMBER)):
                user = wb.users.add_user(name, role=role)
                tokens[name] = wb.users.create_token(user.id, "tests").secret
            wb.close()
            yield Live(server, tokens["alice"], tokens["bob"])
    finally:
        if home is not None:
            remove_instance(home)


@pytest.fixture
def no_service_left(live: Live) -> Iterator[None]:
    """Every service the test published is deleted after it, pass or fail: a failed
    test's replicas would otherwise take the CPU of the tests after it."""
    yield
    for who in ("alice", "bob"):
        with live.client(who) as client:
            for service in client.services.list():
                if service.owner == who:
                    client.services.delete(service.id)
