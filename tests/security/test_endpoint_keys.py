"""A service's endpoint asks for its key (issue 15, point 4), attacked through REST as a
second user against a real server on the real engine.

- carol (an ordinary user) calls bob's private endpoint with no key, with her own
  service's key, with a made-up bearer, and with the key bob just rotated out: 401 each,
  with a JSON body that says what to send; bob's current key opens it (200).
- carol cannot rotate bob's key, nor read it back (404); the endpoint's key is given once.
- The key is never stored in clear: not in the registry (the database file read whole),
  not in HAProxy's map (only SHA-256 hashes), nor any other file of the server's home.
- A service made public on purpose answers without a key and says so in its detail.
- The Workbench server's relay still reaches a keyed endpoint for whoever sees it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.security.test_data_plane import cnn_version
from tests.server import LiveServer, live_server
from workbench.client import WorkbenchClient
from workbench.config import Settings
from workbench.errors import NotFound
from workbench.services import Workbench

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SAMPLE = {"image": [[[0.5] * 8] * 8]}


@dataclass(frozen=True)
class Team:
    server: LiveServer
    bob: WorkbenchClient
    carol: WorkbenchClient
    version: int  # bob's CNN (carol serves the same model: it is public)


@pytest.fixture
def team(tmp_path: Path, python_env_image: str) -> Iterator[Team]:
    with live_server(tmp_path / "server") as server:
        wb = Workbench.from_settings(Settings(home=server.home))
        try:
            tokens = {}
            for name in ("bob", "carol"):
                user = wb.users.add_user(name)
                tokens[name] = wb.users.create_token(user.id, "keys").secret
            bob = wb.users.find("bob")
            assert bob is not None
            version = cnn_version(wb, bob.id, python_env_image, tmp_path / "cnn", "public")
        finally:
            wb.close()
        with (
            WorkbenchClient(server.url, tokens["bob"]) as bob_client,
            WorkbenchClient(server.url, tokens["carol"]) as carol_client,
        ):
            yield Team(server, bob_client, carol_client, version)
            for client in (bob_client, carol_client):
                for service in client.services.list():
                    if service.owner == client.me().username:
                        client.services.delete(service.id)


def call(address: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"http://{address}/predict", json=SAMPLE, headers=headers, timeout=10)


def bearer(key: str | None) -> dict[str, str]:
    assert key
    return {"Authorization": f"Bearer {key}"}


def refused(answer: httpx.Response) -> bool:
    """A 401 that says what to send, from the proxy (no replica saw the request)."""
    return (
        answer.status_code == 401
        and answer.headers.get("www-authenticate") == "Bearer"
        and "Authorization: Bearer <key>" in answer.json()["error"]
    )


def files_holding(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_private_endpoint_answers_only_its_key(team: Team):
    bob, carol = team.bob, team.carol
    victim = bob.services.create("victim", team.version)
    assert victim.state == "running" and victim.key and victim.key.startswith("wbsk_")
    assert not victim.public_endpoint
    theirs = carol.services.create("mine", team.version, replicas=0)
    assert theirs.key and theirs.key != victim.key

    # the key is given once: neither the detail nor the list shows it again
    assert bob.services.get(victim.id).key is None
    assert all(s.key is None for s in bob.services.list())

    # carol, at bob's endpoint
    assert refused(call(victim.address))  # no key
    assert refused(call(victim.address, bearer(theirs.key)))  # her own service's key
    assert refused(call(victim.address, {"X-Api-Key": theirs.key}))
    assert refused(call(victim.address, bearer("wbsk_" + "A" * 43)))  # a made-up one
    assert refused(call(victim.address, {"Authorization": victim.key}))  # not a bearer
    with pytest.raises(NotFound):  # she cannot rotate it (or see that it exists)
        carol.services.rotate_key(victim.id)
    with pytest.raises(NotFound):
        carol.services.get(victim.id)

    # bob's key opens it, as a bearer or as X-Api-Key
    assert call(victim.address, bearer(victim.key)).status_code == 200
    assert call(victim.address, {"X-Api-Key": victim.key}).status_code == 200

    # rotated: the old key is refused at once, the new one answers
    new_key = bob.services.rotate_key(victim.id)
    assert new_key != victim.key
    assert refused(call(victim.address, bearer(victim.key)))
    assert call(victim.address, bearer(new_key)).status_code == 200

    # the relay through the Workbench server, for whoever sees the service
    assert bob.services.predict(victim.id, SAMPLE)["scores"]
    with pytest.raises(NotFound):
        carol.services.predict(victim.id, SAMPLE)

    # never in clear: the registry holds the SHA-256, the proxy's map hashes only
    home = team.server.home
    db = home / "registry.db"
    with sqlite3.connect(db) as conn:
        stored = dict(conn.execute("SELECT name, key_hash FROM services").fetchall())
    assert stored["victim"] == hashlib.sha256(new_key.encode()).hexdigest()
    assert stored["mine"] == hashlib.sha256(theirs.key.encode()).hexdigest()
    keys_map = (home / "proxy" / "keys.map").read_text()
    assert all(re.fullmatch(r"[0-9A-F]{64} (\d+|\*)", line) for line in keys_map.splitlines())
    assert stored["victim"].upper() in keys_map and victim.key.upper() not in keys_map.upper()
    for key in (victim.key, new_key, theirs.key):
        assert files_holding(home, key) == [], key


def test_a_public_endpoint_is_open_on_purpose_and_says_so(team: Team):
    service = team.bob.services.create("open", team.version, public_endpoint=True)
    assert service.public_endpoint and team.bob.services.get(service.id).public_endpoint
    answer = call(service.address)  # anyone, no key
    assert answer.status_code == 200, answer.text
