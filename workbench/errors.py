"""Workbench's exceptions: one tree, shared by the services, the REST layer and the client.

Every error a user can cause carries a stable machine-readable ``code``, an HTTP
``status`` and a message that says what went wrong and what to do next. The REST
layer renders them as ``{"error": code, "message": ..., "details": {...}}`` and the
client raises the same class again from that body, so callers catch one tree
whether they run in-process or over HTTP::

    WorkbenchError                      500 internal
    ├── InvalidInput                    400 invalid_input
    │   ├── ArchiveError                400 archive_invalid
    │   │   ├── UnsupportedArchive      415 archive_format
    │   │   ├── CorruptArchive          400 archive_corrupt
    │   │   ├── EmptyArchive            400 archive_empty
    │   │   ├── UnsafeArchive           400 archive_unsafe
    │   │   └── ArchiveLimitExceeded    413 archive_too_large
    │   └── DatasetInvalid              422 dataset_invalid
    ├── Unauthenticated                 401 unauthenticated
    ├── PermissionDenied                403 forbidden
    │   └── QuotaExceeded               403 quota_exceeded
    ├── NotFound                        404 not_found
    ├── Conflict                        409 conflict
    └── UploadIncomplete                400 upload_incomplete
"""

from __future__ import annotations

from typing import Any, ClassVar


class WorkbenchError(Exception):
    """Root of every error Workbench raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class InvalidInput(WorkbenchError):
    status = 400
    code = "invalid_input"


class ArchiveError(InvalidInput):
    code = "archive_invalid"


class UnsupportedArchive(ArchiveError):
    status = 415
    code = "archive_format"


class CorruptArchive(ArchiveError):
    code = "archive_corrupt"


class EmptyArchive(ArchiveError):
    code = "archive_empty"


class UnsafeArchive(ArchiveError):
    code = "archive_unsafe"


class ArchiveLimitExceeded(ArchiveError):
    status = 413
    code = "archive_too_large"


class DatasetInvalid(InvalidInput):
    """The archive unpacked fine but its content breaks the format's standard."""

    status = 422
    code = "dataset_invalid"


class Unauthenticated(WorkbenchError):
    status = 401
    code = "unauthenticated"


class PermissionDenied(WorkbenchError):
    status = 403
    code = "forbidden"


class QuotaExceeded(PermissionDenied):
    """More than a user's quota would be in use: its details say which quota, its limit,
    what is in use and what was asked (stop something, or ask an admin for more)."""

    code = "quota_exceeded"


class NotFound(WorkbenchError):
    status = 404
    code = "not_found"

    @classmethod
    def entity(cls, kind: str, ident: object) -> NotFound:
        return cls(
            f"{kind} {ident!r} does not exist or is not visible to you; "
            f"list the {kind}s you can see to find its id.",
            kind=kind,
            id=str(ident),
        )


class Conflict(WorkbenchError):
    status = 409
    code = "conflict"


class UploadIncomplete(WorkbenchError):
    status = 400
    code = "upload_incomplete"


def _all_subclasses(cls: type[WorkbenchError]) -> list[type[WorkbenchError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


class InferenceError(WorkbenchError):
    """A service's answer that is not a success: its model server's (or its endpoint's)
    error body, ``{"error": "<what was wrong>"}``, with the HTTP status it came with."""

    status = 400
    code = "inference_error"


def rebuild_error(code: str, message: str, details: dict[str, Any]) -> WorkbenchError:
    """The error a code, message and details describe (a reply's body, a job's failure),
    as the most specific class, whatever that class's own constructor takes."""
    cls = error_class_for(code)
    error = cls.__new__(cls)
    WorkbenchError.__init__(error, message, **details)
    return error


def error_class_for(code: str) -> type[WorkbenchError]:
    """The most specific class for an error code, as sent over the wire."""
    for cls in _all_subclasses(WorkbenchError):
        if cls.code == code:
            return cls
    return WorkbenchError
