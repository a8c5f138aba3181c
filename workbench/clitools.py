"""What every ``workbench`` command shares: Workbench errors shown as one line."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from workbench.errors import WorkbenchError


class CLIError(click.ClickException):
    """A Workbench error shown as a one-line message, without a traceback."""

    def __init__(self, error: WorkbenchError) -> None:
        super().__init__(f"{error.message} [{error.code}]")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the Workbench errors a command raises into :class:`CLIError`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            raise CLIError(exc) from exc

    return wrapper
