"""An id is never given twice. SQLite gives a new row the highest id plus one, so a table
without AUTOINCREMENT hands a deleted row's id to the next one; whatever still names that id
(the deleted thing's jobs and their logs, containers labelled with it, store folders) then
belongs to the new row's owner. Attacked through REST: bob takes the id of alice's deleted
environment and asks for its build's log."""

from __future__ import annotations

from tests.rest.conftest import finished
from tests.rest.test_environments import API, backend, settled  # noqa: F401 (a fixture)


async def test_a_deleted_environments_id_is_not_given_to_the_next_one(users, backend):  # noqa: F811
    _, env = await users.alice(
        "POST", f"{API}/environments", {"name": "private", "definition": "python"}
    )
    code, _ = await users.alice("POST", f"{API}/environments/{env['id']}/build")
    assert code == 202
    built = await settled(users.alice, env["id"])
    assert (await finished(users.alice, built["job_id"]))["state"] == "succeeded"
    assert (await users.alice("DELETE", f"{API}/environments/{env['id']}"))[0] == 204

    _, taken = await users.bob(
        "POST", f"{API}/environments", {"name": "mine", "framework": "python"}
    )
    assert taken["id"] > env["id"]
    code, err = await users.bob("GET", f"{API}/jobs/{built['job_id']}/log")
    assert (code, err["error"]) == (404, "not_found")
