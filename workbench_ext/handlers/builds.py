"""/workspaces/{id}/builds and /workspaces/{id}/images: build a project of a workspace's
``code/`` into ``docker_image/<kind>-<name>.tar`` with its log streamed, list the tars, and
check one before publishing it as an algorithm's image.

The build's reply is ``text/plain``, sent line by line as the engine writes them (each line
flushed). Its last line says how it ended: ``OK docker_image/<kind>-<name>.tar``, or
``ERROR <code>: <message>`` (the status is already 200 by then). A request refused before
the build starts (bad input, not found, the same tar being built) gets the usual JSON error.
"""

from __future__ import annotations

from collections.abc import Iterator

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from workbench import scopes
from workbench.errors import WorkbenchError
from workbench.workspaces.builds import (
    IMAGE_FOLDER,
    ImageTarInfo,
    TarReport,
    WorkspaceBuildRequest,
    WorkspaceBuilds,
)
from workbench_ext.handlers.base import API, WorkbenchHandler, operation

TEXT = "text/plain; charset=utf-8"


class BuildsHandlerBase(WorkbenchHandler):
    auth_resource = "workbench:workspaces"

    @property
    def builds(self) -> WorkspaceBuilds:
        return self.workbench.builds


class WorkspaceBuildHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(POST=scopes.BUILD_WORKSPACE)

    @operation(
        "Build code/<project> into docker_image/<kind>-<name>.tar (owner, members); the log "
        "streams as text/plain, its last line `OK <path>` or `ERROR <code>: <message>`",
        WorkspaceBuildRequest,
    )
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        spec = self.parse(WorkspaceBuildRequest)
        lines: Iterator[str] = await self.run(
            self.builds.build, self.actor, int(workspace_id), spec.project, spec.kind, spec.name
        )
        try:  # a refusal at the start (the same tar being built) is still a JSON error
            line = await self.run(next, lines, None)
        except BaseException:
            await self.run(_close, lines)
            raise
        self.set_header("Content-Type", TEXT)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")  # no buffering in a proxy in front
        try:
            while line is not None:
                self.write(line + "\n")
                await self.flush()
                line = await self.run(next, lines, None)
        except StreamClosedError:  # the client went away: the build stops with the stream
            return
        except WorkbenchError as exc:
            self.log_exception(type(exc), exc, exc.__traceback__)
            self.write(f"ERROR {exc.code}: {exc.message.splitlines()[0]}\n")
        except Exception as exc:
            self.log.error("workspace %s: build crashed", workspace_id, exc_info=exc)
            self.write("ERROR internal: Internal error; the server log has the details.\n")
        else:
            self.write(f"OK {IMAGE_FOLDER}/{spec.kind}-{spec.name}.tar\n")
        finally:
            await self.run(_close, lines)
        self.finish(set_content_type=TEXT)


class WorkspaceImagesHandler(BuildsHandlerBase):
    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    @operation("The docker save tars in the workspace's docker_image/", response=list[ImageTarInfo])
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        self.reply(await self.run(self.builds.images, self.actor, int(workspace_id)))


class WorkspaceImageHandler(BuildsHandlerBase):
    """GET: what publishing ``docker_image/<filename>`` as an algorithm's image would find
    (naming, tags, config, digest, size, layers, problems), loading nothing."""

    token_scopes = scopes.needs(GET=scopes.BUILD_WORKSPACE)

    @operation(
        "Check docker_image/<path> (a file name) as publishing it would: naming, tags, "
        "config, digest, size, layers, problems; nothing is loaded (owner, members)",
        response=TarReport,
    )
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str, filename: str) -> None:
        report = await self.run(self.builds.inspect_tar, self.actor, int(workspace_id), filename)
        self.reply(report)


def _close(lines: Iterator[str]) -> None:
    """End the build's generator: its clean-up (removing the image) runs here."""
    close = getattr(lines, "close", None)
    if close is not None:
        close()


handlers = [
    (rf"{API}/workspaces/(\d+)/builds", WorkspaceBuildHandler),
    (rf"{API}/workspaces/(\d+)/images", WorkspaceImagesHandler),
    # (.+), not ([^/]+): a name with a slash gets the service's "no paths" error, not a 404
    (rf"{API}/workspaces/(\d+)/images/(.+)", WorkspaceImageHandler),
]
