"""What a Workbench training run costs on top of the training itself: the preset text
classifier (examples/algorithms/text-bayes) on the example texts dataset, three ways, in
one run, median of --repeat:

- floor: the same train.py run by this machine's Python on the same dataset folder;
- peer: a bare ``docker run`` of the same training image with the same mounts, the way a
  modeler runs it by hand (timed from run to exit);
- Workbench: a training task from "create and start" to "succeeded", which adds the
  queue, the dataset view with the split, log and metrics capture, the evaluation and the
  model version (files copied and hashed into the store).

    .venv/bin/python benchmarks/training_run.py [--repeat 5]

Needs the Docker Engine (scripts/docker) and builds envs/python if it is not built yet.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import docker_benchmark  # noqa: E402

from tests.conftest import add_algorithm, make_workbench  # noqa: E402
from tests.docker_fixtures import PYTHON_ENV_TAG  # noqa: E402
from workbench.backends.base import Limits, Mount, RunSpec, RunState  # noqa: E402
from workbench.config import TrainingLimits  # noqa: E402
from workbench.registry import models as m  # noqa: E402
from workbench.services import Workbench  # noqa: E402
from workbench.training.dataset_view import DatasetSource, materialize  # noqa: E402
from workbench.training.schemas import TaskCreate  # noqa: E402

EXAMPLE = REPO / "examples" / "algorithms" / "text-bayes"
TAG = "workbench/bench-text-bayes-train:latest"


def median_of(repeat: int, once: Callable[[], float]) -> tuple[float, list[float]]:
    times = [once() for _ in range(repeat)]
    return statistics.median(times), times


def contract_env(dataset: Path, output: Path, fmt: str) -> dict[str, str]:
    return {
        "DATASET_DIR": str(dataset),
        "DATASET_FORMAT": fmt,
        "MODEL_DIR": str(output / "model"),
        "METRICS_FILE": str(output / "metrics.jsonl"),
        "EVALUATION_FILE": str(output / "evaluation.json"),
        "BASE_MODEL_DIR": "",
    }


def fresh_output(root: Path) -> Path:
    output = Path(tempfile.mkdtemp(dir=root))
    (output / "model").mkdir()
    os.chmod(output, 0o777)
    os.chmod(output / "model", 0o777)
    return output


def main() -> int:
    repeat, backend = docker_benchmark(__doc__.splitlines()[0])
    list(
        backend.build_image(
            EXAMPLE / "train", TAG, build_args={"WORKBENCH_ENV_IMAGE": PYTHON_ENV_TAG}
        )
    )
    spec = importlib.util.spec_from_file_location(
        "load_examples", REPO / "examples" / "datasets" / "load_examples.py"
    )
    assert spec is not None and spec.loader is not None
    loader = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "examples" / "datasets"))
    spec.loader.exec_module(loader)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wb: Workbench = make_workbench(
            root / "home",
            backend="docker",
            training=TrainingLimits(concurrency=1, cpus=2, memory_mb=4096),
        )
        try:
            wb.jobs.runner.interval = 0.2
            wb.start()
            owner = wb.users.ensure_owner("owner")
            made = loader.make_texts(root / "archives")
            loader.register(wb, owner, made)
            dataset = next(d for d in wb.datasets.list(owner) if d.name == made.name)
            with wb.registry.session() as s:
                keys = {
                    row.split: row.storage_key
                    for row in s.query(m.DatasetSplit).filter_by(dataset_id=dataset.id)
                }
            algorithm_id = add_algorithm(
                wb, owner.id, {"image_ref": TAG}, name="text-bayes", purpose="text"
            )
            view = root / "view"
            materialize(
                DatasetSource(
                    made.name,
                    dataset.format,
                    dataset.split_mode,
                    wb.store.path(keys["train"]),
                    wb.store.path(keys["test"]) if "test" in keys else None,
                ),
                view,
                train_ratio=dataset.train_ratio,
                seed="bench",
            )
            os.chmod(root, 0o755)

            def floor() -> float:
                output = fresh_output(root)
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, str(EXAMPLE / "train" / "train.py")],
                    env={**os.environ, **contract_env(view, output, dataset.format.value)},
                    check=True,
                    capture_output=True,
                )
                return time.perf_counter() - started

            def docker_run() -> float:
                output = fresh_output(root)
                started = time.perf_counter()
                run = backend.run(
                    RunSpec(
                        name=f"bench-train-{time.monotonic_ns()}",
                        image=TAG,
                        env=contract_env(
                            Path("/workbench/dataset"),
                            Path("/workbench/output"),
                            dataset.format.value,
                        ),
                        mounts=(
                            Mount(view, "/workbench/dataset", read_only=True),
                            Mount(output, "/workbench/output"),
                        ),
                        limits=Limits(cpus=2, memory_mb=4096),
                        labels={"workbench.managed": "benchmark"},
                        user="1000:1000",
                    )
                )
                try:
                    while backend.status(run.id).state is not RunState.EXITED:
                        time.sleep(0.05)
                    elapsed = time.perf_counter() - started
                    assert backend.status(run.id).exit_code == 0
                finally:
                    backend.remove(run.id)
                return elapsed

            def workbench_task() -> float:
                task = TaskCreate(
                    name=f"bench {time.monotonic_ns()}",
                    purpose="text",
                    sub_purpose="classification",
                    algorithm_id=algorithm_id,
                    dataset_id=dataset.id,
                    cpus=2,
                    memory_mb=4096,
                    start=True,
                )
                started = time.perf_counter()
                created = wb.training.create(owner, task)
                while (state := wb.training.get(owner, created.id).state) in ("queued", "running"):
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
                assert state == "succeeded", wb.training.get(owner, created.id).state_reason
                return elapsed

            results = {
                "floor: train.py in-process Python (no container)": median_of(repeat, floor),
                "peer: bare docker run of the training image": median_of(repeat, docker_run),
                "Workbench training task, create -> succeeded": median_of(repeat, workbench_task),
            }
        finally:
            wb.close()
            backend.remove_image(TAG)
    print(f"\ntext-bayes on texts ({made.samples} samples), median of {repeat}, 2 cores\n")
    print("| what | median | all runs |\n|---|---|---|")
    for what, (median, times) in results.items():
        print(f"| {what} | {median:.2f} s | {', '.join(f'{t:.2f}' for t in times)} |")
    docker = results["peer: bare docker run of the training image"][0]
    ours = results["Workbench training task, create -> succeeded"][0]
    print(f"\nWorkbench adds {ours - docker:+.2f} s to a bare docker run ({ours / docker:.2f}x).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
