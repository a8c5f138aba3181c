"""The training container's side of the contract (docs/contracts.md): where a run finds
its dataset and writes its model, its parameters, the metrics it appends, the
evaluation it writes once and the line it ends its log with.

The environment images install Workbench, so a training script imports these instead of
writing them again (the preset algorithms under examples/algorithms do). Light: the
standard library only, no framework; a script that chooses a device passes in what its
framework says (:func:`device_name`); the PyTorch scripts' own helpers are in
:mod:`~workbench.training.pytorch`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: what a bool parameter's value means "true" in (Workbench passes ``true``/``false``)
TRUE = frozenset({"1", "true", "yes", "on"})


def env_str(name: str, default: str) -> str:
    """The parameter ``name`` (an environment variable); ``default`` when unset or empty."""
    return os.environ.get(name) or default


def env_path(name: str, default: str) -> Path:
    """The path in the environment variable ``name``; ``default`` when unset or empty."""
    return Path(env_str(name, default))


def env_int(name: str, default: int) -> int:
    """The int parameter ``name``; ``default`` when unset or empty."""
    return int(os.environ.get(name) or default)


def env_float(name: str, default: float) -> float:
    """The float parameter ``name``; ``default`` when unset or empty."""
    return float(os.environ.get(name) or default)


def env_bool(name: str, default: bool) -> bool:
    """The bool parameter ``name`` (true for one of :data:`TRUE`, in any case);
    ``default`` when unset or empty."""
    value = os.environ.get(name)
    return default if not value else value.strip().lower() in TRUE


@dataclass(frozen=True)
class RunPaths:
    """Where a training run reads and writes, from the contract's environment variables
    (their defaults: the paths Workbench mounts), and since when it runs."""

    #: the dataset, its ``train/`` and ``test/`` (read-only)
    dataset: Path
    #: the folder the model goes to
    model: Path
    #: the metrics, one JSON object a line, appended (:meth:`append_metrics`)
    metrics: Path
    #: the evaluation, written once at the end (:meth:`write_evaluation`)
    evaluation: Path
    #: the base model's files for transfer training; None when the run has none
    base_model: Path | None
    #: the monotonic clock when the paths were read (:meth:`seconds` counts from it)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_env(cls) -> RunPaths:
        base = os.environ.get("BASE_MODEL_DIR")
        return cls(
            dataset=env_path("DATASET_DIR", "/workbench/dataset"),
            model=env_path("MODEL_DIR", "/workbench/output/model"),
            metrics=env_path("METRICS_FILE", "/workbench/output/metrics.jsonl"),
            evaluation=env_path("EVALUATION_FILE", "/workbench/output/evaluation.json"),
            base_model=Path(base) if base else None,
        )

    def append_metrics(self, values: dict[str, float | int]) -> None:
        """Append one line to :attr:`metrics` (flushed, so Workbench plots it at once; the
        folder made if need be) and print it to the log."""
        line = json.dumps(values)
        self.metrics.parent.mkdir(parents=True, exist_ok=True)
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
        print(line, flush=True)

    def write_evaluation(
        self,
        labels: list[str],
        confusion_matrix: list[list[int]],
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Write :attr:`evaluation` on the test split: the labels, the confusion matrix
        (rows: the true class; columns: the predicted one) and the algorithm's own
        ``metrics``."""
        evaluation: dict[str, Any] = {
            "labels": labels,
            "confusion_matrix": confusion_matrix,
            "metrics": metrics or {},
        }
        self.evaluation.write_text(json.dumps(evaluation) + "\n")

    def seconds(self) -> float:
        """The seconds since :attr:`started`, to a tenth."""
        return round(time.monotonic() - self.started, 1)

    def finish(self, summary: str) -> None:
        """End the log with ``summary`` (the test score), where the model went and how
        long the run took."""
        print(f"{summary}; model written to {self.model} after {self.seconds()} s", flush=True)


def cpu_limit() -> int:
    """The CPUs this container may use (its cgroup v2 quota), at least 1."""
    count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return count
    if quota == "max":
        return count
    return max(1, min(count, math.ceil(int(quota) / int(period))))


def device_name(wanted: str, cuda_available: bool) -> str:
    """The device to train on for the ``DEVICE`` parameter's value ``wanted`` (``cpu`` or
    ``cuda``): the CPU, saying so, when CUDA is asked for but none is visible.
    :class:`SystemExit` for another value."""
    wanted = wanted.strip().lower()
    if wanted not in ("cpu", "cuda"):
        raise SystemExit(f"DEVICE must be cpu or cuda, not {wanted!r}")
    if wanted == "cuda" and not cuda_available:
        print("DEVICE=cuda but no CUDA device is visible: training on the CPU", flush=True)
        return "cpu"
    return wanted
