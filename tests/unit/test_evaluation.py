"""A run's evaluation: the derived numbers agree with scikit-learn's on the same data, and
evaluation files that break the contract are refused with what to fix."""

from __future__ import annotations

import json
import random

import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from workbench.errors import InvalidInput
from workbench.models.evaluation import derive, from_document, json_safe, read_evaluation


@pytest.mark.parametrize("seed", range(5))
def test_derived_numbers_match_scikit_learn(seed):
    rng = random.Random(seed)
    labels = ["cat", "dog", "owl", "fox"]
    y_true = [rng.choice(labels[:3]) for _ in range(200)]  # "fox" never occurs
    y_pred = [t if rng.random() < 0.7 else rng.choice(labels[1:]) for t in y_true]  # nor "cat"
    matrix = confusion_matrix(y_true, y_pred, labels=labels).tolist()

    got = derive(labels, matrix, {"auc": 0.9})

    assert got.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    for i, label in enumerate(labels):
        scores = got.per_class[label]
        assert scores.precision == pytest.approx(p[i])
        assert scores.recall == pytest.approx(r[i])
        assert scores.f1 == pytest.approx(f[i])
        assert scores.support == support[i]
    mp, mr, mf, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    assert (got.precision, got.recall, got.f1) == (
        pytest.approx(mp),
        pytest.approx(mr),
        pytest.approx(mf),
    )
    assert got.labels == labels and got.confusion_matrix == matrix
    assert got.metrics == {"auc": 0.9}


def test_the_contracts_example():
    got = from_document({"labels": ["neg", "pos"], "confusion_matrix": [[48, 2], [5, 45]]})
    assert got.accuracy == pytest.approx(0.93)
    assert got.per_class["pos"].recall == pytest.approx(0.9)
    assert got.per_class["neg"].precision == pytest.approx(48 / 53)
    assert got.metrics == {}


def test_a_detector_gives_only_its_metrics():
    got = from_document({"metrics": {"map50": 0.61, "precision": 0.7, "loss": float("nan")}})
    assert got.accuracy is None and got.per_class == {} and got.labels == []
    assert got.metrics == {"map50": 0.61, "precision": 0.7, "loss": None}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "must hold a JSON object"),
        ({"metrics": [1]}, '"metrics" in evaluation.json must be an object'),
        ({"labels": ["a"]}, "must be 1 rows of 1 counts"),
        ({"labels": [], "confusion_matrix": []}, "non-empty list of strings"),
        ({"labels": ["a", "a"], "confusion_matrix": [[1, 0], [0, 1]]}, "lists a class twice"),
        ({"labels": ["a", "b"], "confusion_matrix": [[1, 0]]}, "must be 2 rows of 2 counts"),
        ({"labels": ["a", "b"], "confusion_matrix": [[1, 0], [0]]}, "2 rows of 2 counts"),
        ({"labels": ["a", "b"], "confusion_matrix": [[1, -1], [0, 1]]}, "holds -1"),
        ({"labels": ["a", "b"], "confusion_matrix": [[1, 0.5], [0, 1]]}, "holds 0.5"),
        ({"labels": ["a", "b"], "confusion_matrix": [[True, 0], [0, 1]]}, "holds True"),
        ({"confusion_matrix": [[1]]}, "non-empty list of strings"),
    ],
)
def test_broken_evaluations_are_refused(document, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        from_document(document)


def test_reading_the_file():
    assert read_evaluation(None) is None  # none written
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_evaluation(b"{not json")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_evaluation(b"\xff\xfe")
    document = {"labels": ["a", "b"], "confusion_matrix": [[0, 0], [0, 0]]}
    empty = read_evaluation(json.dumps(document).encode())
    assert empty is not None and empty.accuracy == 0.0 and empty.f1 == 0.0


def test_json_safe_replaces_what_json_cannot_hold():
    assert json_safe({"a": [1.0, float("inf")], "b": {"c": float("-inf")}, 1: "x"}) == {
        "a": [1.0, None],
        "b": {"c": None},
        "1": "x",
    }
