"""The real example datasets go through the whole pipeline (unpack, validate, statistics)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import make_workbench
from workbench.enums import PublishState, Split, Visibility

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "datasets"


@pytest.fixture(scope="module")
def loader():
    sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location("load_examples", EXAMPLES / "load_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(EXAMPLES))


@pytest.mark.slow
def test_examples_register_online_with_their_statistics(loader, tmp_path, monkeypatch):
    home = tmp_path / "home"
    make_workbench(home).close()
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    assert loader.main(["--owner", "demo"]) == 0
    assert loader.main(["--owner", "demo"]) == 0  # idempotent

    wb = make_workbench(home)
    owner = wb.users.find("demo")
    found = {d.name: d for d in wb.datasets.list(owner)}
    assert sorted(found) == ["digits", "shapes", "texts"]
    digits = found["digits"]
    assert digits.state is PublishState.ONLINE and digits.visibility is Visibility.PUBLIC
    train, test = digits.splits[Split.TRAIN].statistics, digits.splits[Split.TEST].statistics
    assert train.samples + test.samples == 1797
    assert train.classes == [str(d) for d in range(10)]
    assert train.image_sizes == {"32x32": train.samples}
    texts = found["texts"].splits[Split.TRAIN].statistics
    assert len(texts.classes) == 7 and texts.text_lengths.min >= 40
    wb.close()
