"""The online test of a service in the Services section: its fields (:class:`SampleField`),
typed as the served model's V2 metadata or the inference image's API spec says, an
example sample of the model's inputs, the V2 request made from a sample, and the answer
as it is shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from workbench.widgets.common import escape

#: the V2 datatypes' JSON example value of one element
EXAMPLE_VALUE = {"BYTES": "text", "BOOL": False}
#: the answer shown, at most (a long output is cut)
ANSWER_CHARS = 4000
#: the classes shown beside a sample's probabilities, most likely first, and the samples
TOP_CLASSES = 3
CLASSES_SAMPLES = 5


def example_sample(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """One sample for the simple route, from the model's V2 inputs: zeros of each input's
    shape without its batch axis (a dynamic axis: 1), a string for BYTES."""
    sample: dict[str, Any] = {}
    for spec in inputs:
        value: Any = EXAMPLE_VALUE.get(spec["datatype"], 0)
        for size in reversed(spec["shape"][1:]):
            value = [value] * (size if size > 0 else 1)
        sample[spec["name"]] = value
    return sample


def v2_request(inputs: list[dict[str, Any]], sample: dict[str, Any]) -> dict[str, Any]:
    """The V2 inference request (JSON tensors, a batch of one) for a simple-route sample."""
    tensors = []
    for spec in inputs:
        value = sample[spec["name"]]
        shape, flat = [1], [value]
        while flat and isinstance(flat[0], list):
            shape.append(len(flat[0]))
            flat = [x for row in flat for x in row]
        tensors.append(
            {"name": spec["name"], "shape": shape, "datatype": spec["datatype"], "data": flat}
        )
    return {"inputs": tensors}


class SampleField(w.VBox):
    """One input of the online test, typed as the model or API takes it: a ``string`` on
    one line, a ``text`` (one sample of a text model) in a box, ``lines`` (a sample that
    is a list of texts) one per line, numbers as numbers, a check box for a boolean, JSON
    only for arrays and objects (a tensor)."""

    def __init__(self, name: str, kind: str, example: Any, note: str) -> None:
        self.name, self.kind = name, kind
        self.input: w.ValueWidget
        if kind == "string":
            self.input = w.Text(value="" if example is None else str(example))
        elif kind == "text":
            self.input = w.Textarea(value="" if example is None else str(example), rows=3)
        elif kind == "lines":
            lines = example if isinstance(example, list) else [example]
            self.input = w.Textarea(value="\n".join(str(x) for x in lines))
            note += " · one text per line"
        elif kind == "integer":
            self.input = w.IntText(value=example if isinstance(example, int) else 0)
        elif kind == "number":
            self.input = w.FloatText(value=example if isinstance(example, int | float) else 0)
        elif kind == "boolean":
            self.input = w.Checkbox(value=bool(example), indent=False)
        else:  # array, object: JSON
            text = json.dumps(example)
            height = "64px" if len(text) > 60 else "32px"
            self.input = w.Textarea(value=text, layout=w.Layout(height=height))
            note += " · JSON"
        self.input.description = name
        self.input.layout.width = "95%"
        self.input.add_class("wb-service-input")
        self.note = w.HTML(f"<small>{escape(note)}</small>")
        super().__init__([self.note, self.input])

    def value(self) -> Any:
        """What the field holds, as the service takes it; ValueError saying what to fix."""
        if self.kind == "lines":
            return [line for line in self.input.value.splitlines() if line.strip()]
        if self.kind in ("array", "object"):
            try:
                return json.loads(self.input.value)
            except ValueError as exc:
                raise ValueError(
                    f"{self.name} takes JSON ({self.kind}), e.g. [0.5, 1.0]: "
                    f"{exc.args[0].split(':')[0]}"
                ) from exc
        return self.input.value


def api_fields(params: list[dict[str, Any]]) -> list[SampleField]:
    """A field per parameter of an inference image's API spec, filled with its example."""
    return [
        SampleField(
            p["name"],
            p["type"],
            p.get("example"),
            f"{p['type']}{'' if p['required'] else ', optional'}"
            + (f": {p['description']}" if p.get("description") else ""),
        )
        for p in params
    ]


def tensor_fields(inputs: list[dict[str, Any]]) -> list[SampleField]:
    """A field per input of the served model's V2 metadata, filled with a sample of its
    shape: a text for a text model's (BYTES of shape [N]), a text per line for a list of
    texts, else JSON."""
    fields = []
    for tensor in inputs:
        shape = ", ".join("N" if d < 0 else str(d) for d in tensor["shape"])
        one = example_sample([tensor])[tensor["name"]]
        kind = "array"
        if tensor["datatype"] == "BYTES":
            kind = "text" if len(tensor["shape"]) == 1 else "lines"
        note = f"{tensor['datatype']} [{shape}]"
        fields.append(SampleField(tensor["name"], kind, one, note))
    return fields


def answer_html(answer: Any, labels: Sequence[str] = ()) -> str:
    """The service's answer as JSON, cut after :data:`ANSWER_CHARS` characters, under the
    most likely classes of each sample when ``labels`` (the model's classes, in the order
    of its probabilities) name them."""
    text = json.dumps(answer)
    if len(text) > ANSWER_CHARS:
        text = text[:ANSWER_CHARS] + "\n…"
    return classes_html(probability_rows(answer), labels) + (
        "<pre style='font-size:11px;line-height:1.3;white-space:pre-wrap;max-height:240px;"
        f"overflow:auto;margin:2px 0'>{escape(text)}</pre>"
    )


def probability_rows(answer: Any) -> list[list[float]]:
    """The ``probabilities`` of each sample of an answer of the simple route (one sample)
    or of the V2 route (a batch); [] where there are none."""
    if not isinstance(answer, dict):
        return []
    if "outputs" in answer:  # V2: flat data and its shape
        found = [o for o in answer["outputs"] if o.get("name") == "probabilities"]
        if not found or len(found[0].get("shape", [])) != 2:
            return []
        data, width = found[0].get("data", []), found[0]["shape"][1]
        return [data[i : i + width] for i in range(0, len(data), width)] if width else []
    value = answer.get("probabilities")
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        return value
    return [value] if isinstance(value, list) else []


def classes_html(rows: list[list[float]], labels: Sequence[str]) -> str:
    """A line per sample: its :data:`TOP_CLASSES` most likely classes and probabilities;
    "" unless each row has a probability per label."""
    if not rows or not labels or any(len(row) != len(labels) for row in rows):
        return ""
    lines = []
    for i, row in enumerate(rows[:CLASSES_SAMPLES]):
        if not all(isinstance(p, int | float) for p in row):
            return ""
        ranked = sorted(zip(labels, row, strict=True), key=lambda pair: -pair[1])
        cells = " · ".join(
            f"<b>{escape(label)}</b> {p:.2f}" if rank == 0 else f"{escape(label)} {p:.2f}"
            for rank, (label, p) in enumerate(ranked[:TOP_CLASSES])
        )
        lines.append(f"<div>{'sample ' + str(i + 1) + ': ' if len(rows) > 1 else ''}{cells}</div>")
    return f"<div class='wb-service-classes' style='margin:2px 0'>{''.join(lines)}</div>"
