"""Train a naive Bayes text classifier (TF-IDF + multinomial naive Bayes, scikit-learn).

Follows Workbench's training-container contract (docs/contracts.md): reads the dataset's
``train/`` and ``test/`` from ``$DATASET_DIR`` (``single_text`` or ``dir`` format), writes
``model.joblib``, ``model.json``, ``signature.json`` and ``samples.npz`` (held-out test
texts and their labels, on which conversions are checked) into ``$MODEL_DIR``, one metrics
line per step of a learning curve into ``$METRICS_FILE`` and the test split's confusion
matrix into ``$EVALUATION_FILE``.

Parameters (environment variables):

- ``ALPHA`` (float, 0.1): additive smoothing of naive Bayes;
- ``NGRAM_MAX`` (int, 2): word n-grams from 1 to this length;
- ``SUBLINEAR_TF`` (bool, true): scale term counts as ``1 + log(tf)``;
- ``MIN_DF`` (int, 1): drop terms found in fewer training texts than this;
- ``CURVE_STEPS`` (int, 5): points of the learning curve logged as metrics (the model is
  fitted on growing shares of the train split; the last step is the whole split).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline, make_pipeline

from workbench.training.contract import (
    RunPaths,
    env_bool,
    env_float,
    env_int,
)

SINGLE_TEXT_SUFFIXES = (".txt", ".tsv", ".csv")
#: held-out texts written beside the model at most
HELD_OUT = 512


def visible(path: Path) -> bool:
    return not path.name.startswith(".")


def read_single_text(folder: Path) -> tuple[list[str], list[str]]:
    """Texts and labels of a ``single_text`` split: one ``<label>\\t<text>`` line each."""
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and visible(p) and p.suffix.lower() in SINGLE_TEXT_SUFFIXES
    )
    if len(files) != 1:
        raise SystemExit(f"{folder} must hold exactly one .txt/.tsv/.csv file, found {len(files)}")
    texts: list[str] = []
    labels: list[str] = []
    for line in files[0].read_text(encoding="utf-8-sig").split("\n"):
        label, tab, text = line.rstrip("\r").partition("\t")
        if tab and label.strip() and text.strip():
            labels.append(label.strip())
            texts.append(text)
    return texts, labels


def read_dir(folder: Path) -> tuple[list[str], list[str]]:
    """Texts and labels of a ``dir`` split: one folder per class, one ``.txt`` per sample."""
    texts: list[str] = []
    labels: list[str] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and visible(p)):
        for path in sorted(p for p in class_dir.iterdir() if p.is_file() and visible(p)):
            if path.suffix.lower() == ".txt":
                texts.append(path.read_text(encoding="utf-8-sig"))
                labels.append(class_dir.name)
    return texts, labels


def read_split(folder: Path, dataset_format: str) -> tuple[list[str], list[str]]:
    if dataset_format == "dir":
        texts, labels = read_dir(folder)
    elif dataset_format == "single_text":
        texts, labels = read_single_text(folder)
    else:
        raise SystemExit(
            f"DATASET_FORMAT {dataset_format!r} is not supported: use single_text or dir"
        )
    if not texts:
        raise SystemExit(f"no samples in {folder}")
    return texts, labels


def make_model(alpha: float, ngram_max: int, sublinear_tf: bool, min_df: int) -> Pipeline:
    vectorizer = TfidfVectorizer(
        ngram_range=(1, ngram_max), sublinear_tf=sublinear_tf, min_df=min_df
    )
    return make_pipeline(vectorizer, MultinomialNB(alpha=alpha))


def main() -> int:
    paths = RunPaths.from_env()
    data, model_dir = paths.dataset, paths.model
    dataset_format = os.environ.get("DATASET_FORMAT") or "single_text"
    alpha = env_float("ALPHA", 0.1)
    ngram_max = env_int("NGRAM_MAX", 2)
    sublinear_tf = env_bool("SUBLINEAR_TF", True)
    min_df = env_int("MIN_DF", 1)
    steps = max(1, env_int("CURVE_STEPS", 5))
    base = paths.base_model
    if base is not None and base.is_dir() and any(base.iterdir()):
        print("BASE_MODEL_DIR is ignored: naive Bayes is always fitted from scratch", flush=True)

    x_train, y_train = read_split(data / "train", dataset_format)
    x_test, y_test = read_split(data / "test", dataset_format)
    labels = sorted(set(y_train) | set(y_test))
    print(
        f"{len(x_train)} train and {len(x_test)} test texts, {len(labels)} classes "
        f"({dataset_format}); alpha={alpha} ngram_max={ngram_max} sublinear_tf={sublinear_tf} "
        f"min_df={min_df}",
        flush=True,
    )

    order = list(range(len(x_train)))
    random.Random(0).shuffle(order)
    for step in range(1, steps + 1):
        count = max(1, round(len(order) * step / steps))
        part = order[:count]
        model = make_model(alpha, ngram_max, sublinear_tf, min_df)
        model.fit([x_train[i] for i in part], [y_train[i] for i in part])
        paths.append_metrics(
            {
                "step": step,
                "train_samples": count,
                "train_accuracy": round(float(accuracy_score(y_train, model.predict(x_train))), 4),
                "test_accuracy": round(float(accuracy_score(y_test, model.predict(x_test))), 4),
            },
        )

    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    signature = {  # a batch of texts in; labels and class probabilities out
        "inputs": [{"name": "text", "dtype": "string", "shape": [-1], "examples": x_test[:20]}],
        "outputs": [
            {"name": "label", "dtype": "string", "shape": [-1]},
            {"name": "probabilities", "dtype": "float32", "shape": [-1, len(model.classes_)]},
        ],
    }
    (model_dir / "signature.json").write_text(json.dumps(signature) + "\n")
    np.savez(
        model_dir / "samples.npz",
        text=np.array(x_test[:HELD_OUT], dtype=str),
        labels=np.array(y_test[:HELD_OUT], dtype=str),
    )
    (model_dir / "model.json").write_text(
        json.dumps(
            {
                "algorithm": "text-bayes",
                "labels": [str(c) for c in model.classes_],
                "parameters": {
                    "ALPHA": alpha,
                    "NGRAM_MAX": ngram_max,
                    "SUBLINEAR_TF": sublinear_tf,
                    "MIN_DF": min_df,
                },
                "train_samples": len(x_train),
            },
            indent=1,
        )
        + "\n"
    )
    matrix = confusion_matrix(y_test, model.predict(x_test), labels=labels)
    paths.write_evaluation(labels, matrix.tolist())
    accuracy = float(matrix.trace() / matrix.sum())
    paths.finish(f"test accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
