"""Serving throughput and latency of one ONNX CNN (about 12 M multiply-adds per sample, made
here), in one run on this machine, with the server and the load generator pinned to
different cores (``taskset``; on 2 cores: the server on core 0, wrk on core 1):

- the floor: ONNX Runtime called in-process in a bare loop, same threads (1), at batch 1
  and at its best batch size;
- our model server process (``python -m workbench.serving``), batching on (up to 32) and
  off, with JSON and with binary tensors (the V2 binary extension), at concurrency 1, 8
  and 32, driven by Debian's ``wrk`` with a Lua body (``scripts/system-deps`` installs it);
- our service through its endpoint, as users reach it: a Workbench service of the same
  model (one replica, a container of envs/python with 1 CPU) behind its HAProxy endpoint
  (neither pinned to a core: the container's CPU quota is what it gets);
- the peers on the same ONNX file, same pinning, same wrk: BentoML with adaptive batching
  (``@bentoml.api(batchable=True, max_batch_size=32)``) and MLflow's ``models serve`` (one
  worker), installed by this script in a virtual environment of their own
  (``~/.cache/workbench-benchmarks/peers``), never as Workbench's dependencies.

For each: throughput (requests/s = samples/s: one sample a request), p50 and p99 latency,
the non-2xx count, and the throughput over the floor at batch 1 and at its best batch.

    .venv/bin/python benchmarks/serving.py [--seconds 10] [--server-core 0] [--load-core 1]
        [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
#: the peers' virtual environment and what goes in it
PEERS_VENV = Path.home() / ".cache" / "workbench-benchmarks" / "peers"
PEERS = ("bentoml>=1.4,<1.5", "mlflow>=3.17,<4", "onnx==1.23.2", "onnxruntime==1.32.0")
BENTO_SERVICE = """
import bentoml
import numpy as np
import onnxruntime as ort


@bentoml.service(workers=1)
class CNN:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            {model!r}, options, providers=["CPUExecutionProvider"]
        )

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=10000)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.session.run(None, {{"input": input.astype(np.float32)}})[0]
"""
#: channels of the three 3x3 convolutions (32x32 -> 16x16 -> 8x8 after each 2x2 pool)
CHANNELS = (3, 32, 64, 144)


def make_cnn(path: Path) -> int:
    """A CNN on 3x32x32 images, 10 classes; its multiply-adds per sample."""
    rng = np.random.default_rng(0)
    inits, nodes, x, side, macs = [], [], "input", 32, 0
    for i in range(3):
        cin, cout = CHANNELS[i], CHANNELS[i + 1]
        weights = rng.standard_normal((cout, cin, 3, 3)) * (2 / (cin * 9)) ** 0.5
        inits += [
            numpy_helper.from_array(weights.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
            helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        macs += side * side * cout * cin * 9
        x, side = f"p{i}", side // 2
    flat = CHANNELS[-1] * side * side
    fc = rng.standard_normal((flat, 10)) * (1 / flat) ** 0.5
    inits += [
        numpy_helper.from_array(fc.astype(np.float32), "fw"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fb"),
    ]
    nodes += [
        helper.make_node("Flatten", [x], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"]),
    ]
    macs += flat * 10
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return macs


def floor(model: Path, core: int, seconds: float) -> dict[int, float]:
    """In-process samples/s per batch size (a child process pinned to ``core``)."""
    code = f"""
import json, time, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
s = ort.InferenceSession({str(model)!r}, o, providers=["CPUExecutionProvider"])
rates = {{}}
for b in (1, 2, 4, 8, 16, 32):
    x = np.random.default_rng(0).standard_normal((b, 3, 32, 32)).astype(np.float32)
    for _ in range(20):
        s.run(None, {{"input": x}})
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < {seconds}:
        s.run(None, {{"input": x}}); n += 1
    rates[b] = n * b / (time.perf_counter() - t)
print(json.dumps(rates))
"""
    out = subprocess.run(
        ["taskset", "-c", str(core), sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stdout
    return {int(k): v for k, v in json.loads(out).items()}


#: the Authorization header wrk's scripts send, when set (the endpoint's key)
AUTH_VARIABLE = "WORKBENCH_BENCH_AUTHORIZATION"
#: url -> the Authorization header its calls send (an endpoint's key)
AUTHORIZATION: dict[str, str] = {}


def bodies(folder: Path) -> dict[str, Path]:
    """wrk's Lua scripts: one request of one sample, in JSON and in binary (with
    ``$WORKBENCH_BENCH_AUTHORIZATION`` as the Authorization header, when set)."""
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    tensor = {"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32"}
    (folder / "json.body").write_text(
        json.dumps({"inputs": [{**tensor, "data": x.ravel().tolist()}]})
    )
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": x.nbytes}}],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    (folder / "binary.body").write_bytes(header + x.tobytes())
    nested = x.tolist()  # [1, 3, 32, 32]
    (folder / "bentoml.body").write_text(json.dumps({"input": nested}))
    (folder / "mlflow.body").write_text(json.dumps({"inputs": {"input": nested}}))
    scripts = {}
    json_type = 'wrk.headers["Content-Type"] = "application/json"'
    for kind, extra in (
        ("json", json_type),
        ("binary", f'wrk.headers["Inference-Header-Content-Length"] = "{len(header)}"'),
        ("bentoml", json_type),
        ("mlflow", json_type),
    ):
        lua = folder / f"{kind}.lua"
        lua.write_text(
            f'wrk.method = "POST"\n{extra}\n'
            f'local auth = os.getenv("{AUTH_VARIABLE}")\n'
            'if auth then wrk.headers["Authorization"] = auth end\n'
            f'local f = io.open("{folder / (kind + ".body")}", "rb")\n'
            'wrk.body = f:read("*a")\nf:close()\n'
        )
        scripts[kind] = lua
    return scripts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Started = tuple[str, Callable[[], None]]


def stopper(process: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()

    return stop


def serve(model: Path, core: int, max_batch: int) -> Started:
    """Our model server on ``core``: its infer URL, and how to stop it."""
    port = free_port()
    pinned = ["taskset", "-c", str(core), sys.executable, "-m", "workbench.serving"]
    options = f"--runtime onnx --name cnn --host 127.0.0.1 --port {port} --threads 1"
    options += f" --max-batch {max_batch} --max-queue 1024"
    process = subprocess.Popen([*pinned, str(model), *options.split()], **QUIET)
    ready(process, f"http://127.0.0.1:{port}/v2/health/ready", "the model server")
    return f"http://127.0.0.1:{port}/v2/models/cnn/infer", stopper(process)


#: a server's output is not the benchmark's
QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def ready(process: subprocess.Popen[bytes], url: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{what} did not get ready in {timeout:.0f} s")


def peers_python() -> Path:
    """The peers' venv's Python, made (once) with BentoML, MLflow and ONNX Runtime."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing the peers into {PEERS_VENV} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], check=True, **QUIET)
    return python


def serve_bentoml(model: Path, core: int, folder: Path) -> Started:
    python = peers_python()
    (folder / "svc.py").write_text(BENTO_SERVICE.format(model=str(model)))
    port = free_port()
    command = ["taskset", "-c", str(core), str(python), "-m", "bentoml", "serve", "svc:CNN"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--host", "127.0.0.1"],
        cwd=folder,
        env={**os.environ, "OMP_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "True"},
        **QUIET,
    )
    ready(process, f"http://127.0.0.1:{port}/readyz", "BentoML")
    return f"http://127.0.0.1:{port}/predict", stopper(process)


def serve_mlflow(model: Path, core: int, folder: Path) -> Started:
    python = peers_python()
    saved = folder / "mlflow-model"
    if not saved.exists():
        code = "import mlflow.onnx, onnx; "
        code += f"mlflow.onnx.save_model(onnx.load({str(model)!r}), {str(saved)!r})"
        subprocess.run([str(python), "-c", code], check=True, **QUIET)
    port = free_port()
    bin_dir = str(python.parent)
    command = ["taskset", "-c", str(core), str(python.parent / "mlflow"), "models", "serve"]
    options = f"-m {saved} --env-manager local -w 1 -p {port} -h 127.0.0.1"
    process = subprocess.Popen(
        [*command, *options.split()],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"},
        **QUIET,
    )
    ready(process, f"http://127.0.0.1:{port}/ping", "MLflow")
    return f"http://127.0.0.1:{port}/invocations", stopper(process)


def serve_endpoint(model: Path, public: bool) -> Started:
    """A Workbench service of the model (one replica: a container of envs/python with 1
    CPU, behind the HAProxy endpoint), as users reach it: with its key, which the proxy
    checks (``public``: an endpoint open on purpose, no key checked)."""
    sys.path.insert(0, str(REPO))
    from common import register_cnn

    from tests.docker_fixtures import python_env_image_for
    from workbench.backends.docker import DockerBackend
    from workbench.config import Settings
    from workbench.deployments.schemas import ServerOptions, ServiceCreate
    from workbench.services import Workbench
    from workbench.users import Actor

    backend = DockerBackend.from_env()
    python_env_image_for(backend)
    home = Path(tempfile.mkdtemp(prefix="wb-serving-home-"))
    wb = Workbench.from_settings(Settings(home=home, backend="docker"), backend_instance=backend)
    wb.registry.upgrade()
    wb.start()
    user = wb.users.add_user("bench")
    actor = Actor(user.id, user.username, user.role)
    folder = home / "cnn"
    folder.mkdir()
    shutil.copy(model, folder / "model.onnx")
    version = register_cnn(wb, user.id, folder)
    request = ServiceCreate(
        name="cnn",
        version_id=version.id,
        options=ServerOptions(max_queue=1024),
        public_endpoint=public,
    )
    started = wb.deployments.create(actor, request)
    job = wb.jobs.wait(started.job_id, timeout=300)
    if job.state != "succeeded":
        raise SystemExit(f"the service did not deploy: {job.message}")
    url = f"http://{started.service.address}/v2/models/cnn/infer"
    if not public:
        AUTHORIZATION[url] = f"Bearer {started.service.key}"

    def stop() -> None:
        AUTHORIZATION.pop(url, None)
        wb.deployments.delete(actor, started.service.id)
        wb.close()
        shutil.rmtree(home, ignore_errors=True)

    return url, stop


def load(url: str, script: Path, concurrency: int, core: int, seconds: int) -> dict[str, Any]:
    """wrk's figures for ``url`` (the full route), with its Authorization when it has one."""
    wrk = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s"]
    env = dict(os.environ)
    if url in AUTHORIZATION:
        env[AUTH_VARIABLE] = AUTHORIZATION[url]
    out = subprocess.run(
        [*wrk, "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "rate": rate,
        "p50": _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", out)),
        "p99": _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out)),
        "requests": total,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def _ms(found: re.Match[str] | None) -> float:
    if found is None:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument(
        "--no-endpoint",
        dest="endpoint",
        action="store_false",
        help="skip the Workbench service (needs the Docker Engine and HAProxy)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="turns of the key's cost measurement")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/system-deps (Debian's wrk)")
    folder = Path(tempfile.mkdtemp(prefix="wb-serving-"))
    model = folder / "cnn.onnx"
    macs = make_cnn(model)
    scripts = bodies(folder)
    print(
        f"CNN: {macs / 1e6:.1f} M multiply-adds per sample; {os.cpu_count()} cores; "
        f"server on core {args.server_core}, wrk on core {args.load_core}; "
        f"onnxruntime {ort.__version__}, {args.seconds:g} s per point\n"
    )
    rates = floor(model, args.server_core, min(args.seconds, 5))
    single, best = rates[1], max(rates.values())
    best_batch = max(rates, key=rates.get)  # type: ignore[arg-type]
    print("floor: in-process ONNX Runtime, 1 thread, samples/s by batch size:")
    print("  " + "  ".join(f"b{b} {r:,.0f}" for b, r in rates.items()))
    print(f"  batch 1: {single:,.0f}/s; best: batch {best_batch}, {best:,.0f}/s\n")
    header = (
        f"{'server':<44} {'conc':>4} {'req/s':>9} {'vs b1':>6} {'vs best':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
    )
    print(header)
    print("-" * len(header))
    runs: list[tuple[str, Any, list[str]]] = [
        (
            "model server, batching on (<=32)",
            lambda: serve(model, args.server_core, 32),
            ["binary", "json"],
        ),
        (
            "model server, batching off",
            lambda: serve(model, args.server_core, 1),
            ["binary", "json"],
        ),
    ]
    if args.peers:
        runs += [
            (
                "BentoML, adaptive batching",
                lambda: serve_bentoml(model, args.server_core, folder),
                ["bentoml"],
            ),
            (
                "MLflow models serve",
                lambda: serve_mlflow(model, args.server_core, folder),
                ["mlflow"],
            ),
        ]
    if args.endpoint:
        runs.append(
            (
                "service endpoint, key checked",
                partial(serve_endpoint, model, False),
                ["binary", "json"],
            )
        )
    for label, start, kinds in runs:
        url, stop = start()
        try:
            for kind in kinds:
                for c in CONCURRENCY:
                    r = load(url, scripts[kind], c, args.load_core, args.seconds)
                    name = f"{label}, {kind}" if len(kinds) > 1 else label
                    print(
                        f"{name:<44} {c:>4} {r['rate']:>9,.0f} {r['rate'] / single:>6.0%} "
                        f"{r['rate'] / best:>7.0%} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                        f"{r['non2xx']:>8} {r['socket_errors']}",
                        flush=True,
                    )
        finally:
            stop()
    if args.endpoint:
        key_cost(model, scripts, args.load_core, args.seconds, args.rounds)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def key_cost(model: Path, scripts: dict[str, Path], core: int, seconds: int, rounds: int) -> None:
    """The endpoint's key check against the same service public on purpose (no key
    checked): both run at once and are measured in turns at concurrency 32, the order
    swapped every round (ABBA), so the machine's slower minutes fall on both alike; the
    median of each round's ratio, and the medians of the rates."""
    print(f"\nthe key's cost: {rounds} rounds in turns, concurrency 32, {seconds} s each")
    keyed, public = serve_endpoint(model, False), serve_endpoint(model, True)
    try:
        for kind in ("binary", "json"):
            pairs: list[tuple[float, float]] = []
            for turn in range(rounds):
                order = (keyed, public) if turn % 2 == 0 else (public, keyed)
                rate = {
                    url: load(url, scripts[kind], 32, core, seconds)["rate"] for url, _ in order
                }
                pairs.append((rate[keyed[0]], rate[public[0]]))
            ratio = statistics.median(k / p for k, p in pairs)
            print(
                f"  {kind}: key checked / public, median of the rounds' ratios: {ratio:.1%}; "
                f"medians {statistics.median(k for k, _ in pairs):,.0f} / "
                f"{statistics.median(p for _, p in pairs):,.0f} req/s; rounds "
                + ", ".join(f"{k:,.0f}/{p:,.0f}" for k, p in pairs),
                flush=True,
            )
    finally:
        keyed[1]()
        public[1]()
