"""The form of the Algorithms section that creates an algorithm or edits one (manual 2.2.1,
2.2.2): its name and purpose, and how each of its two images runs (command, arguments,
device, typed parameters; the inference image's API and its inputs)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import ipywidgets as w

from workbench.algorithms.params import ApiSpec, ImageSettings, ParamSpec
from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client import WorkbenchClient
from workbench.enums import ImageKind, Purpose, Visibility
from workbench.widgets.common import FAILED, Status, attempt, offer_sub_purposes, plain, wrap

PARAM_TYPES = ["int", "float", "str", "bool"]
API_TYPES = ["string", "integer", "number", "boolean", "array", "object"]


#: a row of :class:`EditableRows`: its fields
RowT = TypeVar("RowT", bound=tuple[w.ValueWidget, ...])


class EditableRows(w.VBox, Generic[RowT]):
    """Rows of fields, each with a button that removes it, under them a button that adds
    an empty one. A subclass makes a row in :meth:`add` (which takes its values) and reads
    the rows in its ``value``."""

    def __init__(self, add_label: str) -> None:
        self.rows: list[RowT] = []
        self.add_button = w.Button(description=add_label, icon="plus")
        self.add_button.on_click(lambda _: self.add())
        super().__init__([self.add_button])

    def add(self) -> None:
        """Add a row (empty, or with the values a subclass takes) and show it."""
        raise NotImplementedError

    def remove(self, index: int) -> None:
        del self.rows[index]
        self._render()

    def _render(self) -> None:
        lines: list[w.Widget] = []
        for index, row in enumerate(self.rows):
            remove = w.Button(icon="times", tooltip="remove", layout=w.Layout(width="32px"))
            remove.on_click(lambda _, i=index: self.remove(i))
            lines.append(w.HBox([*row, remove], layout=wrap()))
        self.children = [*lines, self.add_button]


class ParamRows(EditableRows[tuple[w.Text, w.Dropdown, w.Text, w.Text]]):
    """Editable rows of an image's parameters: name, type, default, description."""

    def __init__(self) -> None:
        super().__init__("Add parameter")

    def add(self, name: str = "", spec: ParamSpec | None = None) -> None:
        spec = spec or ParamSpec()
        row = (
            w.Text(value=name, placeholder="NAME", layout=w.Layout(width="120px")),
            w.Dropdown(options=PARAM_TYPES, value=spec.type, layout=w.Layout(width="70px")),
            w.Text(
                value="" if spec.default is None else plain(spec.default),
                placeholder="default",
                layout=w.Layout(width="90px"),
            ),
            w.Text(
                value=spec.description, placeholder="description", layout=w.Layout(width="150px")
            ),
        )
        self.rows.append(row)
        self._render()

    def set(self, env: dict[str, ParamSpec]) -> None:
        self.rows = []
        for name, spec in env.items():
            self.add(name, spec)
        self._render()

    def value(self) -> dict[str, dict[str, Any]]:
        """The rows as the JSON of ``ImageSettings.env`` (the server checks the types)."""
        return {
            name.value.strip(): {
                "type": kind.value,
                "default": default.value.strip() or None,
                "description": description.value.strip(),
            }
            for name, kind, default, description in self.rows
            if name.value.strip()
        }


class ApiParamRows(EditableRows[tuple[w.Text, w.Dropdown, w.Checkbox, w.Text, w.Text]]):
    """Editable rows of the inference API's inputs: name, type, required, example, note."""

    def __init__(self) -> None:
        super().__init__("Add API input")

    def add(
        self,
        name: str = "",
        kind: str = "string",
        required: bool = True,
        example: Any = None,
        description: str = "",
    ) -> None:
        row = (
            w.Text(value=name, placeholder="name", layout=w.Layout(width="100px")),
            w.Dropdown(options=API_TYPES, value=kind, layout=w.Layout(width="85px")),
            w.Checkbox(value=required, description="required", indent=False),
            w.Text(
                value="" if example is None else plain(example),
                placeholder="example",
                layout=w.Layout(width="100px"),
            ),
            w.Text(value=description, placeholder="description", layout=w.Layout(width="130px")),
        )
        row[2].layout.width = "80px"
        self.rows.append(row)
        self._render()

    def set(self, spec: ApiSpec | None) -> None:
        self.rows = []
        for p in spec.params if spec else []:
            self.add(p.name, p.type, p.required, p.example, p.description)
        self._render()

    def value(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name.value.strip(),
                "type": kind.value,
                "required": required.value,
                "example": _example(example.value),
                "description": description.value.strip(),
            }
            for name, kind, required, example, description in self.rows
            if name.value.strip()
        ]


class ImageSettingsForm(w.VBox):
    """How one image runs: command, arguments, device, parameters (and the API spec)."""

    def __init__(self, kind: ImageKind) -> None:
        self.kind = kind
        self.command = w.Text(
            description="Command",
            placeholder="empty: the image's ENTRYPOINT",
            layout=w.Layout(width="420px"),
        )
        self.args = w.Text(
            description="Arguments",
            placeholder="empty: the image's CMD",
            layout=w.Layout(width="420px"),
        )
        self.device = w.ToggleButtons(options=["cpu", "gpu"], value="cpu", description="Device")
        self.params = ParamRows()
        self.route = w.Text(value="/predict", description="Route", layout=w.Layout(width="260px"))
        self.method = w.Dropdown(
            options=["POST", "GET"],
            value="POST",
            description="Method",
            layout=w.Layout(width="180px"),
        )
        self.api_params = ApiParamRows()
        children: list[w.Widget] = [
            self.command,
            self.args,
            self.device,
            w.HTML("Parameters (environment variables, with their type and default)"),
            self.params,
        ]
        if kind == ImageKind.PREDICT:
            children += [
                w.HTML("API (manual 2.2.1: the route and its inputs)"),
                w.HBox([self.method, self.route], layout=wrap()),
                self.api_params,
            ]
        super().__init__(children)

    def load(self, settings: ImageSettings) -> None:
        self.command.value = shlex.join(settings.command)
        self.args.value = shlex.join(settings.args)
        self.device.value = settings.device
        self.params.set(dict(settings.env))
        if self.kind == ImageKind.PREDICT:
            spec = settings.api_spec or ApiSpec()
            self.route.value, self.method.value = spec.route, spec.method
            self.api_params.set(spec)

    def clear(self) -> None:
        self.load(ImageSettings(api_spec=ApiSpec() if self.kind == ImageKind.PREDICT else None))

    def value(self) -> dict[str, Any]:
        """The JSON of :class:`ImageSettings`; ValueError for unbalanced quotes."""
        body: dict[str, Any] = {
            "command": shlex.split(self.command.value),
            "args": shlex.split(self.args.value),
            "env": self.params.value(),
            "device": self.device.value,
        }
        if self.kind == ImageKind.PREDICT:
            body["api_spec"] = {
                "route": self.route.value.strip(),
                "method": self.method.value,
                "params": self.api_params.value(),
            }
        return body


class AlgorithmForm(w.VBox):
    """The "new algorithm" form, also used to edit one (manual 2.2.1 and 2.2.2)."""

    def __init__(
        self,
        client: WorkbenchClient,
        on_saved: Callable[[AlgorithmInfo, bool], None],
        visibilities: list[Visibility],
    ) -> None:
        self.client = client
        self.on_saved = on_saved
        self.editing: int | None = None
        self.name = w.Text(description="Name")
        self.description = w.Textarea(description="Description", rows=2)
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.visibility = w.Dropdown(options=visibilities, description="Visibility")
        self.train = ImageSettingsForm(ImageKind.TRAIN)
        self.predict = ImageSettingsForm(ImageKind.PREDICT)
        self.image_tabs = w.Tab(
            children=[self.train, self.predict], titles=("Training image", "Inference image")
        )
        self.save_button = w.Button(description="Create", button_style="primary", icon="save")
        self.new_button = w.Button(description="New instead", layout=w.Layout(display="none"))
        self.message = Status()
        self.name.add_class("wb-algo-name")
        self.save_button.add_class("wb-algo-save")
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        self.save_button.on_click(lambda _: self.save())
        self.new_button.on_click(lambda _: self.reset())
        self._purpose_changed()
        self.predict.clear()
        super().__init__(
            [
                self.name,
                self.description,
                self.purpose,
                self.sub_purpose,
                self.visibility,
                self.image_tabs,
                w.HBox([self.save_button, self.new_button], layout=wrap()),
                self.message,
            ]
        )

    def _purpose_changed(self) -> None:
        offer_sub_purposes(self.purpose, self.sub_purpose)

    def load(self, algo: AlgorithmInfo) -> None:
        """Edit ``algo``: its values in the fields, Save sends the changes."""
        self.editing = algo.id
        self.name.value = algo.name
        self.description.value = algo.description
        self.purpose.value = algo.purpose
        self._purpose_changed()
        self.sub_purpose.value = algo.sub_purpose
        if algo.visibility in self.visibility.options:
            self.visibility.value = algo.visibility
        self.train.load(algo.train.settings)
        self.predict.load(algo.predict.settings)
        self.save_button.description = "Save"
        self.new_button.layout.display = ""
        self.message.value = ""

    def reset(self) -> None:
        self.editing = None
        self.name.value = self.description.value = ""
        self.train.clear()
        self.predict.clear()
        self.save_button.description = "Create"
        self.new_button.layout.display = "none"
        self.message.value = ""

    def save(self) -> None:
        try:
            fields: dict[str, Any] = {
                "name": self.name.value.strip(),
                "description": self.description.value,
                "purpose": self.purpose.value,
                "sub_purpose": self.sub_purpose.value,
                "visibility": self.visibility.value,
                "train": self.train.value(),
                "predict": self.predict.value(),
            }
        except ValueError as exc:
            self.message.problem(f"Command or arguments: {exc} (check the quotes).")
            return
        editing = self.editing
        algo = attempt(
            self.message,
            lambda: (
                self.client.algorithms.create(**fields)
                if editing is None
                else self.client.algorithms.update(editing, **fields)
            ),
        )
        if algo is FAILED:
            return
        created = self.editing is None
        self.message.ok(f"{'created' if created else 'saved'} {algo.name}")
        self.reset()
        self.on_saved(algo, created)


def _example(text: str) -> Any:
    """An API example as typed: JSON when it parses (3, true, ["a"]), else the text."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
