"""Eight clients at once create the same name: a real server process, a fresh database.

Each client is a thread with its own HTTP connection; a barrier releases them together,
so their requests reach the server's thread pool at the same time and most pass the
services' look-first check before any insert commits. The database's unique constraint
decides: one 201, seven 409 with the usual body, one row, nothing else written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.server import LiveServer, live_server
from workbench.config import Settings
from workbench.registry import models as m
from workbench.services import Workbench

CLIENTS = 8
API = "workbench/api/v1"
KINDS = [
    (
        "datasets",
        m.Dataset,
        {"purpose": "image", "sub_purpose": "classification", "format": "dir"},
        "You already have a dataset named 'race' (id {id}); pick another name.",
    ),
    (
        "environments",
        m.Environment,
        {"framework": "python"},
        "There already is an environment named 'race' (id {id}); pick another name.",
    ),
    (
        "algorithms",
        m.Algorithm,
        {"purpose": "text", "sub_purpose": "classification"},
        "There already is an algorithm named 'race' (id {id}); pick another name.",
    ),
]


@pytest.fixture
def server(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, Workbench, str]]:
    monkeypatch.setenv("WORKBENCH_DB_URL", db_url)
    monkeypatch.setenv("WORKBENCH_BACKEND", "fake")
    with live_server(tmp_path) as live:
        wb = Workbench.from_settings(Settings(home=live.home, db_url=db_url))
        bob = wb.users.add_user("bob")
        token = wb.users.create_token(bob.id, "race").secret
        try:
            yield live, wb, token
        finally:
            wb.close()


def race(url: str, token: str, body: dict[str, Any]) -> list[httpx.Response]:
    """POST ``body`` to ``url`` from CLIENTS threads at once; their responses."""
    barrier = threading.Barrier(CLIENTS)
    responses: list[httpx.Response] = []

    def client() -> None:
        headers = {"Authorization": f"token {token}"}
        with httpx.Client(headers=headers, timeout=60) as http:
            http.get(url.rsplit("/", 1)[0] + "/me").raise_for_status()  # connected, authorized
            barrier.wait(30)
            responses.append(http.post(url, json=body))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(responses) == CLIENTS
    return responses


def test_concurrent_creates_of_one_name_make_one_row(server):
    live, wb, token = server
    for route, model, fields, message in KINDS:
        responses = race(f"{live.url}{API}/{route}", token, {"name": "race", **fields})
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [409] * (CLIENTS - 1), (
            f"{route}: {codes} {[r.text for r in responses]}"
        )
        winner = next(r.json() for r in responses if r.status_code == 201)
        usual = {
            "error": "conflict",
            "message": message.format(id=winner["id"]),
            "details": {"id": winner["id"]},
        }
        assert [r.json() for r in responses if r.status_code == 409] == [usual] * (CLIENTS - 1)
        with wb.registry.session() as s:
            rows = s.scalars(sa.select(model.id).where(model.name == "race")).all()
            assert rows == [winner["id"]], route
            if model is m.Algorithm:  # the losers' images were never written
                images = s.scalars(sa.select(m.AlgorithmImage.algorithm_id)).all()
                assert images == [winner["id"]] * 2
    store = wb.settings.store_root
    assert [p for p in store.rglob("*") if p.is_file()] == []  # no stray folder or staging
    assert "Traceback" not in live.log.read_text()
