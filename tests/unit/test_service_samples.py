"""The online test's fields and answers (workbench/widgets/service_samples.py): a text
model gets a text box, the answer names the classes of the probabilities."""

from __future__ import annotations

import ipywidgets as w

from workbench.widgets.service_samples import (
    answer_html,
    classes_html,
    probability_rows,
    tensor_fields,
    v2_request,
)

LABELS = ["asyncio", "email", "logging"]


def test_a_text_model_takes_one_text_and_a_list_of_texts_one_per_line():
    (text,) = tensor_fields([{"name": "text", "datatype": "BYTES", "shape": [-1]}])
    assert isinstance(text.input, w.Textarea) and text.kind == "text"
    text.input.value = "Return a logger.\nWith two lines, still one sample."
    assert text.value() == "Return a logger.\nWith two lines, still one sample."
    # the server takes that as one sample: a batch of one text
    request = v2_request([{"name": "text", "datatype": "BYTES"}], {"text": text.value()})
    assert request["inputs"][0]["shape"] == [1]

    (texts,) = tensor_fields([{"name": "tokens", "datatype": "BYTES", "shape": [-1, 3]}])
    assert texts.kind == "lines" and "one text per line" in texts.note.value
    texts.input.value = "a\nb\n\nc"
    assert texts.value() == ["a", "b", "c"]

    (tensor,) = tensor_fields([{"name": "x", "datatype": "FP32", "shape": [-1, 2]}])
    assert tensor.kind == "array" and tensor.value() == [0, 0]


def test_the_answer_names_the_classes_most_likely_first():
    simple = {"label": "logging", "probabilities": [0.1, 0.2, 0.7]}
    assert probability_rows(simple) == [[0.1, 0.2, 0.7]]
    html = answer_html(simple, LABELS)
    assert "wb-service-classes" in html
    assert html.index("logging") < html.index("email") < html.index("asyncio")
    assert "<b>logging</b> 0.70" in html and "&quot;label&quot;: &quot;logging&quot;" in html

    v2 = {
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["email", "asyncio"]},
            {"name": "probabilities", "shape": [2, 3], "data": [0.2, 0.7, 0.1, 0.6, 0.3, 0.1]},
        ]
    }
    assert probability_rows(v2) == [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]
    html = classes_html(probability_rows(v2), LABELS)
    assert "sample 1: <b>email</b> 0.70" in html and "sample 2: <b>asyncio</b> 0.60" in html


def test_no_class_names_where_they_do_not_match_the_probabilities():
    assert classes_html([[0.5, 0.5]], LABELS) == ""  # two probabilities, three classes
    assert classes_html([[0.1, 0.2, 0.7]], []) == ""  # the model has no evaluation
    assert probability_rows({"label": "x"}) == [] and probability_rows([1, 2]) == []
    assert probability_rows({"probabilities": "hostile"}) == []
    assert "wb-service-classes" not in answer_html({"probabilities": ["a", "b", "c"]}, LABELS)
    # a label that is markup is shown as text
    assert "<script>" not in classes_html([[1.0]], ["<script>alert(1)</script>"])
