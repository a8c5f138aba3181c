"""Real model versions to convert and benchmark in the tests that look at them (panel,
browser): small scikit-learn classifiers fitted here, registered as versions of one
model whose environment is the python environment's image."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from tests.conftest import add_environment
from workbench.config import Settings
from workbench.models.schemas import NewVersion
from workbench.registry.models import User
from workbench.services import Workbench

SIGNATURE = {
    "inputs": [{"name": "features", "dtype": "float32", "shape": [-1, 4]}],
    "outputs": [
        {"name": "label", "dtype": "int64", "shape": [-1]},
        {"name": "probabilities", "dtype": "float32", "shape": [-1, 3]},
    ],
}


def register_classifiers(
    home: Path, image: str, folder: Path, *, owner: str = "alice", name: str = "flowers"
) -> tuple[int, list[int]]:
    """A public model of ``owner`` with two versions (C=0.1 and C=10, evaluated): (model
    id, version ids)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    wb = Workbench.from_settings(Settings(home=home))
    try:
        with wb.registry.session() as s:
            owner_id = s.scalar(sa.select(User.id).where(User.username == owner))
            assert owner_id is not None
        env = add_environment(
            wb,
            name=f"python-models-{name}",
            framework="python",
            image_ref=image,
            owner_id=owner_id,
            visibility="public",
        )
        with wb.registry.session() as s:
            model = wb.model_versions.model_for(
                s, name=name, owner_id=owner_id, visibility="public", purpose="tabular"
            ).id
        versions = []
        for c in (0.1, 10.0):
            fitted = LogisticRegression(C=c, max_iter=500).fit(x, y)
            source = folder / f"{name}-c{c}"
            source.mkdir(parents=True)
            joblib.dump(fitted, source / "model.joblib")
            (source / "signature.json").write_text(json.dumps(SIGNATURE))
            accuracy = float((fitted.predict(x) == y).mean())
            lineage = NewVersion(
                environment_id=env,
                parameters={"C": c, "MAX_ITER": 500},
                evaluation={"accuracy": accuracy, "metrics": {"train_samples": 150}},
            )
            versions.append(
                wb.model_versions.register_version(model, source, lineage, staging=source.name).id
            )
        return model, versions
    finally:
        wb.close()
