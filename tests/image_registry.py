"""A read-only image registry for tests: serves the images of a ``docker save`` tar over the
registry HTTP API v2, so ``docker pull 127.0.0.1:PORT/NAME:TAG`` really pulls (the engine
trusts plain HTTP on loopback addresses). No registry is reachable from these machines,
and none is installed: this one speaks just enough of the protocol for a pull (the version
check, manifests by tag or digest, blobs), with gzipped layers as a registry stores them.

    with serve_images(tar, {"team/tiny:1.0": 0}) as host:     # image 0 of the tar
        backend pulls f"{host}/team/tiny:1.0"
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tarfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<what>manifests|blobs)/(?P<ref>[^/]+)$")


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _content(tar: Path, tags: Mapping[str, int]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(repository:tag or repository@digest -> manifest, digest -> blob)."""
    manifests: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}
    with tarfile.open(tar) as archive:

        def read(name: str) -> bytes:
            member = archive.extractfile(name)
            assert member is not None, name
            return member.read()

        entries = json.loads(read("manifest.json"))
        for reference, index in tags.items():
            entry = entries[index]
            config = read(entry["Config"])
            blobs[_digest(config)] = config
            layers = []
            for layer in entry["Layers"]:
                packed = gzip.compress(read(layer), compresslevel=1, mtime=0)
                blobs[_digest(packed)] = packed
                layers.append(
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(packed),
                        "digest": _digest(packed),
                    }
                )
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST_TYPE,
                    "config": {
                        "mediaType": "application/vnd.docker.container.image.v1+json",
                        "size": len(config),
                        "digest": _digest(config),
                    },
                    "layers": layers,
                }
            ).encode()
            repository, tag = reference.rsplit(":", 1)
            manifests[f"{repository}:{tag}"] = manifest
            manifests[f"{repository}@{_digest(manifest)}"] = manifest
    return manifests, blobs


@contextmanager
def serve_images(tar: Path, tags: Mapping[str, int]) -> Iterator[str]:
    """Serve image ``index`` of ``tar`` as each ``repository:tag``; yields ``host:port``."""
    manifests, blobs = _content(tar, tags)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str, digest: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v2/":
                self._send(200, b"{}", "application/json")
                return
            match = _ROUTE.match(self.path)
            if match and match["what"] == "manifests":
                sep = "@" if match["ref"].startswith("sha256:") else ":"
                manifest = manifests.get(f"{match['name']}{sep}{match['ref']}")
                if manifest is not None:
                    self._send(200, manifest, MANIFEST_TYPE, _digest(manifest))
                    return
            elif match and match["ref"] in blobs:
                blob = blobs[match["ref"]]
                self._send(200, blob, "application/octet-stream", match["ref"])
                return
            error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}
            self._send(404, json.dumps(error).encode(), "application/json")

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
