"""What the client's parts share: the API's path, the upload chunk and callback, the
timeout of long calls, and the turning of an answer into values or into the server's error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import TypeAdapter

from workbench.errors import InferenceError, WorkbenchError, rebuild_error

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
