"""Every error Workbench sends over the wire: one tree, in this one module.

The services, the REST layer, the CLI and the client all raise and catch these classes.
Each carries a stable machine-readable ``code``, an HTTP ``status`` and a message that says
what went wrong and what to do next. The REST layer renders one as
``{"error": code, "message": ..., "details": {...}}``; the client raises the same class
again from that body (:func:`rebuild_error`), so callers catch one tree whether they run
in-process or over HTTP, and whatever else they imported (``tests/unit/test_errors.py``
sends every code through a real server to a client that imports nothing else)::

    WorkbenchError                          500 internal
    ├── InvalidInput                        400 invalid_input
    │   ├── ArchiveError                    400 archive_invalid
    │   │   ├── UnsupportedArchive          415 archive_format
    │   │   ├── CorruptArchive              400 archive_corrupt
    │   │   ├── EmptyArchive                400 archive_empty
    │   │   ├── UnsafeArchive               400 archive_unsafe
    │   │   └── ArchiveLimitExceeded        413 archive_too_large
    │   ├── DatasetInvalid                  422 dataset_invalid
    │   ├── GitCloneFailed                  422 git_clone_failed
    │   ├── EnvDefinitionInvalid            422 env_definition_invalid
    │   └── LocalWheelMissing               422 local_wheel_missing
    ├── Unauthenticated                     401 unauthenticated
    ├── PermissionDenied                    403 forbidden
    │   └── QuotaExceeded                   403 quota_exceeded
    ├── NotFound                            404 not_found
    │   └── EnvNotFound                     404 env_not_found
    ├── Conflict                            409 conflict
    │   ├── BaseImageMissing                409 base_image_missing
    │   └── WorkbenchWheelUnavailable       409 workbench_wheel_unavailable
    ├── UploadIncomplete                    400 upload_incomplete
    ├── InferenceError                      400 inference_error
    ├── JobFailed                           422 job_failed
    │   └── UnsafeOutput                    422 unsafe_output
    ├── SchemaOutOfDate                     500 schema_out_of_date
    ├── BackendError                        502 backend_error
    │   ├── BackendUnavailable              503 backend_unavailable
    │   ├── ImageNotFound                   404 image_not_found
    │   ├── RunNotFound                     404 run_not_found
    │   ├── BuildFailed                     422 build_failed
    │   ├── Unsupported                     501 backend_unsupported
    │   └── KernelLaunchFailed              502 kernel_launch_failed
    ├── ProxyUnavailable                    503 proxy_unavailable
    ├── ServiceUnreachable                  502 service_unreachable
    ├── WorkspaceNotReady                   503 workspace_not_ready
    └── ServerUnreachable                   503 server_unreachable (the client's own)

A reply with an HTTP error none of these stand for (a 404 of Tornado's, say) arrives as
``WorkbenchError`` with the code ``http_<status>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
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


class GitCloneFailed(InvalidInput):
    status = 422
    code = "git_clone_failed"


class EnvDefinitionInvalid(InvalidInput):
    """An ``env.toml`` that does not parse or breaks the schema."""

    status = 422
    code = "env_definition_invalid"

    def __init__(self, path: Path, problems: Iterable[str]) -> None:
        problems = list(problems)
        super().__init__(
            f"{path} is not a valid environment definition: "
            + "; ".join(problems)
            + ". Fix the file (envs/README.md describes the format).",
            path=str(path),
            problems=problems,
        )


class LocalWheelMissing(InvalidInput):
    """A package the definition takes from local wheels (torch) has no wheel to take."""

    status = 422
    code = "local_wheel_missing"

    def __init__(self, env: str, requirement: str, wheels_dir: Path | None) -> None:
        where = (
            f"the wheels folder {wheels_dir} holds no wheel matching it"
            if wheels_dir
            else "no wheels folder was given"
        )
        super().__init__(
            f"environment {env!r} installs {requirement} from a local wheel, never from a "
            f"download, but {where}. Pass the folder that holds it with --wheels DIR "
            "(EnvBuilder(wheels_dir=...)); `pip config list` shows this machine's find-links.",
            env=env,
            requirement=requirement,
        )


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


class EnvNotFound(NotFound):
    code = "env_not_found"

    def __init__(self, name: str, root: Path, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f"there is no environment {name!r} in {root}; "
            f"choose one of: {', '.join(known) or '(none defined)'}.",
            kind="environment",
            id=name,
            known=known,
        )


class Conflict(WorkbenchError):
    status = 409
    code = "conflict"


class BaseImageMissing(Conflict):
    code = "base_image_missing"

    def __init__(self, image: str) -> None:
        super().__init__(
            f"the base image {image} does not exist on this engine (no registry is pulled "
            "from); make it with scripts/base-image (debootstrap + docker import, about a "
            "minute), then build again.",
            image=image,
        )


class WorkbenchWheelUnavailable(Conflict):
    code = "workbench_wheel_unavailable"


class UploadIncomplete(WorkbenchError):
    status = 400
    code = "upload_incomplete"


class InferenceError(WorkbenchError):
    """A service's answer that is not a success: its model server's (or its endpoint's)
    error body, ``{"error": "<what was wrong>"}``, with the HTTP status it came with."""

    status = 400
    code = "inference_error"


class JobFailed(WorkbenchError):
    """The job cannot succeed; the message says why and what to do."""

    status = 422
    code = "job_failed"


class UnsafeOutput(JobFailed):
    """A run left something the server does not take: a link, a device, a pipe, a hard
    link, a path out of its folder, or more than the server reads."""

    code = "unsafe_output"


class SchemaOutOfDate(WorkbenchError):
    code = "schema_out_of_date"

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"The registry schema is at revision {current or 'none'} but this Workbench "
            f"needs {head}; run `workbench db upgrade` first.",
            current=current,
            head=head,
        )


class BackendError(WorkbenchError):
    """Root of the backends' errors."""

    status = 502
    code = "backend_error"


class BackendUnavailable(BackendError):
    status = 503
    code = "backend_unavailable"


class ImageNotFound(BackendError):
    status = 404
    code = "image_not_found"


class RunNotFound(BackendError):
    status = 404
    code = "run_not_found"


class BuildFailed(BackendError):
    status = 422
    code = "build_failed"


class Unsupported(BackendError):
    """The backend cannot do this at all (e.g. load a docker tar without Docker)."""

    status = 501
    code = "backend_unsupported"


class KernelLaunchFailed(BackendError):
    """The kernel did not come up in the workspace's container."""

    status = 502
    code = "kernel_launch_failed"


class ProxyUnavailable(WorkbenchError):
    status = 503
    code = "proxy_unavailable"


class ServiceUnreachable(WorkbenchError):
    status = 502
    code = "service_unreachable"

    def __init__(self, service_id: int, why: str) -> None:
        super().__init__(
            f"Service {service_id}'s endpoint did not answer ({why}); see its state and "
            "replicas with GET /services/{id}.",
            service=service_id,
        )


class WorkspaceNotReady(WorkbenchError):
    status = 503
    code = "workspace_not_ready"
    retry_after_s: ClassVar[int] = 2

    def __init__(self, workspace_id: int) -> None:
        super().__init__(
            f"Workspace {workspace_id}'s JupyterLab is not answering yet (it may still be "
            "starting); retry in a few seconds.",
            workspace=workspace_id,
        )


class ServerUnreachable(WorkbenchError):
    status = 503
    code = "server_unreachable"


def _all_subclasses(cls: type[WorkbenchError]) -> list[type[WorkbenchError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


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
