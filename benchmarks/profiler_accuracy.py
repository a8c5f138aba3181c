"""How much Workbench's profiler (``workbench/models/container/benchmark.py``, what the
``model-benchmark`` job runs) adds to what it measures: its p50 latency and throughput for
one model, format and batch size next to an independent bare loop around the same ONNX
Runtime call, in one run, in the same container with the same limits as the job (1 CPU).

The model is a small ONNX CNN made here with onnx.helper (two 3x3 convolutions, global
average pooling, a linear layer; about 12 M multiply-adds per 64x64 RGB sample). The two
ways alternate (profiler, bare, profiler, bare, ...) so drift hits both alike; the table
gives the medians.

    .venv/bin/python benchmarks/profiler_accuracy.py [--rounds 5] [--batch 1 8]

Needs the Docker Engine (scripts/docker) and the envs/python image (built if missing): the
script runs itself again inside it, where onnx and onnxruntime are.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "workbench" / "models" / "container"
INSIDE = "/workbench/repo"


def make_model(path: Path) -> None:
    """A compute-bound ONNX CNN: conv 3->32, conv 32->32 (3x3, 64x64), pool, linear."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        data = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        return numpy_helper.from_array(data, name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            weight("w1", 32, 3, 3, 3),
            weight("b1", 32),
            weight("w2", 32, 32, 3, 3),
            weight("b2", 32),
            weight("w3", 10, 32),
            weight("b3", 10),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def bare(path: Path, batch: int, seconds: float) -> tuple[float, float]:
    """An independent loop: its own session (1 thread), ``time.perf_counter`` around each
    call; (p50 ms, samples/s)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((batch, 3, 64, 64)).astype(np.float32)
    feed = {"input": x}
    for _ in range(10):
        session.run(None, feed)
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        session.run(None, feed)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return statistics.median(latencies) * 1000, len(latencies) * batch / elapsed


def inside(rounds: int, batches: list[int]) -> None:
    """Runs in the container: both ways, alternating; prints one JSON line per batch."""
    sys.path.insert(0, str(Path(INSIDE) / "workbench" / "models" / "container"))
    import benchmark  # the profiler, as the job runs it
    from convert import onnx_runner, sample_inputs

    model = Path("/tmp/cnn.onnx")
    make_model(model)
    signature = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 64, 64]}]}
    request = {"warmup_s": 0.5, "window_s": 0.5, "point_cap_s": 10}
    os.environ["WORKBENCH_THREADS"] = "1"
    run = onnx_runner(model)
    for batch in batches:
        ours, theirs = [], []
        for _ in range(rounds):
            point = benchmark.measure(run, sample_inputs(signature, batch, 0), batch, request)
            ours.append((point["p50_ms"], point["throughput"], point["samples"]))
            seconds = point["calls"] * point["p50_ms"] / 1000  # as long as its windows
            theirs.append(bare(model, batch, max(seconds, 1.0)))
        print(json.dumps({"batch": batch, "profiler": ours, "bare": theirs}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--image", default="", help="an image with onnx and onnxruntime")
    args = parser.parse_args()
    if args.inside:
        inside(args.rounds, args.batch)
        return 0
    image = args.image or python_image()
    command = [
        "docker", "run", "--rm", "--cpus", "1", "--memory", "2g", "--user", "1000:1000",
        "-v", f"{REPO}:{INSIDE}:ro", image,
        "python", f"{INSIDE}/benchmarks/profiler_accuracy.py", "--inside",
        "--rounds", str(args.rounds), "--batch", *map(str, args.batch),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return done.returncode
    print(f"profiler vs a bare loop, ONNX CNN (12 M MACs/sample), 1 CPU, {args.rounds} rounds")
    print(
        "| batch | profiler p50 ms | bare p50 ms | p50 overhead | profiler samples/s "
        "| bare samples/s | throughput overhead | samples behind a profiler figure |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in done.stdout.splitlines():
        row = json.loads(line)
        p50 = statistics.median(x[0] for x in row["profiler"])
        rate = statistics.median(x[1] for x in row["profiler"])
        samples = statistics.median(x[2] for x in row["profiler"])
        bare_p50 = statistics.median(x[0] for x in row["bare"])
        bare_rate = statistics.median(x[1] for x in row["bare"])
        print(
            f"| {row['batch']} | {p50:.3f} | {bare_p50:.3f} | {100 * (p50 / bare_p50 - 1):+.1f}% "
            f"| {rate:.0f} | {bare_rate:.0f} | {100 * (1 - rate / bare_rate):+.1f}% "
            f"| {samples:.0f} |"
        )
    return 0


def python_image() -> str:
    """The envs/python image the tests build (built here if missing)."""
    sys.path.insert(0, str(REPO))
    from tests.docker_fixtures import python_env_image_for
    from workbench.backends.docker import DockerBackend

    return python_env_image_for(DockerBackend.from_env())


if __name__ == "__main__":
    sys.exit(main())
