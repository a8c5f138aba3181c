"""The one rule for a version's default serving format (issue 17, point 9)."""

from __future__ import annotations

from workbench.models.formats import choose_default

HELD_OUT = {
    "inputs": "held-out",
    "samples": 100,
    "range_tol": 0.05,
    "evaluation": {"metric": "accuracy", "native": 0.9, "format": 0.9, "change": 0.0},
}


def test_the_fastest_exact_format_wins_over_int8_within_noise():
    p50 = {"native": 0.3, "onnx-optimized": 0.100, "onnx-int8": 0.093}
    choice = choose_default(p50, {"onnx-int8": HELD_OUT})
    assert choice is not None and choice.format == "onnx-optimized"
    assert "within the benchmark's 10% noise" in choice.reason


def test_int8_wins_only_beyond_noise_and_with_no_held_out_loss():
    p50 = {"native": 0.3, "onnx-optimized": 0.100, "onnx-int8": 0.05}
    choice = choose_default(p50, {"onnx-int8": HELD_OUT})
    assert choice is not None and choice.format == "onnx-int8"
    assert choice.reason.startswith("onnx-int8: 50% faster than onnx-optimized")

    random_inputs = {**HELD_OUT, "inputs": "random"}
    choice = choose_default(p50, {"onnx-int8": random_inputs})
    assert choice is not None and choice.format == "onnx-optimized"
    assert "not checked on held-out samples" in choice.reason

    lost = {**HELD_OUT, "evaluation": {"native": 0.9, "format": 0.88, "change": -0.02}}
    choice = choose_default(p50, {"onnx-int8": lost})
    assert choice is not None and choice.format == "onnx-optimized"
    assert "lost accuracy on held-out samples (0.9000 -> 0.8800)" in choice.reason


def test_native_is_a_format_like_the_others_and_nothing_measured_is_no_choice():
    choice = choose_default({"native": 0.05, "onnx": 0.2}, {})
    assert choice is not None and choice.format == "native"
    assert choose_default({}, {}) is None
    only_int8 = choose_default({"onnx-int8": 0.1}, {"onnx-int8": HELD_OUT})
    assert only_int8 is not None and only_int8.format == "onnx-int8"
