"""Time from "publish" (a service created from a registered version) to the first correct
prediction through the service's endpoint, next to the floor: a bare ``docker run`` of the
same image and model server command, timed to its first correct prediction on its own
port. Both in one run, median of --repeat.

    .venv/bin/python benchmarks/time_to_service.py [--repeat 5]

Needs the Docker Engine (scripts/docker) and HAProxy (scripts/system-deps); builds
envs/python if it is not built yet. The model is the ONNX CNN of ``serving.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import docker_benchmark, print_against_floor, register_cnn  # noqa: E402
from serving import free_port, make_cnn  # noqa: E402

from tests.docker_fixtures import PYTHON_ENV_TAG  # noqa: E402
from workbench.config import Settings  # noqa: E402
from workbench.deployments.schemas import ServiceCreate  # noqa: E402
from workbench.services import Workbench  # noqa: E402
from workbench.users import Actor  # noqa: E402

SIGNATURE = {"inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 3, 32, 32]}]}


def first_correct(
    url: str, x: np.ndarray, want: np.ndarray, timeout: float = 120, key: str | None = None
) -> None:
    """Post until the answer is the model's (connection refused, 503: not yet); ``key``:
    the endpoint's."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32"}
    body = {"inputs": [{**tensor, "data": x.ravel().tolist()}]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=5)
            if r.status_code == 200:
                got = np.array(r.json()["outputs"][0]["data"]).reshape(want.shape)
                if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                    return
                raise SystemExit(f"a wrong answer from {url}")
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"no correct answer from {url} in {timeout} s")


def timed(fn: Callable[[], Callable[[], None]], repeat: int) -> list[float]:
    """``fn``'s times; it returns its clean-up, which is not timed."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        cleanup = fn()
        times.append(time.perf_counter() - started)
        cleanup()
    return times


def main() -> int:
    repeat, backend = docker_benchmark(__doc__.splitlines()[0])

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cnn"
        model = folder / "model.onnx"
        folder.mkdir()
        make_cnn(model)
        (folder / "signature.json").write_text(json.dumps(SIGNATURE))
        folder.chmod(0o755)
        x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
        want = ort.InferenceSession(str(model)).run(None, {"input": x})[0]

        def bare_run() -> Callable[[], None]:
            port = free_port()
            name = f"wb-bench-bare-{port}"
            run = f"docker run -d --rm --name {name} -p 127.0.0.1:{port}:8080 --user 1000:1000"
            run += f" -v {folder}:/workbench/model:ro {PYTHON_ENV_TAG}"
            run += " python -m workbench.serving /workbench/model --runtime onnx --name cnn"
            subprocess.run(run.split(), check=True, capture_output=True)
            first_correct(f"http://127.0.0.1:{port}/v2/models/cnn/infer", x, want)
            return lambda: subprocess.run(["docker", "rm", "-f", name], capture_output=True)

        floor_name = "floor: bare docker run -> first correct prediction"
        results = {floor_name: timed(bare_run, repeat)}

        settings = Settings(home=Path(tmp) / "home", backend="docker")
        wb = Workbench.from_settings(settings, backend_instance=backend)
        wb.registry.upgrade()
        wb.start()
        try:
            owner = wb.users.add_user("bench")
            actor = Actor(owner.id, owner.username, owner.role)
            version = register_cnn(wb, owner.id, folder)
            counter = iter(range(1000))

            def publish() -> Callable[[], None]:
                started = wb.deployments.create(
                    actor, ServiceCreate(name=f"cnn-{next(counter)}", version_id=version.id)
                )
                url = f"http://{started.service.address}/v2/models/cnn/infer"
                first_correct(url, x, want, key=started.service.key)

                def cleanup() -> None:
                    wb.jobs.wait(started.job_id, timeout=120)
                    wb.deployments.delete(actor, started.service.id)

                return cleanup

            results["Workbench: publish -> first correct prediction via endpoint"] = timed(
                publish, repeat
            )
        finally:
            wb.close()

    print_against_floor(results, floor_name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
