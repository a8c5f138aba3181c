"""Importing a model trained elsewhere over REST, through the Python client, the CLI and
the Models panel, against a real server process and the Docker Engine: a pickled
scikit-learn model becomes a version with the signature its check found and a warning that
pickles run code; a wrong request is refused with what to do, before its body is stored."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from tests.conftest import add_environment
from tests.live.test_cli import run
from tests.live.test_training_widgets import wait_until
from workbench.config import Settings
from workbench.errors import InvalidInput, NotFound
from workbench.registry.models import User
from workbench.services import Workbench
from workbench.widgets import WorkbenchPanel

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def pickled(live, python_env_image, tmp_path_factory) -> Path:
    """A fitted 4-feature classifier as a joblib pickle; a preset python environment with
    an image (what bob's imports are checked in)."""
    wb = Workbench.from_settings(Settings(home=live.server.home))
    try:
        with wb.registry.session() as s:
            alice = s.scalar(sa.select(User.id).where(User.username == "alice"))
        add_environment(
            wb,
            name="python-imports",
            framework="python",
            image_ref=python_env_image,
            owner_id=alice,
            visibility="preset",
            state="ready",
        )
    finally:
        wb.close()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path_factory.mktemp("import") / "churn.joblib"
    joblib.dump(LogisticRegression().fit(x, y), path)
    return path


def test_import_a_pickle_with_the_client_and_the_cli(live, pickled):
    bob = live.client("bob")
    version = bob.models.import_model(
        pickled, "pickle", name="churn", description="from a notebook"
    )
    assert version.version == 1 and version.framework == "sklearn"
    assert version.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]
    assert version.source["import"] == "pickle" and version.source["file"] == "churn.joblib"
    assert any("runs any code" in w for w in version.source["warnings"])
    assert [m.name for m in bob.models.list(mine=True)] == ["churn"]

    out = run(
        live,
        "model",
        "import",
        str(pickled),
        "--kind",
        "pickle",
        "--model",
        str(version.model_id),
        token=live.bob,
    )
    assert "[import] valid: a pickle model taking input float32[-1, 4]" in out
    assert "v2 " in out
    assert [v.version for v in bob.models.get(version.model_id).versions] == [1, 2]


def test_a_wrong_import_request_is_refused_with_what_to_do(live, pickled):
    bob = live.client("bob")
    with pytest.raises(InvalidInput) as kind:
        bob.models.start_import(pickled, "caffe", name="x")
    assert "is not a kind of model Workbench imports" in kind.value.message
    assert "skops" in kind.value.message  # the kinds it does import are named
    with pytest.raises(InvalidInput) as signature:
        bob.upload(
            "/models/import",
            pickled,
            params={"kind": "pickle", "filename": "churn.joblib", "name": "x", "signature": "{"},
        )
    assert "signature is not JSON" in signature.value.message
    with pytest.raises(InvalidInput) as no_name:
        bob.models.start_import(pickled, "pickle")
    assert "Name the model" in no_name.value.message
    with pytest.raises(NotFound):
        bob.models.start_import(pickled, "pickle", model_id=999_999)
    assert "x" not in [m.name for m in bob.models.list(mine=True)]


def test_import_from_the_models_panel(live, pickled):
    panel = WorkbenchPanel(live.client("bob"), poll_interval=0.2)
    section = panel.models
    section.import_path.value = str(pickled)
    section.import_kind.value = "pickle"
    section.import_name.value = "churn-panel"
    section.import_signature.value = "{not json"
    section.import_button.click()
    assert "The signature is not JSON" in section.import_status.value
    section.import_signature.value = ""
    section.import_button.click()
    wait_until(lambda: "imported as" in section.import_status.value, 120, "the import")
    assert "churn-panel v1" in section.import_status.value
    assert "runs any code" in section.import_status.value  # the pickle's warning, shown
    chosen = section.selected
    assert chosen is not None and chosen.name == "churn-panel"  # the new model is shown
    assert "imported pickle file churn.joblib" in section.version_info.value

    section.import_path.value = str(pickled.with_name("missing.onnx"))
    section.import_kind.value = "onnx"
    section.import_button.click()
    assert "There is no file" in section.import_status.value  # a clear error, nothing sent
