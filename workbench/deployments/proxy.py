"""The services' endpoints: one HAProxy (Debian's package) in master-worker mode, that the
Workbench configures, in front of every service's replicas. Each service has a stable
port (kept while it is stopped); its backend balances over the replicas that answer
``/v2/health/ready`` (checked every second, out after 2 failures, back after 1 success),
sends a request that met a dead connection or an empty response again to another replica
(up to 3 times: a replica killed an instant ago is not yet known to be down and may be
chosen again), and answers a stopped service's requests with a JSON 503. A change (a replica
more or less, a service added) rewrites the configuration, checks it (``haproxy -c``) and
reloads it (SIGUSR2 to the master): the listening sockets stay open (the master hands them
to the new worker), and the old workers finish the requests they hold, so no request is
dropped. A change is done when every endpoint answers with the new configuration (each
tells its generation on a path of its own), not before. A port is bound without
``SO_REUSEPORT``: a port another process listens on (say, another home's proxy) fails the
proxy's start loudly instead of sharing the port's connections with it, and
:meth:`Proxy.held_elsewhere` finds such a port beforehand.

Each endpoint asks for its service's key (``Authorization: Bearer <key>``, or ``X-Api-Key:
<key>``) unless the service is public on purpose: the proxy hashes what it was sent
(SHA-256) and looks the hash up in a map of the services' key hashes (``keys.map``: it never
holds a key in clear); a request without the key, or with another service's, gets a JSON
401 that says what to send, and reaches no replica. The key's headers are not passed on to
the replicas. The Workbench server's relay (``/services/{id}/endpoint/``) sends a key of its
own (``relay.key``, mode 0600, kept across servers) that every endpoint takes.

The proxy is the data plane: it outlives the server that started it. HAProxy's daemon mode
puts it in a session of its own (not the server's process group: a process manager's
SIGTERM or SIGKILL to the server's group leaves it), with none of the server's environment
or file descriptors; nothing but :meth:`Proxy.apply` with no endpoint left, or an explicit
:meth:`Proxy.stop`, ends it. A server started later adopts it through its pidfile, once the
process with that pid is checked to be HAProxy run on this folder's configuration (a pid
reused by another process after a reboot is neither signalled nor adopted). Servers and
administration commands of one home change the proxy one at a time (a lock file)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from pathlib import Path

from workbench.errors import ProxyUnavailable
from workbench.users import hash_token


@dataclass(frozen=True)
class Endpoint:
    """One service's endpoint: its port, its ready replicas (``host:port`` each), and the
    route that says a replica is ready (200)."""

    service_id: int
    name: str
    port: int
    replicas: tuple[str, ...]
    health: str
    #: the SHA-256 (hex) of the key it asks for ("": none, every caller refused but the
    #: relay); ``public``: it asks for none, on purpose
    key_hash: str = ""
    public: bool = False
    #: ``name:port`` whose DNS addresses are the replicas (``tasks.<service>:8080`` on a
    #: swarm, through Docker's resolver), followed as they change without a reload;
    #: ``replicas`` is then unused
    dns: str = ""


class Proxy:
    def __init__(self, folder: Path, *, bind: str = "127.0.0.1", binary: str = "haproxy") -> None:
        self.folder = folder
        self.bind = bind
        self.binary = binary
        self.config = folder / "haproxy.cfg"
        self.pidfile = folder / "haproxy.pid"
        self.keys = folder / "keys.map"
        self.relay_file = folder / "relay.key"
        #: the ports of the last configuration the proxy was seen serving
        self.served = folder / "served.ports"

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def apply(self, endpoints: list[Endpoint]) -> None:
        """Serve exactly these endpoints (start the proxy, or reload it; stop it when there
        are none)."""
        if not endpoints:
            self.stop()
            return
        if not self.available():
            raise ProxyUnavailable(
                f"{self.binary} is not installed: run scripts/system-deps (Debian's haproxy)."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        generation = str(time.time_ns())
        with self._locked():
            _write_private(self.keys, key_map(endpoints, hash_token(self.relay_key)))
            text = render(endpoints, self.bind, self.pidfile, generation, self.keys)
            candidate = self.folder / "haproxy.cfg.new"
            candidate.write_text(text, encoding="utf-8")
            check = subprocess.run(
                [self.binary, "-c", "-q", "-f", str(candidate)], capture_output=True, text=True
            )
            if check.returncode != 0:
                raise ProxyUnavailable(
                    f"the proxy's configuration is refused: {check.stderr[-1500:]}"
                )
            master = self.master()
            if master is not None and not _binds_alone(self.config):
                # started before ports were bound alone: a reload would hand its shared
                # listeners on, so it starts again (once; its endpoints pause meanwhile)
                self._end(master)
                master = None
            os.replace(candidate, self.config)
            if master is None:
                self._start()
            else:
                os.kill(master, signal.SIGUSR2)
            try:
                self._wait_serving(endpoints, generation)
            except ProxyUnavailable as exc:
                taken = sorted(self.held_elsewhere(e.port for e in endpoints))
                if not taken:
                    raise
                raise ProxyUnavailable(
                    f"{exc.message}: another process on this machine listens on port(s) "
                    f"{', '.join(map(str, taken))}, which the proxy cannot share; the next "
                    "publish moves those endpoints to free ports.",
                    ports=taken,
                ) from exc
            self.served.write_text("".join(f"{e.port}\n" for e in endpoints))

    def stop(self) -> None:
        """End the proxy (every endpoint refuses connections until the next :meth:`apply`):
        only when no endpoint is left, or asked explicitly; a server's close does not."""
        if not self.folder.is_dir():
            return
        with self._locked():
            master = self.master()
            if master is not None:
                self._end(master)
            self.pidfile.unlink(missing_ok=True)
            self.served.unlink(missing_ok=True)

    def _end(self, master: int) -> None:
        """SIGTERM to the master, and a few seconds for it to end."""
        os.kill(master, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(master) and time.monotonic() < deadline:
            time.sleep(0.05)

    def serving(self) -> set[int]:
        """The ports this folder's running proxy listens on: those of the last
        configuration it was seen serving (not of one whose reload failed); for a proxy
        started before that was written down, those of its configuration."""
        if self.master() is None:
            return set()
        try:
            return {int(port) for port in self.served.read_text().split()}
        except FileNotFoundError:
            pass
        try:
            text = self.config.read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        bind = re.escape(self.bind)
        return {int(port) for port in re.findall(rf"^\s+bind {bind}:(\d+)$", text, re.MULTILINE)}

    def held_elsewhere(self, ports: Iterable[int]) -> set[int]:
        """Of ``ports``, those another process listens on now (not this proxy): an endpoint
        there would fail the proxy's start or reload (see the module doc)."""
        mine = self.serving()
        return {port for port in ports if port not in mine and not _bindable(self.bind, port)}

    @cached_property
    def relay_key(self) -> str:
        """The key the Workbench server's relay sends to every endpoint (made once)."""
        try:
            return self.relay_file.read_text().strip()
        except FileNotFoundError:
            self.folder.mkdir(parents=True, exist_ok=True)
            key = "wbrelay_" + secrets.token_urlsafe(32)
            try:
                fd = os.open(self.relay_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                return self.relay_file.read_text().strip()
            with os.fdopen(fd, "w") as f:
                f.write(key)
            return key

    def master(self) -> int | None:
        """The pid of this folder's running HAProxy master (see the module doc), or None."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if self._runs_our_config(pid) else None

    def _runs_our_config(self, pid: int) -> bool:
        """Whether ``pid`` is HAProxy started on this folder's configuration: its command
        line (kept by a reload, which execs the master again with the same arguments)."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            return False
        named = bool(argv) and Path(argv[0]).name == Path(self.binary).name
        return named and ("-f", str(self.config)) in pairwise(argv)

    def _start(self) -> None:
        """Start the master in daemon mode: it forks, leaves this process's session and
        group (``setsid``), and the command returns once its workers are up. Started in a
        session of its own from the first instant, from the proxy's folder, with stdin
        closed and only ``PATH`` of the server's environment (which may hold secrets)."""
        started = subprocess.run(
            [self.binary, "-W", "-D", "-f", str(self.config), "-p", str(self.pidfile)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            env={"PATH": os.environ.get("PATH", os.defpath)},
            start_new_session=True,
        )
        if started.returncode != 0:
            raise ProxyUnavailable(f"the proxy did not start: {started.stderr[-1500:]}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This home's proxy changed by one process at a time (released if it dies)."""
        with (self.folder / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _wait_serving(self, endpoints: list[Endpoint], generation: str) -> None:
        """Until every endpoint answers with this configuration (a reload is asynchronous:
        the old workers answer until the new ones take over)."""
        deadline = time.monotonic() + 10
        for endpoint in endpoints:
            url = f"http://{self.bind}:{endpoint.port}{GENERATION_PATH}"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as answer:
                        if answer.read().decode() == generation:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ProxyUnavailable(
                        f"the proxy does not serve service {endpoint.name} on "
                        f"{self.bind}:{endpoint.port} with its new configuration"
                    )
                time.sleep(0.02)


def key_map(endpoints: list[Endpoint], relay_hash: str) -> str:
    """The proxy's map: a key's SHA-256 (upper-case hex, as HAProxy's ``hex`` writes it) ->
    the service it opens (``*``: the relay's, every one)."""
    lines = [f"{relay_hash.upper()} *"]
    lines += [f"{e.key_hash.upper()} {e.service_id}" for e in endpoints if e.key_hash]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads, whole or not at all."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _binds_alone(config: Path) -> bool:
    """Whether the running configuration binds its ports without ``SO_REUSEPORT``."""
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return re.search(r"^\s+noreuseport$", text, re.MULTILINE) is not None


def _bindable(host: str, port: int) -> bool:
    """Whether a listening socket could be bound on ``host:port`` now (as HAProxy binds:
    ``SO_REUSEADDR``, so a closed connection's TIME_WAIT is no obstacle)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: the path each endpoint answers with its configuration's generation (the proxy's own)
GENERATION_PATH = "/.workbench/proxy-generation"
#: Docker's resolver inside a container on a user network (a swarm's overlay)
DOCKER_DNS = "127.0.0.11:53"
#: the most replicas an endpoint found by DNS balances over (a service has 32 at most)
DNS_SERVERS = 32


def proxy_threads() -> int:
    """HAProxy's threads: a quarter of this machine's cores, at least one (one thread relays
    tens of thousands of requests a second; measured with ``benchmarks/serving.py`` on 2
    cores, a second thread, competing with the replicas for them, costs the endpoint 10%)."""
    return max(1, len(os.sched_getaffinity(0)) // 4)


def render(endpoints: list[Endpoint], bind: str, pidfile: Path, generation: str, keys: Path) -> str:
    """HAProxy's configuration for these endpoints (see the module doc; ``keys``: the map
    of key hashes)."""
    lines = [
        "global",
        "    master-worker",
        # a port is this proxy's alone (see the module doc)
        "    noreuseport",
        f"    nbthread {proxy_threads()}",
        f"    pidfile {pidfile}",
        # a worker replaced by a reload ends once its requests are answered, 30 s at most
        "    hard-stop-after 30s",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 120s",
        "    timeout server 120s",
        "    timeout http-request 30s",
        # the body is kept, so that a request can be sent again to another replica
        "    option http-buffer-request",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    option redispatch 1",
        "    default-server inter 1s fall 2 rise 1",
        "    http-reuse safe",
        # a worker replaced by a reload answers the next request on a kept-alive
        # connection (with Connection: close) rather than closing it under the client
        "    option idle-close-on-response",
        "",
    ]
    if any(e.dns for e in endpoints):  # Docker's resolver, asked again every second
        lines += [
            "resolvers docker",
            f"    nameserver dns {DOCKER_DNS}",
            "    hold valid 1s",
            "    hold obsolete 1s",
            "",
        ]
    for e in sorted(endpoints, key=lambda e: e.service_id):
        stopped = json.dumps(
            {"error": f"service {e.name} has no replica ready (stopped, or starting); start it"}
        )
        lines += [
            f"frontend service_{e.service_id}",
            f"    bind {bind}:{e.port}",
            f"    http-request return status 200 content-type text/plain string {generation} "
            f"if {{ path {GENERATION_PATH} }}",
            *([] if e.public else _key_check(e, keys)),
            f"    default_backend replicas_{e.service_id}",
            "",
            f"backend replicas_{e.service_id}",
            "    balance leastconn",
            f"    option httpchk GET {e.health}",
            "    http-check expect status 200",
        ]
        if e.dns:  # as many servers as the name has addresses, none answering: say so
            lines += [
                f"    http-request return status 503 content-type application/json "
                f"string '{stopped}' if {{ nbsrv(replicas_{e.service_id}) lt 1 }}",
                f"    server-template r {DNS_SERVERS} {e.dns} check resolvers docker "
                "init-addr none",
            ]
        elif not e.replicas:  # stopped: say so (replicas just reloaded may not be checked)
            lines.append(
                f"    http-request return status 503 content-type application/json "
                f"string '{stopped}'"
            )
        lines += [f"    server r{i} {target} check" for i, target in enumerate(e.replicas)]
        lines.append("")
    return "\n".join(lines)


def _key_check(e: Endpoint, keys: Path) -> list[str]:
    """The frontend's rules that refuse a request without this service's key (or the
    relay's): the key from ``X-Api-Key``, or from ``Authorization: Bearer``; its SHA-256
    looked up in ``keys``; the key's headers removed before a replica sees the request."""
    refused = json.dumps(
        {
            "error": f"the endpoint of service {e.name} needs its key: send the header "
            "Authorization: Bearer <key> (or X-Api-Key: <key>). The key was shown once, when "
            f"the service was created; its owner gets a new one with POST /services/"
            f"{e.service_id}/key (workbench service key rotate {e.service_id})."
        }
    )
    return [
        "    http-request set-var(txn.wb_key) req.hdr(x-api-key)",
        "    http-request set-var(txn.wb_key) req.hdr(authorization),word(2,' ') "
        "if { req.hdr(authorization),word(1,' ') -m str -i bearer }",
        f"    http-request set-var(txn.wb_opens) var(txn.wb_key),sha2(256),hex,map({keys})",
        "    http-request return status 401 content-type application/json "
        f"string '{refused}' hdr WWW-Authenticate Bearer "
        f"unless {{ var(txn.wb_opens) -m str {e.service_id} * }}",
        "    http-request del-header authorization",
        "    http-request del-header x-api-key",
    ]
