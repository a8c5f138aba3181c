"""One error module, and every code round-trips server -> client as its own class (issue
17, point 2).

The server renders each error of ``workbench.errors`` through the real handler base
(``WorkbenchHandler.write_error``); a client in a fresh process that imports nothing but
``workbench.client`` must raise the same class, with the same message and status. Before
the one module, codes defined beside the code that raised them (the proxy's, the
services' handler's, the kernels') reached such a client as a bare ``WorkbenchError``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path

from tornado import web

import workbench
import workbench_ext
from tests.rest.conftest import Users
from workbench import errors
from workbench.errors import WorkbenchError, rebuild_error
from workbench_ext.handlers.base import WorkbenchHandler

ROOT = Path(__file__).resolve().parents[2]
ALL = errors._all_subclasses(WorkbenchError)


class RaiseHandler(WorkbenchHandler):
    """Raises the error a code names, as a service would."""

    @web.authenticated
    async def get(self, code: str) -> None:
        raise rebuild_error(code, f"raised as {code}", {"sent": code})


CLIENT = """
import json, sys
from workbench.client import WorkbenchClient
from workbench.errors import WorkbenchError

url, token, codes = sys.argv[1], sys.argv[2], sys.argv[3:]
got = {}
with WorkbenchClient(url, token) as client:
    for code in codes:
        try:
            client.request("GET", f"{url}workbench-test/raise/{code}")
        except WorkbenchError as exc:
            kind = type(exc)
            got[code] = [kind.__module__, kind.__name__, exc.code, exc.message,
                         exc.details, exc.http_status]
print(json.dumps(got))
"""


async def test_every_code_reaches_a_bare_client_as_its_own_class(users: Users, jp_serverapp):
    jp_serverapp.web_app.add_handlers(
        ".*$", [(f"{users.base_url}workbench-test/raise/([a-z_]+)", RaiseHandler)]
    )
    url = f"http://127.0.0.1:{users.port}{users.base_url}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        url,
        users.alice.token,
        *[cls.code for cls in ALL],
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    got = json.loads(out)
    for cls in ALL:
        module, name, code, message, details, status = got[cls.code]
        assert (module, name) == ("workbench.errors", cls.__name__), cls.code
        assert (code, message, details) == (cls.code, f"raised as {cls.code}", {"sent": code})
        assert status == cls.status


def _all_modules() -> list[str]:
    names = []
    for package in (workbench, workbench_ext):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if (
                not info.name.endswith(("__main__", ".migrations"))
                and ".migrations." not in info.name
            ):
                names.append(info.name)
    return names


def test_every_wire_error_is_defined_in_the_one_module():
    for name in _all_modules():
        importlib.import_module(name)
    stray = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in errors._all_subclasses(WorkbenchError)
        if cls.__module__ != "workbench.errors"
    ]
    assert not stray, f"define these in workbench/errors.py: {stray}"
    codes = [cls.code for cls in errors._all_subclasses(WorkbenchError)]
    assert len(codes) == len(set(codes)), "each code names one class"


def test_the_module_docstring_draws_the_whole_tree():
    rows = [
        (match.start(1), match[1], int(match[2]), match[3])
        for line in (errors.__doc__ or "").splitlines()
        if (match := re.match(r"^\s+(?:[│ ]*[├└]── )?(\w+)\s+(\d{3}) (\w+)", line))
    ]
    assert {name: (status, code) for _, name, status, code in rows} == {
        cls.__name__: (cls.status, cls.code) for cls in ALL
    }
    for i, (depth, name, _, _) in enumerate(rows[1:], start=1):
        parent = next(n for d, n, _, _ in reversed(rows[:i]) if d < depth)
        assert getattr(errors, name).__mro__[1].__name__ == parent, f"{name} drawn under {parent}"


def test_the_rest_docs_list_every_code():
    text = (ROOT / "docs" / "rest-api.md").read_text()
    missing = [cls.code for cls in ALL if f"| `{cls.code}` | `{cls.__name__}` |" not in text]
    assert not missing, f"docs/rest-api.md#errors lacks {missing}"
