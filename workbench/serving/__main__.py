"""``python -m workbench.serving MODEL --runtime onnx --name cnn``: serve one model version
over HTTP (the routes are in :mod:`workbench.serving.app`) with granian, one worker process
whose model runs on ``--threads`` threads. A service's replica runs this in a container of
the version's environment image; it is also how to serve a model by hand."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: the environment variable that hands the options to granian's worker process
CONFIG_ENV = "WORKBENCH_SERVING_CONFIG"


def parse(argv: list[str]) -> argparse.Namespace:
    from workbench.serving.runtimes import RUNTIMES

    parser = argparse.ArgumentParser(prog="python -m workbench.serving", description=__doc__)
    parser.add_argument("model", type=Path, help="the model file, or the folder holding it")
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
        "--signature", type=Path, help="a signature.json (default: the one beside the model)"
    )
    return parser.parse_args(argv)


def app_from_env() -> object:
    """granian's factory: the application (served by RSGI), its model loaded (in the worker)."""
    from workbench.serving.app import ModelServer
    from workbench.serving.runtimes import load

    options = json.loads(os.environ[CONFIG_ENV])
    signature = json.loads(Path(options["signature"]).read_text()) if options["signature"] else None
    runtime = load(
        Path(options["model"]), options["runtime"], threads=options["threads"], signature=signature
    )
    inputs = ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in runtime.inputs)
    print(
        f"serving {options['name']} v{options['version']} ({options['runtime']} runtime, inputs: "
        f"{inputs}) on port {options['port']}; batches up to {options['max_batch']} rows, "
        f"waiting at most {options['max_delay_ms']:g} ms",
        file=sys.stderr,
        flush=True,
    )
    return ModelServer(
        runtime,
        name=options["name"],
        version=options["version"],
        max_batch=options["max_batch"],
        max_delay_s=options["max_delay_ms"] / 1000,
        max_queue=options["max_queue"],
        max_body_bytes=int(options["max_body_mb"] * 1024**2),
        threads=options["threads"],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if not args.model.exists():
        print(f"error: {args.model} does not exist", file=sys.stderr)
        return 2
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    os.environ[CONFIG_ENV] = json.dumps(options)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(args.threads))
    from granian import Granian

    Granian(
        "workbench.serving.__main__:app_from_env",
        factory=True,
        address=args.host,
        port=args.port,
        interface="rsgi",
        workers=1,
        runtime_threads=1,
        log_access=False,
        log_level="warning",
        backlog=2048,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
