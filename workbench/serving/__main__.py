"""``python -m workbench.serving MODEL --runtime onnx --name cnn``: serve one model version
over HTTP (the routes are in :mod:`workbench.serving.app`, the HTTP layer in
:mod:`workbench.serving.http`) on uvloop's event loop, in this one process, the model running
on ``--threads`` threads. A service's replica runs this in a container of the version's
environment image; an inference image runs it on its own Python predictor
(``--runtime python --predictor /app/predict.py``, the model at ``$MODEL_DIR``, the port
``$PORT``); it is also how to serve a model by hand."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse(argv: list[str]) -> argparse.Namespace:
    from workbench.serving.runtimes import RUNTIMES

    parser = argparse.ArgumentParser(prog="python -m workbench.serving", description=__doc__)
    parser.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=os.environ.get("MODEL_DIR") or None,
        help="the model file, or the folder holding it (default: $MODEL_DIR, where an "
        "inference container finds its model)",
    )
    parser.add_argument("--runtime", required=True, choices=sorted(RUNTIMES))
    parser.add_argument("--name", default="model", help="the model's name in the V2 routes")
    parser.add_argument("--version", default="1")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--threads", type=int, default=1, help="the runtime's threads")
    parser.add_argument("--max-batch", type=int, default=32, help="rows per batch at most")
    parser.add_argument(
        "--max-delay-ms", type=float, default=5.0, help="the longest a request waits for others"
    )
    parser.add_argument("--max-queue", type=int, default=256, help="queued requests at most")
    parser.add_argument("--max-body-mb", type=float, default=64.0)
    parser.add_argument(
        "--max-body-in-flight-mb",
        type=float,
        help="body bytes all requests read and not yet answered may hold (default: 4 bodies)",
    )
    parser.add_argument("--max-elements", type=int, help="of one input tensor at most")
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument(
        "--head-timeout-s", type=float, default=10.0, help="for a request's head to be whole"
    )
    parser.add_argument(
        "--min-body-rate", type=int, default=1024, help="bytes/s a body must bring (over 10 s)"
    )
    parser.add_argument(
        "--signature", type=Path, help="a signature.json (default: the one beside the model)"
    )
    parser.add_argument(
        "--predictor",
        type=Path,
        help="the python runtime's file, defining class Predictor (default: predictor.py "
        "in the model's folder); an inference image's own code",
    )
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error("give the model (a file or folder), or set MODEL_DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if not args.model.exists():
        print(f"error: {args.model} does not exist", file=sys.stderr)
        return 2
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(args.threads))
    import uvloop

    from workbench.serving.app import ModelServer
    from workbench.serving.http import Hub, Limits, serve
    from workbench.serving.runtimes import ModelLoadError, load

    signature = json.loads(args.signature.read_text()) if args.signature else None
    try:
        runtime = load(
            args.model,
            args.runtime,
            threads=args.threads,
            signature=signature,
            predictor=args.predictor,
        )
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = ModelServer(
        runtime,
        name=args.name,
        version=args.version,
        max_batch=args.max_batch,
        max_delay_s=args.max_delay_ms / 1000,
        max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * 1024**2),
        max_elements=args.max_elements,
        threads=args.threads,
    )
    in_flight = args.max_body_in_flight_mb
    limits = Limits(
        head_s=args.head_timeout_s,
        min_body_rate=args.min_body_rate,
        max_connections=args.max_connections,
        process_body_bytes=None if in_flight is None else int(in_flight * 1024**2),
    )
    try:
        hub = Hub(server, limits)
    except ValueError as exc:
        server.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inputs = ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in runtime.inputs)
    print(
        f"serving {args.name} v{args.version} ({args.runtime} runtime, inputs: {inputs}) on "
        f"port {args.port}; batches up to {server.batcher.max_batch} rows, waiting at most "
        f"{args.max_delay_ms:g} ms",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvloop.run(serve(server, args.host, args.port, hub=hub))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
