"""A training run's evaluation, measured the same way for every algorithm.

The container writes ``$EVALUATION_FILE`` once, on the test split (docs/contracts.md): a
classifier gives its ``labels`` and ``confusion_matrix`` (rows: the true class, columns:
the predicted class), and Workbench derives accuracy, and precision, recall and F1 per
class and as macro averages (the unweighted mean over the classes; a class nothing was
predicted as, or that has no samples, scores 0 rather than dividing by zero). Other
numbers (a detector's mAP@0.5...) go under ``metrics`` and are kept as they are::

    derive(["neg", "pos"], [[48, 2], [5, 45]]).accuracy   # 0.93
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from workbench.errors import InvalidInput

#: the largest evaluation file read (a confusion matrix of a few thousand classes)
MAX_BYTES = 64 * 1024**2


class ClassScores(BaseModel):
    precision: float
    recall: float
    f1: float
    #: test samples of this class (its row's sum)
    support: int


class Evaluation(BaseModel):
    """What a run measured on the test split; numbers are None when the run gave no
    confusion matrix (a detector, or no evaluation file)."""

    accuracy: float | None = None
    #: macro averages over the classes
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    per_class: dict[str, ClassScores] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    confusion_matrix: list[list[int]] = Field(default_factory=list)
    #: the container's own numbers, as it wrote them
    metrics: dict[str, Any] = Field(default_factory=dict)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def derive(
    labels: Sequence[str],
    confusion_matrix: Sequence[Sequence[int]],
    metrics: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Accuracy, per-class and macro precision/recall/F1 from a confusion matrix."""
    n = len(labels)
    matrix = [list(row) for row in confusion_matrix]
    total = sum(map(sum, matrix))
    per_class: dict[str, ClassScores] = {}
    for i, label in enumerate(labels):
        true_positives = matrix[i][i]
        predicted = sum(matrix[row][i] for row in range(n))
        actual = sum(matrix[i])
        precision = _ratio(true_positives, predicted)
        recall = _ratio(true_positives, actual)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScores(precision=precision, recall=recall, f1=f1, support=actual)
    scores = list(per_class.values())
    return Evaluation(
        accuracy=_ratio(sum(matrix[i][i] for i in range(n)), total),
        precision=sum(s.precision for s in scores) / n if n else None,
        recall=sum(s.recall for s in scores) / n if n else None,
        f1=sum(s.f1 for s in scores) / n if n else None,
        per_class=per_class,
        labels=list(labels),
        confusion_matrix=matrix,
        metrics=dict(metrics or {}),
    )


def from_document(document: Any) -> Evaluation:
    """The evaluation of a parsed ``evaluation.json``; :class:`InvalidInput` saying what
    breaks the contract."""
    if not isinstance(document, dict):
        raise InvalidInput("evaluation.json must hold a JSON object.")
    metrics = document.get("metrics", {})
    if not isinstance(metrics, dict):
        raise InvalidInput('"metrics" in evaluation.json must be an object of numbers.')
    metrics = json_safe(metrics)
    labels = document.get("labels")
    matrix = document.get("confusion_matrix")
    if labels is None and matrix is None:
        return Evaluation(metrics=metrics)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise InvalidInput('"labels" in evaluation.json must be a non-empty list of strings.')
    if len(set(labels)) != len(labels):
        raise InvalidInput('"labels" in evaluation.json lists a class twice.')
    n = len(labels)
    if (
        not isinstance(matrix, list)
        or len(matrix) != n
        or not all(isinstance(row, list) and len(row) == n for row in matrix)
    ):
        raise InvalidInput(
            f'"confusion_matrix" in evaluation.json must be {n} rows of {n} counts '
            "(rows: the true class, columns: the predicted class, in the order of labels)."
        )
    for row in matrix:
        for count in row:
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InvalidInput(
                    f'"confusion_matrix" in evaluation.json holds {count!r}; every entry is '
                    "a count (a whole number >= 0)."
                )
    return derive(labels, matrix, metrics)


def read_evaluation(data: bytes | None) -> Evaluation | None:
    """The evaluation a run wrote (``evaluation.json``'s bytes, read by the caller without
    following links and at most :data:`MAX_BYTES`); None when it wrote none."""
    if data is None:
        return None
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"evaluation.json is not valid JSON ({exc}).") from None
    return from_document(document)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: Python's json module reads and writes
    them, but they are not JSON and PostgreSQL refuses them (a loss of NaN is common)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
