"""Benchmarks a model version's verified formats, inside a container of the version's
environment image with the job's CPU and memory limits (the job kind in
``workbench/models/jobs.py`` mounts this folder, the version's files and formats read-only
and an output folder, and runs ``python benchmark.py REQUEST``).

For each format, and each batch size (1, 2, 4, ... up to the limit): a warm-up, then
measuring windows of back-to-back calls until three windows in a row agree on throughput
within 10% (Triton perf_analyzer's stability rule) or the point's time cap; its latency
percentiles (p50, p95, p99) and throughput (samples/s) come from those last three windows,
with the number of calls and samples behind them and the peak resident memory. Each point
is appended to ``points.jsonl`` as soon as it is measured, so a container killed for
memory at a large batch size keeps the smaller sizes' results; a batch size that fails
(out of memory, say) ends that format's sizes with why. ``machine.json`` records the
hardware and software the numbers were measured on.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from convert import runner_for, sample_inputs  # beside this file: on sys.path as a script

#: three windows in a row within this spread of throughput make a point stable
STABILITY = 0.10


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    software = {"python": platform.python_version()}
    for package in ("numpy", "onnxruntime", "torch", "scikit-learn", "tensorflow-cpu", "keras"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            software[package] = metadata.version(package)
    return {
        "hardware": {
            "cpu": model or platform.processor() or platform.machine(),
            "cores_visible": cores,
            "gpu": "",
        },
        "software": software,
    }


def measure(
    run: Any, inputs: dict[str, np.ndarray], batch: int, request: dict[str, Any]
) -> dict[str, Any]:
    """One point: warm-up, then windows until three agree or the cap."""
    warmup_until = time.perf_counter() + float(request["warmup_s"])
    calls = 0
    while calls < 3 or time.perf_counter() < warmup_until:
        run(inputs)
        calls += 1
    window_s, cap = float(request["window_s"]), float(request["point_cap_s"])
    windows: list[tuple[list[float], float]] = []  # (latencies, elapsed)
    peak = rss_mb()
    started = time.perf_counter()
    stable = False
    while True:
        latencies: list[float] = []
        window_start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            run(inputs)
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            if t1 - window_start >= window_s and len(latencies) >= 3:
                break
        windows.append((latencies, time.perf_counter() - window_start))
        peak = max(peak, rss_mb())
        if len(windows) >= 3:
            rates = [len(lat) * batch / elapsed for lat, elapsed in windows[-3:]]
            if max(rates) <= min(rates) * (1 + STABILITY):
                stable = True
                break
        if time.perf_counter() - started >= cap:
            break
    last = windows[-3:]
    latencies = np.array([x for lat, _ in last for x in lat]) * 1000
    elapsed = sum(e for _, e in last)
    return {
        "batch_size": batch,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "throughput": float(len(latencies) * batch / elapsed),
        "memory_mb": round(peak, 1),
        "calls": len(latencies),
        "samples": int(len(latencies) * batch),
        "windows": len(windows),
        "stable": stable,
    }


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    out = Path(request["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "machine.json").write_text(json.dumps(machine(), indent=1))
    points = out / "points.jsonl"
    signature = request["signature"]
    for fmt, (kind, path) in request["formats"].items():
        print(f"[benchmark] {fmt}: loading {path}", flush=True)
        try:
            run = runner_for(kind, Path(path), signature)
        except Exception as exc:  # the format's load failed: say so, go on
            stop = {"format": fmt, "stopped": f"could not load it: {type(exc).__name__}: {exc}"}
            with points.open("a") as f:
                f.write(json.dumps(stop) + "\n")
            continue
        for batch in request["batch_sizes"]:
            # announce it first: a kill for memory during this size is then known by it
            with points.open("a") as f:
                f.write(json.dumps({"format": fmt, "trying": batch}) + "\n")
            try:
                inputs = sample_inputs(signature, batch, 0)
                point = measure(run, inputs, batch, request)
            except MemoryError:
                point = {"stopped": f"out of memory at batch size {batch}"}
            except Exception as exc:  # this size failed: the smaller ones stand
                point = {"stopped": f"batch size {batch} failed: {type(exc).__name__}: {exc}"}
            with points.open("a") as f:
                f.write(json.dumps({"format": fmt, **point}) + "\n")
            if "stopped" in point:
                print(f"[benchmark] {fmt}: {point['stopped']}", flush=True)
                break
            print(
                f"[benchmark] {fmt} batch {batch}: p50 {point['p50_ms']:.3f} ms, p99 "
                f"{point['p99_ms']:.3f} ms, {point['throughput']:.0f} samples/s"
                f"{'' if point['stable'] else ' (not stable within the cap)'}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
