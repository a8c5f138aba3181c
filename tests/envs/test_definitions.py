"""The definitions in envs/ and the errors a broken env.toml gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.environments.definition import EnvDefinition, list_definitions, load_definition
from workbench.errors import EnvDefinitionInvalid, EnvNotFound, InvalidInput, NotFound

VALID = """\
name = "{name}"
description = "A test environment."
framework = "python"
framework_version = "3.11"
device = "cpu"

[python]
packages = ["jupyterlab==4.6.6", "numpy==2.4.6"]
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name / "env.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_the_four_presets_parse(envs_root: Path) -> None:
    definitions = {d.name: d for d in list_definitions(envs_root)}

    assert sorted(definitions) == ["onnx", "python", "pytorch", "tensorflow"]
    assert {d.device for d in definitions.values()} == {"cpu"}
    assert definitions["pytorch"].framework_version == "2.13.0"
    assert [str(r) for r in definitions["pytorch"].python.local_requirements()] == ["torch==2.13.0"]
    for definition in definitions.values():
        names = {r.name for r in definition.python.requirements()}
        assert {"jupyterlab", "numpy", "pandas", "scikit-learn"} <= names
        assert "jupyterlab==4.6.6" in definition.python.packages
    assert "tensorflow-cpu==2.21.0" in definitions["tensorflow"].python.packages
    assert {"onnx", "onnxruntime", "skl2onnx"} <= {
        r.name for r in definitions["onnx"].python.requirements()
    }


def test_load_definition_by_name(envs_root: Path) -> None:
    assert load_definition(envs_root, "python").framework == "python"


@pytest.mark.parametrize("name", ["nope", "../envs", ".hidden"])
def test_an_unknown_name_lists_the_known_ones(envs_root: Path, name: str) -> None:
    with pytest.raises(EnvNotFound) as caught:
        load_definition(envs_root, name)

    assert isinstance(caught.value, NotFound)
    assert "choose one of: onnx, python, pytorch, tensorflow" in caught.value.message
    assert caught.value.code == "env_not_found"


def test_the_digest_follows_the_content(tmp_path: Path) -> None:
    first = EnvDefinition.from_toml(write(tmp_path / "a", "x", VALID.format(name="x")))
    same = EnvDefinition.from_toml(write(tmp_path / "b", "x", VALID.format(name="x")))
    other = EnvDefinition.from_toml(
        write(tmp_path / "c", "x", VALID.format(name="x").replace("2.4.6", "2.4.5"))
    )

    assert first.digest() == same.digest() != other.digest()


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", 'name = "broken"\ndescription = \n')

    with pytest.raises(EnvDefinitionInvalid) as caught:
        EnvDefinition.from_toml(path)

    assert isinstance(caught.value, InvalidInput)
    assert str(path) in caught.value.message
    assert "not valid TOML" in caught.value.message
    assert "line 2" in caught.value.message


def test_missing_fields_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, "thin", 'name = "thin"\n[python]\npackages = ["jupyterlab==4.6.6"]\n')

    with pytest.raises(EnvDefinitionInvalid) as caught:
        EnvDefinition.from_toml(path)

    for field in ("description", "framework", "framework_version", "device"):
        assert f"{field} is missing" in caught.value.message
    assert caught.value.details["path"] == str(path)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('"numpy==2.4.6"', '"numpy>=2"'), "'numpy>=2' must be pinned exactly"),
        (('"numpy==2.4.6"', '"numpy"'), "'numpy' must be pinned exactly"),
        (('"numpy==2.4.6"', '"numpy==2.*"'), "must pin one version, not a wildcard"),
        (('"numpy==2.4.6"', '"numpy==2.4.6", "NumPy==2.4.6"'), "'NumPy' is listed twice"),
        (('"numpy==2.4.6"', '"numpy 2.4.6"'), "'numpy 2.4.6' is not a requirement"),
        (('"jupyterlab==4.6.6", ', ""), "every environment must pin jupyterlab"),
        (('device = "cpu"', 'device = "tpu"'), "device Input should be 'cpu' or 'gpu'"),
        (('device = "cpu"', 'device = "cpu"\ncolour = "red"'), "colour is not a known field"),
        (('name = "x"', 'name = "X Y"'), "name String should match pattern"),
        (("[python]", '[python]\nlocal_wheels = ["torch"]'), "local_wheels ['torch'] must"),
    ],
)
def test_schema_problems_are_explained(tmp_path: Path, change: tuple[str, str], problem: str):
    text = VALID.format(name="x").replace(*change)

    with pytest.raises(EnvDefinitionInvalid) as caught:
        EnvDefinition.from_toml(write(tmp_path, "x", text))

    assert problem in caught.value.message


def test_the_name_must_be_the_folders(tmp_path: Path) -> None:
    with pytest.raises(EnvDefinitionInvalid, match="differs from its folder 'y'"):
        EnvDefinition.from_toml(write(tmp_path, "y", VALID.format(name="x")))


def test_list_definitions_fails_loudly_on_a_broken_one(tmp_path: Path) -> None:
    write(tmp_path, "good", VALID.format(name="good"))
    write(tmp_path, "bad", "name = ")

    with pytest.raises(EnvDefinitionInvalid, match="bad"):
        list_definitions(tmp_path)
