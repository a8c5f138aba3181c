"""What the client's parts share: the API's path, the upload chunk and callback, the
timeout of long calls, the turning of an answer into values or into the server's error, and
the calls every area's API makes the same way (:class:`AreaAPI`, :class:`EditableAPI`),
a job's start among them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from workbench.errors import InferenceError, WorkbenchError, rebuild_error

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient

API = "workbench/api/v1"
CHUNK = 1024 * 1024

#: called with (bytes sent, total bytes) while an upload streams
Progress = Callable[[int, int], None]
LONG = httpx.Timeout(60.0, read=None)


def query_params(filters: dict[str, Any]) -> dict[str, str]:
    """Query parameters of a list call: None left out, booleans as true/false."""
    return {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in filters.items()
        if v is not None
    }


def parse_list(model: Any, data: Any) -> Any:
    """A list answer as a list of ``model``."""
    return TypeAdapter(list[model]).validate_python(data)


def error_from(response: httpx.Response) -> WorkbenchError:
    """The exception an error answer stands for: the class the server raised, rebuilt from
    its JSON body; a relayed service's own error as :class:`InferenceError`."""
    try:
        body = response.json()
        error: WorkbenchError
        if isinstance(body.get("error"), str) and "message" not in body:
            # a service's own error body, relayed (the model server's, its endpoint's)
            error = InferenceError(body["error"])
        else:
            message = body.get("message") or response.reason_phrase
            error = rebuild_error(body["error"], message, dict(body.get("details") or {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        error = WorkbenchError(f"HTTP {response.status_code}: {response.text[:200]}")
    error.http_status = response.status_code  # type: ignore[attr-defined]
    return error


InfoT = TypeVar("InfoT", bound=BaseModel)
#: what a call that queues a job answers (``ConversionStarted``...): its ``job_id`` and more
StartedT = TypeVar("StartedT", bound=BaseModel)


class AreaAPI(Generic[InfoT]):
    """An area's things at ``path`` (``/datasets``), each answered as ``info``: the list
    (``filters`` as the area's docstring names them; None left out), one thing, its delete
    (under ``delete_timeout``, where a delete stops containers or removes images)."""

    path: ClassVar[str]
    info: type[InfoT]
    delete_timeout: ClassVar[httpx.Timeout | float | httpx._client.UseClientDefault] = (
        httpx.USE_CLIENT_DEFAULT
    )

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def list(self, **filters: Any) -> list[InfoT]:
        return parse_list(self.info, self._c.json("GET", self.path, params=query_params(filters)))

    def get(self, item_id: int) -> InfoT:
        return self._call("GET", item_id)

    def delete(self, item_id: int) -> None:
        self._c.request("DELETE", f"{self.path}/{item_id}", timeout=self.delete_timeout)

    def _call(self, method: str, item_id: int, action: str = "", **kwargs: Any) -> InfoT:
        """``method`` on one thing, or on its ``action`` (``publish``), answered as ``info``."""
        path = f"{self.path}/{item_id}/{action}" if action else f"{self.path}/{item_id}"
        return self.info.model_validate(self._c.json(method, path, **kwargs))

    def _start(self, started: type[StartedT], path: str, wait: bool, **kwargs: Any) -> StartedT:
        """POST to ``path``, which queues a job, and answer what it says as ``started``;
        ``wait``: until the job is over, a failed job raising its error."""
        answer = started.model_validate(self._c.json("POST", path, **kwargs))
        if wait:
            self._c.jobs.wait(answer.job_id)  # type: ignore[attr-defined]
        return answer


class EditableAPI(AreaAPI[InfoT]):
    """An area whose things are made from fields and changed by a PATCH of some of them."""

    def create(self, **fields: Any) -> InfoT:
        return self.info.model_validate(self._c.json("POST", self.path, json=fields))

    def update(self, item_id: int, **changes: Any) -> InfoT:
        """The fields to change; those left out stay as they are."""
        return self._call("PATCH", item_id, json=changes)
