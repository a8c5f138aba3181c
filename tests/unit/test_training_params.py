"""An algorithm's typed parameters (workbench/algorithms/params.py): what a task may give,
how a run receives it, and the names the platform keeps for itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workbench.algorithms.params import (
    RESERVED,
    ApiSpec,
    ImageSettings,
    ParamSpec,
    env_form,
    parse_value,
    resolve_parameters,
)
from workbench.errors import InvalidInput

SPECS = {
    "EPOCHS": ParamSpec(type="int", default=10, description="passes over the train split"),
    "LR": ParamSpec(type="float", default=0.01),
    "AUGMENT": ParamSpec(type="bool", default=False),
    "OPTIMIZER": ParamSpec(type="str", default="adam"),
    "SEED": ParamSpec(type="int"),  # no default: set only when a task gives it
}


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("int", "3", 3),
        ("int", " -4 ", -4),
        ("int", 5, 5),
        ("int", 6.0, 6),
        ("float", "0.5", 0.5),
        ("float", 2, 2.0),
        ("float", "1e-3", 0.001),
        ("bool", True, True),
        ("bool", "yes", True),
        ("bool", "Off", False),
        ("bool", 0, False),
        ("str", "sgd", "sgd"),
        ("str", 7, "7"),
    ],
)
def test_values_are_parsed_as_their_type(kind, value, expected):
    parsed = parse_value(kind, value)
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int", "3.5", "not a whole number"),
        ("int", 3.5, "not a whole number"),
        ("int", True, "is a bool, not an int"),
        ("float", "fast", "not a number"),
        ("float", False, "is a bool, not a float"),
        ("bool", "maybe", "not a bool"),
        ("str", [1], "not text"),
    ],
)
def test_values_of_another_type_are_refused(kind, value, message):
    with pytest.raises(ValueError, match=message):
        parse_value(kind, value)


def test_the_environment_form():
    assert [env_form(v) for v in (True, False, 3, 0.25, "x")] == ["true", "false", "3", "0.25", "x"]


def test_a_run_gets_every_declared_parameter_that_has_a_value():
    assert resolve_parameters(SPECS, {}) == {
        "EPOCHS": "10",
        "LR": "0.01",
        "AUGMENT": "false",
        "OPTIMIZER": "adam",
    }
    assert resolve_parameters(SPECS, {"EPOCHS": "3", "AUGMENT": "1", "SEED": 42, "LR": ""}) == {
        "EPOCHS": "3",
        "LR": "0.01",  # "" keeps the default
        "AUGMENT": "true",
        "OPTIMIZER": "adam",
        "SEED": "42",
    }


def test_unknown_names_and_wrong_types_are_refused_naming_the_parameter():
    with pytest.raises(InvalidInput, match="Unknown parameter 'EPOCH'") as err:
        resolve_parameters(SPECS, {"EPOCH": 3})
    assert err.value.details == {"field": "EPOCH", "known": sorted(SPECS)}
    with pytest.raises(InvalidInput, match="Parameter EPOCHS must be an int") as err:
        resolve_parameters(SPECS, {"EPOCHS": "ten"})
    assert err.value.details == {"field": "EPOCHS", "expected": "int"}
    with pytest.raises(InvalidInput, match="takes no parameters"):
        resolve_parameters({}, {"X": 1})


def test_a_default_must_have_the_declared_type():
    assert ParamSpec(type="float", default="0.5").default == 0.5
    assert ParamSpec(type="bool", default="true").default is True
    with pytest.raises(ValidationError, match="not a whole number"):
        ParamSpec(type="int", default="lots")
    with pytest.raises(ValidationError):
        ParamSpec(type="int", unknown=1)


def test_image_settings_keep_the_platforms_names():
    assert "MODEL_DIR" in RESERVED and "DATASET_DIR" in RESERVED
    with pytest.raises(ValidationError, match="MODEL_DIR is set by the platform"):
        ImageSettings(env={"MODEL_DIR": ParamSpec()})
    with pytest.raises(ValidationError, match="DATASET_DIR, PORT are set by the platform"):
        ImageSettings(env={"PORT": ParamSpec(), "DATASET_DIR": ParamSpec()})
    with pytest.raises(ValidationError):
        ImageSettings(env={"1BAD": ParamSpec()})
    settings = ImageSettings(env={"EPOCHS": {"type": "int", "default": 3}}, device="gpu")
    assert (
        settings.env["EPOCHS"].default == 3 and settings.command == [] and settings.api_spec is None
    )


def test_the_api_spec_defaults_to_post_predict():
    spec = ApiSpec.model_validate(
        {"params": [{"name": "text", "type": "string", "example": "a goal"}]}
    )
    assert (spec.route, spec.method, spec.params[0].required) == ("/predict", "POST", True)
    with pytest.raises(ValidationError):
        ApiSpec(route="predict")
    with pytest.raises(ValidationError):
        ApiSpec.model_validate({"params": [{"name": "x", "type": "tensor"}]})
