"""The wizard of the Training section (manual 2.3.1): a new training task in steps
(purpose, name, an online algorithm, an online dataset, typed parameters, resources); it
also edits a task, and is filled from a model version for a transfer training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench.algorithms.params import ParamSpec, parse_value
from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client import WorkbenchClient
from workbench.datasets.schemas import DatasetInfo
from workbench.enums import Purpose, SplitMode, TaskState
from workbench.errors import WorkbenchError
from workbench.models.schemas import ModelVersionInfo
from workbench.training.schemas import TaskInfo
from workbench.widgets import common

ALGORITHM_SOURCES = [("Mine", "mine"), ("Preset", "preset"), ("Public", "public")]
STEPS = ("Purpose", "Name", "Algorithm", "Dataset", "Parameters", "Resources")


def _step(intro: str, *controls: w.Widget) -> w.VBox:
    """A step of the wizard: a line saying what it offers, above its ``controls``."""
    return w.VBox([w.HTML(intro), *controls])


class TrainingWizard(w.VBox):
    """New training task in steps (manual 2.3.1); also edits a task, and prefills a
    transfer training from a model version."""

    def __init__(
        self,
        client: WorkbenchClient,
        on_saved: Callable[[TaskInfo, str], None],
        is_admin: bool,
    ) -> None:
        self.client = client
        self.on_saved = on_saved
        self.step = 0
        self.editing: int | None = None
        self.base_model_version_id: int | None = None
        self.algorithms: dict[int, AlgorithmInfo] = {}
        self.datasets: dict[int, DatasetInfo] = {}
        self.params: dict[str, tuple[ParamSpec, w.Text, w.HTML]] = {}
        #: what an edited task or a model version asks for, applied as the lists load
        self._wanted: dict[str, Any] = {}
        self.message = common.Status()
        #: one page per step of :data:`STEPS`
        self.pages = [
            self._build_purpose(),
            self._build_name(is_admin),
            self._build_algorithm(),
            self._build_dataset(),
            self._build_parameters(),
            self._build_resources(),
        ]
        self.header = w.HTML()
        self.transfer_note = w.HTML()
        self.page = w.Box()
        buttons = self._build_buttons()
        self._purpose_changed()
        super().__init__([self.header, self.transfer_note, self.page, buttons, self.message])
        self.go(0)

    # --- the pages ------------------------------------------------------------------------

    def _build_purpose(self) -> w.VBox:
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        common.name_for_css("wizard", {"purpose": self.purpose, "sub-purpose": self.sub_purpose})
        return w.VBox([self.purpose, self.sub_purpose])

    def _build_name(self, is_admin: bool) -> w.VBox:
        self.name = w.Text(description="Name")
        self.description = w.Textarea(description="Description", rows=2)
        self.visibility = w.Dropdown(
            options=common.visibility_choices(is_admin), description="Visibility"
        )
        common.name_for_css("wizard", {"name": self.name})
        return w.VBox([self.name, self.description, self.visibility])

    def _build_algorithm(self) -> w.VBox:
        self.algorithm_source = w.ToggleButtons(options=ALGORITHM_SOURCES, value="mine")
        self.algorithm = w.Select(options=[], rows=5, layout=w.Layout(width="100%"))
        self.algorithm_info = w.HTML()
        self.algorithm_source.observe(lambda _: self.load_algorithms(), names="value")
        common.on_pick(self.algorithm, self._algorithm_changed)
        common.name_for_css(
            "wizard", {"algorithm-source": self.algorithm_source, "algorithm": self.algorithm}
        )
        return _step(
            "Online algorithms of this purpose:",
            self.algorithm_source,
            self.algorithm,
            self.algorithm_info,
        )

    def _build_dataset(self) -> w.VBox:
        self.dataset = w.Select(options=[], rows=5, layout=w.Layout(width="100%"))
        self.train_ratio = w.FloatSlider(
            value=0.8, min=0.05, max=0.95, step=0.05, description="Train ratio"
        )
        self.split_note = w.HTML()
        common.on_pick(self.dataset, self._dataset_changed)
        common.name_for_css("wizard", {"dataset": self.dataset})
        return _step(
            "Online datasets of this purpose:", self.dataset, self.train_ratio, self.split_note
        )

    def _build_parameters(self) -> w.VBox:
        """The algorithm's parameters: filled when an algorithm is chosen."""
        self.params_box = w.VBox()
        common.name_for_css("wizard", {"params": self.params_box})
        return _step("The algorithm's training parameters (empty: its default):", self.params_box)

    def _build_resources(self) -> w.VBox:
        self.cpus = w.BoundedFloatText(value=1.0, min=0.1, max=256, step=0.5, description="CPUs")
        self.memory = w.BoundedIntText(
            value=2048, min=64, max=1024 * 1024, step=256, description="Memory MiB"
        )
        self.gpus = w.BoundedIntText(value=0, min=0, max=16, description="GPUs")
        return w.VBox([self.cpus, self.memory, self.gpus])

    def _build_buttons(self) -> w.HBox:
        """Back, Next, Save, and Save and start."""
        self.back_button = w.Button(description="Back", icon="arrow-left")
        self.next_button = w.Button(description="Next", icon="arrow-right", button_style="primary")
        self.save_button = w.Button(description="Save", icon="save")
        self.save_start_button = w.Button(
            description="Save and start", icon="play", button_style="success"
        )
        common.name_for_css(
            "wizard",
            {
                "next": self.next_button,
                "save": self.save_button,
                "save-start": self.save_start_button,
            },
        )
        self.back_button.on_click(lambda _: self.go(self.step - 1))
        self.next_button.on_click(lambda _: self.next())
        self.save_button.on_click(lambda _: self.save(start=False))
        self.save_start_button.on_click(lambda _: self.save(start=True))
        return w.HBox(
            [self.back_button, self.next_button, self.save_button, self.save_start_button],
            layout=common.wrap(),
        )

    # --- steps ----------------------------------------------------------------------------

    def go(self, step: int) -> None:
        self.step = max(0, min(step, len(STEPS) - 1))
        self.page.children = (self.pages[self.step],)
        trail = " &rsaquo; ".join(
            f"<b>{name}</b>" if i == self.step else common.escape(name)
            for i, name in enumerate(STEPS)
        )
        self.header.value = (
            f"<div>Step {self.step + 1} of {len(STEPS)}: <b>{STEPS[self.step]}</b></div>"
            f"<div style='font-size:11px;color:var(--jp-ui-font-color2, #555)'>{trail}</div>"
        )
        last = self.step == len(STEPS) - 1
        self.back_button.disabled = self.step == 0
        self.next_button.layout.display = "none" if last else ""
        self.save_button.layout.display = "" if last else "none"
        self.save_start_button.layout.display = "" if last else "none"

    def next(self) -> None:
        problem = self.check(self.step)
        if problem:
            self.message.problem(problem)
            return
        self.message.value = ""
        if self.step in (0, 1):
            self.load_algorithms()
        elif self.step == 2:
            self.load_datasets()
        self.go(self.step + 1)

    def check(self, step: int) -> str:
        """What keeps the wizard at ``step`` (empty when nothing does)."""
        if step == 1 and not self.name.value.strip():
            return "Give the task a name."
        if step == 2 and self.algorithm.value is None:
            return "Choose an online algorithm (none? put one online in the Algorithms tab)."
        if step == 3 and self.dataset.value is None:
            return "Choose an online dataset (none? publish one in the Datasets tab)."
        if step == 4:
            bad = [name for name in self.params if self.param_problem(name)]
            if bad:
                return f"Fix the parameter{'s' if len(bad) > 1 else ''} {', '.join(bad)}."
        return ""

    def load_choices(self) -> None:
        """Fetch the lists of the steps passed already again (the section's Refresh)."""
        if self.step >= 2:
            self.load_algorithms()
        if self.step >= 3:
            self.load_datasets()

    def _purpose_changed(self) -> None:
        common.offer_sub_purposes(self.purpose, self.sub_purpose)

    def load_algorithms(self) -> None:
        """Online algorithms of the purpose, from the chosen source (mine, preset, public)."""
        found = common.attempt(
            self.message,
            lambda: self.client.algorithms.list(
                visibility=self.algorithm_source.value,
                purpose=self.purpose.value,
                sub_purpose=self.sub_purpose.value,
                state="online",
            ),
        )
        if found is common.FAILED:
            return
        keep = self._wanted.get("algorithm_id", self.algorithm.value)
        self.algorithms = {a.id: a for a in found}
        options = [
            (f"#{a.id} {a.name} · {a.train.settings.device} · {a.owner}", a.id) for a in found
        ]
        common.replace_options(self.algorithm, options, keep)
        if not found:
            self.algorithm_info.value = (
                f"<i>No online {self.algorithm_source.value} algorithm for "
                f"{self.purpose.value}/{self.sub_purpose.value}.</i>"
            )

    def _algorithm_changed(self, _: int | None = None) -> None:
        """The algorithm's parameters as typed fields, prefilled with its defaults (or with
        the values of the task being edited)."""
        algo = self.algorithms.get(self.algorithm.value) if self.algorithm.value else None
        self.params = {}
        if algo is None:
            self.algorithm_info.value = ""
            self.params_box.children = ()
            return
        settings = algo.train.settings
        self.algorithm_info.value = (
            f"<div>{common.escape(algo.description) or '<i>no description</i>'}</div>"
            f"<div>{len(settings.env)} parameters · {settings.device.upper()} · "
            f"owner {common.escape(algo.owner)}</div>"
        )
        if settings.device == "gpu" and self.gpus.value == 0:
            self.gpus.value = 1
        wanted = self._wanted.get("parameters", {})
        rows: list[w.Widget] = []
        for name, spec in settings.env.items():
            value = wanted.get(name, spec.default)
            field = w.Text(
                value="" if value is None else common.plain(value),
                placeholder="(no default)" if spec.default is None else common.plain(spec.default),
                layout=w.Layout(width="110px"),
            )
            field.add_class(f"wb-param-{name}")
            error = w.HTML()
            field.observe(lambda _, n=name: self.param_problem(n), names="value")
            self.params[name] = (spec, field, error)
            label = w.HTML(
                f"<code>{common.escape(name)}</code> <small>{spec.type}</small>",
                layout=w.Layout(width="150px"),
            )
            note = w.HTML(f"<small>{common.escape(spec.description)}</small>")
            rows.append(w.VBox([w.HBox([label, field, note], layout=common.wrap()), error]))
        self.params_box.children = rows or (w.HTML("<i>This algorithm takes no parameters.</i>"),)

    def param_problem(self, name: str) -> str:
        """The value typed for ``name`` checked against its type; the error is shown under
        the field (empty: fine, or empty and so the default)."""
        spec, field, error = self.params[name]
        text = field.value.strip()
        problem = ""
        if text:
            try:
                parse_value(spec.type, text)
            except ValueError as exc:
                article = "an" if spec.type == "int" else "a"
                problem = f"{name} must be {article} {spec.type}: {exc}"
        error.value = (
            f"<span style='color:#b71c1c'>{common.escape(problem)}</span>" if problem else ""
        )
        return problem

    def load_datasets(self) -> None:
        found = common.attempt(
            self.message,
            lambda: self.client.datasets.list(
                state="online", purpose=self.purpose.value, sub_purpose=self.sub_purpose.value
            ),
        )
        if found is common.FAILED:
            return
        keep = self._wanted.get("dataset_id", self.dataset.value)
        self.datasets = {d.id: d for d in found}
        options = [(f"#{d.id} {d.name} · {d.format} · {d.owner}", d.id) for d in found]
        common.replace_options(self.dataset, options, keep)
        self._dataset_changed()

    def _dataset_changed(self, _: int | None = None) -> None:
        """The train ratio for a dataset without a test set; a note for one with it."""
        ds = self.datasets.get(self.dataset.value) if self.dataset.value else None
        if ds is None or ds.split_mode is SplitMode.INDEPENDENT:
            self.train_ratio.layout.display = "none"
            self.split_note.value = (
                "This dataset has its own test set: the evaluation runs on it."
                if ds is not None
                else ""
            )
            return
        self.train_ratio.layout.display = ""
        self.train_ratio.value = self._wanted.get("train_ratio") or ds.train_ratio
        self.split_note.value = (
            "No separate test set: the train archive is split by this ratio, and the "
            "evaluation runs on the rest."
        )

    # --- filled from a task or a model version --------------------------------------------

    def load_task(self, task: TaskInfo) -> None:
        """Edit ``task``: every step holds its values; Save sends the changes."""
        self._fill(
            task.purpose,
            task.sub_purpose,
            {
                "algorithm_id": task.algorithm_id,
                "dataset_id": task.dataset_id,
                "parameters": dict(task.parameters),
                "train_ratio": task.train_ratio,
            },
        )
        self.editing = task.id
        self.name.value = task.name
        self.description.value = task.description
        if task.visibility in self.visibility.options:
            self.visibility.value = task.visibility
        self.cpus.value, self.memory.value, self.gpus.value = task.cpus, task.memory_mb, task.gpus
        self.base_model_version_id = task.base_model_version_id
        self.transfer_note.value = ""
        self.save_button.description = "Save changes"
        self.save_start_button.description = "Save and start"

    def transfer_from(self, version: ModelVersionInfo, model_name: str) -> None:
        """A new task that trains on from ``version``: its algorithm, dataset and parameters
        prefilled, ``base_model_version_id`` set."""
        self.editing = None
        algo: AlgorithmInfo | None = None
        algorithm_id = version.algorithm_id
        if algorithm_id is not None:
            found = common.attempt(self.message, lambda: self.client.algorithms.get(algorithm_id))
            algo = None if found is common.FAILED else found
        self._fill(
            algo.purpose if algo else Purpose(self.purpose.value),
            algo.sub_purpose if algo else self.sub_purpose.value,
            {
                "algorithm_id": version.algorithm_id,
                "dataset_id": version.dataset_id,
                "parameters": dict(version.parameters),
            },
        )
        self.name.value = f"{model_name}-v{version.version}-transfer"
        self.description.value = f"Transfer training from {model_name} version {version.version}"
        self.base_model_version_id = version.id
        self.transfer_note.value = (
            f"<div style='color:#0d47a1'>Transfer training from <b>{common.escape(model_name)}</b> "
            f"v{version.version} (id {version.id}): the run gets its files "
            "in <code>$BASE_MODEL_DIR</code>.</div>"
        )
        self.save_button.description = "Save"

    def _fill(self, purpose: str, sub_purpose: str, wanted: dict[str, Any]) -> None:
        self._wanted = wanted
        self.purpose.value = purpose
        self._purpose_changed()
        self.sub_purpose.value = sub_purpose
        # the algorithm may be anyone's: look in each source until it is found
        for _, source in ALGORITHM_SOURCES:
            if self.algorithm_source.value == source:
                self.load_algorithms()
            else:
                self.algorithm_source.value = source  # loads that source's list
            if self.algorithm.value == wanted.get("algorithm_id"):
                break
        self._algorithm_changed()  # its parameters with the wanted values
        self.load_datasets()
        self._wanted = {}
        self.message.value = ""
        self.go(1)

    def reset(self) -> None:
        self.editing = None
        self.base_model_version_id = None
        self.transfer_note.value = ""
        self.name.value = self.description.value = ""
        self.algorithm.value = None
        self.dataset.value = None
        self.save_button.description = "Save"
        self.go(0)

    # --- saving ---------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The task's fields; call after :meth:`check` passed (the parameters parse)."""
        ds = self.datasets.get(self.dataset.value) if self.dataset.value else None
        by_ratio = ds is not None and ds.split_mode is SplitMode.RATIO
        return {
            "name": self.name.value.strip(),
            "description": self.description.value,
            "visibility": self.visibility.value,
            "purpose": self.purpose.value,
            "sub_purpose": self.sub_purpose.value,
            "algorithm_id": self.algorithm.value,
            "dataset_id": self.dataset.value,
            "train_ratio": round(self.train_ratio.value, 4) if by_ratio else None,
            "parameters": {
                name: parse_value(spec.type, field.value.strip())
                for name, (spec, field, _) in self.params.items()
                if field.value.strip()
            },
            "cpus": self.cpus.value,
            "memory_mb": self.memory.value,
            "gpus": self.gpus.value,
            "base_model_version_id": self.base_model_version_id,
        }

    def save(self, start: bool) -> None:
        for step in range(len(STEPS)):
            problem = self.check(step)
            if problem:
                self.go(step)
                self.message.problem(problem)
                return
        fields = self.fields()
        try:
            if self.editing is None:
                task = self.client.training.create(**fields, start=start)
                done = "started" if start else "saved as a draft"
            else:
                task = self.client.training.update(self.editing, **fields)
                if start:
                    start_or_retry = (
                        self.client.training.start
                        if task.state == TaskState.DRAFT
                        else self.client.training.retry
                    )
                    task = start_or_retry(task.id)
                done = "saved and started" if start else "saved"
        except WorkbenchError as exc:
            self.message.error(exc)
            return
        self.message.ok(f"{task.name} {done}")
        self.reset()
        self.on_saved(task, f"{task.name} (#{task.id}) {done}")
