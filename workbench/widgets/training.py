"""The Training section of the side panel (manual 2.3, 2.4): a wizard that makes a training
task (purpose, name, an online algorithm, an online dataset, typed parameters, resources),
the task list, and a task's details that follow its run live (state, log tail, metric
charts), then show its evaluation, confusion matrix and model version. Transfer training
fills the wizard from a model version."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.algorithms.params import ParamSpec, parse_value
from workbench.algorithms.schemas import AlgorithmInfo
from workbench.client import WorkbenchClient
from workbench.datasets.schemas import DatasetInfo
from workbench.enums import ACTIVE_TASK_STATES, FINISHED_TASK_STATES, Purpose, SplitMode, TaskState
from workbench.errors import WorkbenchError
from workbench.models.evaluation import Evaluation
from workbench.models.schemas import ModelVersionInfo
from workbench.training.schemas import MetricPoint, TaskInfo
from workbench.widgets.charts import Chart, chart
from workbench.widgets.common import (
    FAILED,
    Section,
    Status,
    attempt,
    chosen,
    escape,
    filter_choice,
    heading_html,
    mine_only,
    offer_sub_purposes,
    on_pick,
    plain,
    replace_options,
    size_text,
    state_html,
    table_html,
    visibility_choices,
    wrap,
)
from workbench.widgets.poller import Poller

#: the log lines the detail shows (the tail of the run's log)
LOG_TAIL = 20
#: metric keys that are the x axis, in order of preference (docs/contracts.md)
X_KEYS = ("epoch", "step")
ALGORITHM_SOURCES = [("Mine", "mine"), ("Preset", "preset"), ("Public", "public")]
STEPS = ("Purpose", "Name", "Algorithm", "Dataset", "Parameters", "Resources")


def _active(task: TaskInfo) -> bool:
    return task.state in ACTIVE_TASK_STATES


class TrainingSection(Section[TaskInfo]):
    title = "Training"
    noun = "training task"
    empty_hint = "New training task, below, walks through one."
    deletes = ", its runs, log and metrics (its model versions stay)"
    refresh_on_open = True  # it lists the algorithms and datasets put online meanwhile

    def __init__(self, client: WorkbenchClient, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.state = filter_choice("State", TaskState, "190px")
        self.mine = mine_only()
        self.watch(self.state, self.mine)
        #: refreshes the list while any task in it is queued or running
        self.list_poller = Poller(self._poll_list, self.poll_interval * 3)

        self.wizard = TrainingWizard(client, self._saved, self.is_admin)
        self.models = ModelsBox(client, self.transfer)
        self.detail = TaskDetail(client, self, self.poll_interval)
        self.action_status = self.detail.status
        self.arrange(
            filters=[self.state, self.mine],
            forms=[
                ("New training task", self.wizard),
                ("Transfer training from a model", self.models),
            ],
            details=self.detail,
        )

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[TaskInfo]:
        return self.client.training.list(state=chosen(self.state), mine=self.mine.value or None)

    def label(self, task: TaskInfo) -> str:
        return (
            f"#{task.id} {task.name} · {task.state} · {task.algorithm_name} on "
            f"{task.dataset_name} · {task.owner}"
        )

    def render(self, task: TaskInfo) -> None:
        self.detail.show(task)

    def clear(self) -> None:
        self.detail.show(None)

    def remove(self, task_id: int) -> None:
        self.client.training.delete(task_id)

    def load_choices(self) -> None:
        self.wizard.load_choices()
        self.models.load()

    def stop_polling(self) -> None:
        self.list_poller.stop()
        self.detail.poller.stop()

    # --- following the tasks --------------------------------------------------------------

    def set_items(self, items: Iterable[TaskInfo]) -> None:
        """The list, followed while a task in it is queued or running."""
        super().set_items(items)
        if any(_active(t) for t in self.items.values()):
            self.list_poller.start()

    def _poll_list(self) -> bool:
        """One automatic refresh of the list; it ends once no task is active."""
        return self.load() and any(_active(t) for t in self.items.values())

    def task_changed(self, task: TaskInfo, was: TaskState) -> None:
        """The detail saw a newer state of ``task`` (it ``was`` another): the list says it
        too, and so do the status lines (no "started" left beside a task that ended)."""
        if task.id in self.items and self.items[task.id].state != task.state:
            self.set_items({**self.items, task.id: task}.values())
        if task.state != was:
            for status in (self.status, self.detail.status):
                status.ok(f"{task.name} {task.state}")
        if _active(task):
            self.list_poller.start()

    # --- the forms ------------------------------------------------------------------------

    def edit(self, task: TaskInfo) -> None:
        self.wizard.load_task(task)
        self.open_form(0, f"Edit {task.name}")

    def transfer(self, version: ModelVersionInfo, model_name: str) -> None:
        """A new task that starts from ``version`` (its algorithm and dataset, prefilled)."""
        self.wizard.transfer_from(version, model_name)
        self.open_form(0, "New training task (transfer)")

    def _saved(self, task: TaskInfo, message: str) -> None:
        self.close_forms()
        self.saved(task, message)


class TaskDetail(w.VBox):
    """One task: its facts and actions, its run's log and metrics live, its evaluation."""

    def __init__(self, client: WorkbenchClient, section: TrainingSection, interval: float) -> None:
        self.client = client
        self.section = section
        self.task: TaskInfo | None = None
        #: the run shown; a retry starts another, shown from its beginning
        self.job_id: int | None = None
        self.log_offset = 0
        self.log_lines: deque[str] = deque(maxlen=LOG_TAIL)
        self.last_seq = -1
        self.points: dict[str, tuple[list[float], list[float]]] = {}
        self.x_title = "epoch"
        self._lock = threading.RLock()
        self.poller = Poller(self._follow, interval)

        self.summary = w.HTML()
        self.summary.add_class("wb-task-summary")
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning")
        self.retry_button = w.Button(description="Retry", icon="repeat")
        self.edit_button = w.Button(description="Edit", icon="pencil")
        self.transfer_button = w.Button(description="Transfer training", icon="share")
        self.delete_button = section.delete_button
        for button, css in (
            (self.start_button, "start"),
            (self.stop_button, "stop"),
            (self.retry_button, "retry"),
            (self.transfer_button, "transfer"),
        ):
            button.add_class(f"wb-task-{css}")
        training = client.training
        self.start_button.on_click(lambda _: section.act(training.start, "started"))
        self.stop_button.on_click(lambda _: section.act(training.stop, "stopped"))
        self.retry_button.on_click(lambda _: section.act(training.retry, "restarted"))
        self.edit_button.on_click(lambda _: self.edit())
        self.transfer_button.on_click(lambda _: self.transfer())
        #: what the actions answer (the Section's ``action_status``)
        self.status = Status()

        # the charts join the page when there is something to draw: plotly draws a figure
        # best in a visible container, and a panel that never shows a task draws none
        self.chart = metrics_chart()
        self.chart_box = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.chart_box.add_class("wb-training-metrics")
        self.log_view = w.HTML(_log_html([]))
        self.log_view.add_class("wb-training-log")
        self.evaluation = w.HTML()
        self.evaluation.add_class("wb-training-evaluation")
        self.confusion = confusion_chart()
        self.confusion_box = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.confusion_box.add_class("wb-training-confusion")
        self.model = w.HTML()
        self.model.add_class("wb-training-model")
        super().__init__(
            [
                self.summary,
                w.HBox(
                    [
                        self.start_button,
                        self.stop_button,
                        self.retry_button,
                        self.edit_button,
                        self.transfer_button,
                        self.delete_button,
                    ],
                    layout=wrap(),
                ),
                self.status,
                self.model,
                self.evaluation,
                self.chart_box,
                w.HTML(
                    f"<b>Log</b> <small>(the last {LOG_TAIL} lines, live while it runs)</small>"
                ),
                self.log_view,
                self.confusion_box,
            ],
            layout=w.Layout(display="none"),
        )

    def show(self, task: TaskInfo | None) -> None:
        """Show ``task``, from the beginning of its current run (or, for the run shown
        already, from where it is); follow it while it is active."""
        with self._lock:
            self.poller.stop()
            shown = self.task
            self.task = task
            if task is None:
                self.status.value = ""
                self.layout.display = "none"
                return
            self.layout.display = ""
            if shown is None or shown.id != task.id or self.job_id != task.job_id:
                self.status.value = ""
                if not self.chart_box.children:
                    self.chart_box.children = (self.chart,)
                self._new_run(task.job_id)
            self._render(task)
        if self._follow():
            self.poller.start()

    def _new_run(self, job_id: int | None) -> None:
        self.job_id = job_id
        self.log_offset, self.last_seq = 0, -1
        self.log_lines.clear()
        self.log_view.value = _log_html([])
        self.points = {}
        self.chart.draw(metrics_figure({}, self.x_title, "Metrics"))
        self.evaluation.value = ""
        self.confusion_box.children = ()
        self.model.value = ""

    def _render(self, task: TaskInfo) -> None:
        self.summary.value = task_summary_html(task)
        self.start_button.layout.display = "" if task.state == TaskState.DRAFT else "none"
        self.stop_button.layout.display = "" if _active(task) else "none"
        self.retry_button.layout.display = "" if task.state in FINISHED_TASK_STATES else "none"
        self.edit_button.layout.display = "none" if _active(task) else ""
        self.transfer_button.layout.display = "" if task.model_version_id else "none"

    def _follow(self) -> bool:
        """One look at the task: its state, the run's log since the last offset and its new
        metrics; once the run has ended, its evaluation and model. True while it runs."""
        with self._lock:
            task = self.task
            if task is None:
                return False
            try:
                fresh = self.client.training.get(task.id)
                if fresh.job_id != self.job_id:
                    self._new_run(fresh.job_id)
                active = _active(fresh)
                if self.job_id is not None:
                    page = self.client.training.log(task.id, self.log_offset, job_id=self.job_id)
                    if page.text:
                        self.log_lines.extend(page.text.splitlines())
                        self.log_view.value = _log_html(self.log_lines)
                    self.log_offset = page.next_offset
                    while points := self.client.training.metrics(
                        task.id, after=self.last_seq, job_id=self.job_id
                    ):
                        self._add_points(points)
                        if active:
                            break  # the next look reads on
                self._render(fresh)
                if not active:
                    self._show_result(fresh)
            except WorkbenchError as exc:
                self.status.error(exc)
                return False
            if self.task is None or self.task.id != task.id:
                return False  # another task was chosen meanwhile
            self.task = fresh
        self.section.task_changed(fresh, was=task.state)
        return active

    def _add_points(self, points: list[MetricPoint]) -> None:
        """One line per numeric metric against epoch (or step, or the line's position)."""
        for point in points:
            self.last_seq = max(self.last_seq, point.seq)
            values = point.values
            x_key = next((k for k in X_KEYS if _number(values.get(k))), None)
            if x_key:
                self.x_title = x_key
            for name, value in values.items():
                if name in X_KEYS or not _number(value):
                    continue
                xs, ys = self.points.setdefault(name, ([], []))
                xs.append(float(values[x_key]) if x_key else float(point.seq + 1))
                ys.append(float(value))
        title = f"Metrics · {self.last_seq + 1} lines"
        self.chart.draw(metrics_figure(self.points, self.x_title, title))

    def _show_result(self, task: TaskInfo) -> None:
        evaluation = task.evaluation
        if task.state != TaskState.SUCCEEDED or evaluation is None:
            return
        self.evaluation.value = evaluation_html(evaluation)
        if evaluation.confusion_matrix:
            with self.confusion.drawing() as figure:
                heat = figure.data[0]
                heat.z = evaluation.confusion_matrix
                heat.x = heat.y = list(evaluation.labels)
                figure.layout.title.text = f"Confusion matrix · {task.name}"
            self.confusion_box.children = (self.confusion,)
        if task.model_id is not None and task.model_version_id is not None:
            model = self.client.models.get(task.model_id)
            version = next((v for v in model.versions if v.id == task.model_version_id), None)
            if version is not None:
                self.model.value = model_html(model.name, version)

    def edit(self) -> None:
        if self.task is not None:
            self.section.edit(self.task)

    def transfer(self) -> None:
        task = self.task
        if task is None or task.model_id is None or task.model_version_id is None:
            return
        model_id = task.model_id
        model = attempt(self.status, lambda: self.client.models.get(model_id))
        if model is FAILED:
            return
        version = next(v for v in model.versions if v.id == task.model_version_id)
        self.section.transfer(version, model.name)


class ModelsBox(w.VBox):
    """Pick a model version to transfer-train from (manual 2.4)."""

    def __init__(
        self, client: WorkbenchClient, on_transfer: Callable[[ModelVersionInfo, str], None]
    ) -> None:
        self.client = client
        self.on_transfer = on_transfer
        self.model = w.Dropdown(description="Model", layout=w.Layout(width="320px"))
        self.version = w.Dropdown(description="Version", layout=w.Layout(width="320px"))
        self.button = w.Button(description="Transfer training", icon="share")
        self.message = Status()
        self.versions: dict[int, ModelVersionInfo] = {}
        self.names: dict[int, str] = {}
        on_pick(self.model, self._model_changed)
        self.button.on_click(lambda _: self.transfer())
        super().__init__([self.model, self.version, self.button, self.message])

    def load(self) -> None:
        found = attempt(self.message, self.client.models.list)
        if found is FAILED:
            return
        self.names = {m.id: m.name for m in found}
        options = [(f"#{m.id} {m.name} · {m.owner}", m.id) for m in found]
        replace_options(self.model, [("choose a model", None), *options], self.model.value)

    def _model_changed(self, _: int | None = None) -> None:
        self.versions = {}
        replace_options(self.version, [], None)
        if self.model.value is None:
            return
        model_id = self.model.value
        model = attempt(self.message, lambda: self.client.models.get(model_id))
        if model is FAILED:
            return
        self.versions = {v.id: v for v in model.versions}
        options = [
            (f"v{v.version} · {_evaluation_brief(v.evaluation)}", v.id)
            for v in sorted(model.versions, key=lambda v: -v.version)
        ]
        replace_options(self.version, options, options[0][1] if options else None)  # newest

    def transfer(self) -> None:
        version = self.versions.get(self.version.value) if self.version.value else None
        if version is None:
            self.message.problem("Choose a model and one of its versions.")
            return
        self.message.value = ""
        self.on_transfer(version, self.names.get(version.model_id, f"model {version.model_id}"))


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
        self.message = Status()

        # 1. purpose
        self.purpose = w.Dropdown(options=list(Purpose), description="Purpose")
        self.sub_purpose = w.Dropdown(description="Sub-purpose")
        self.purpose.observe(lambda _: self._purpose_changed(), names="value")
        # 2. name
        self.name = w.Text(description="Name")
        self.description = w.Textarea(description="Description", rows=2)
        self.visibility = w.Dropdown(options=visibility_choices(is_admin), description="Visibility")
        # 3. algorithm
        self.algorithm_source = w.ToggleButtons(options=ALGORITHM_SOURCES, value="mine")
        self.algorithm = w.Select(options=[], rows=5, layout=w.Layout(width="100%"))
        self.algorithm_info = w.HTML()
        self.algorithm_source.observe(lambda _: self.load_algorithms(), names="value")
        on_pick(self.algorithm, self._algorithm_changed)
        # 4. dataset
        self.dataset = w.Select(options=[], rows=5, layout=w.Layout(width="100%"))
        self.train_ratio = w.FloatSlider(
            value=0.8, min=0.05, max=0.95, step=0.05, description="Train ratio"
        )
        self.split_note = w.HTML()
        on_pick(self.dataset, self._dataset_changed)
        # 5. parameters
        self.params_box = w.VBox()
        # 6. resources
        self.cpus = w.BoundedFloatText(value=1.0, min=0.1, max=256, step=0.5, description="CPUs")
        self.memory = w.BoundedIntText(
            value=2048, min=64, max=1024 * 1024, step=256, description="Memory MiB"
        )
        self.gpus = w.BoundedIntText(value=0, min=0, max=16, description="GPUs")

        self.pages = [
            w.VBox([self.purpose, self.sub_purpose]),
            w.VBox([self.name, self.description, self.visibility]),
            w.VBox(
                [
                    w.HTML("Online algorithms of this purpose:"),
                    self.algorithm_source,
                    self.algorithm,
                    self.algorithm_info,
                ]
            ),
            w.VBox(
                [
                    w.HTML("Online datasets of this purpose:"),
                    self.dataset,
                    self.train_ratio,
                    self.split_note,
                ]
            ),
            w.VBox(
                [
                    w.HTML("The algorithm's training parameters (empty: its default):"),
                    self.params_box,
                ]
            ),
            w.VBox([self.cpus, self.memory, self.gpus]),
        ]
        self.header = w.HTML()
        self.transfer_note = w.HTML()
        self.page = w.Box()
        self.back_button = w.Button(description="Back", icon="arrow-left")
        self.next_button = w.Button(description="Next", icon="arrow-right", button_style="primary")
        self.save_button = w.Button(description="Save", icon="save")
        self.save_start_button = w.Button(
            description="Save and start", icon="play", button_style="success"
        )
        for widget, css in (
            (self.purpose, "purpose"),
            (self.sub_purpose, "sub-purpose"),
            (self.name, "name"),
            (self.algorithm_source, "algorithm-source"),
            (self.algorithm, "algorithm"),
            (self.dataset, "dataset"),
            (self.params_box, "params"),
            (self.next_button, "next"),
            (self.save_button, "save"),
            (self.save_start_button, "save-start"),
        ):
            widget.add_class(f"wb-wizard-{css}")
        self.back_button.on_click(lambda _: self.go(self.step - 1))
        self.next_button.on_click(lambda _: self.next())
        self.save_button.on_click(lambda _: self.save(start=False))
        self.save_start_button.on_click(lambda _: self.save(start=True))
        self._purpose_changed()
        super().__init__(
            [
                self.header,
                self.transfer_note,
                self.page,
                w.HBox(
                    [self.back_button, self.next_button, self.save_button, self.save_start_button],
                    layout=wrap(),
                ),
                self.message,
            ]
        )
        self.go(0)

    # --- steps ----------------------------------------------------------------------------

    def go(self, step: int) -> None:
        self.step = max(0, min(step, len(STEPS) - 1))
        self.page.children = (self.pages[self.step],)
        trail = " &rsaquo; ".join(
            f"<b>{name}</b>" if i == self.step else escape(name) for i, name in enumerate(STEPS)
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
        offer_sub_purposes(self.purpose, self.sub_purpose)

    def load_algorithms(self) -> None:
        """Online algorithms of the purpose, from the chosen source (mine, preset, public)."""
        found = attempt(
            self.message,
            lambda: self.client.algorithms.list(
                visibility=self.algorithm_source.value,
                purpose=self.purpose.value,
                sub_purpose=self.sub_purpose.value,
                state="online",
            ),
        )
        if found is FAILED:
            return
        keep = self._wanted.get("algorithm_id", self.algorithm.value)
        self.algorithms = {a.id: a for a in found}
        options = [
            (f"#{a.id} {a.name} · {a.train.settings.device} · {a.owner}", a.id) for a in found
        ]
        replace_options(self.algorithm, options, keep)
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
            f"<div>{escape(algo.description) or '<i>no description</i>'}</div>"
            f"<div>{len(settings.env)} parameters · {settings.device.upper()} · "
            f"owner {escape(algo.owner)}</div>"
        )
        if settings.device == "gpu" and self.gpus.value == 0:
            self.gpus.value = 1
        wanted = self._wanted.get("parameters", {})
        rows: list[w.Widget] = []
        for name, spec in settings.env.items():
            value = wanted.get(name, spec.default)
            field = w.Text(
                value="" if value is None else plain(value),
                placeholder="(no default)" if spec.default is None else plain(spec.default),
                layout=w.Layout(width="110px"),
            )
            field.add_class(f"wb-param-{name}")
            error = w.HTML()
            field.observe(lambda _, n=name: self.param_problem(n), names="value")
            self.params[name] = (spec, field, error)
            label = w.HTML(
                f"<code>{escape(name)}</code> <small>{spec.type}</small>",
                layout=w.Layout(width="150px"),
            )
            note = w.HTML(f"<small>{escape(spec.description)}</small>")
            rows.append(w.VBox([w.HBox([label, field, note], layout=wrap()), error]))
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
        error.value = f"<span style='color:#b71c1c'>{escape(problem)}</span>" if problem else ""
        return problem

    def load_datasets(self) -> None:
        found = attempt(
            self.message,
            lambda: self.client.datasets.list(
                state="online", purpose=self.purpose.value, sub_purpose=self.sub_purpose.value
            ),
        )
        if found is FAILED:
            return
        keep = self._wanted.get("dataset_id", self.dataset.value)
        self.datasets = {d.id: d for d in found}
        options = [(f"#{d.id} {d.name} · {d.format} · {d.owner}", d.id) for d in found]
        replace_options(self.dataset, options, keep)
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
            found = attempt(self.message, lambda: self.client.algorithms.get(algorithm_id))
            algo = None if found is FAILED else found
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
            f"<div style='color:#0d47a1'>Transfer training from <b>{escape(model_name)}</b> "
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


# --- views --------------------------------------------------------------------------------


def task_summary_html(task: TaskInfo) -> str:
    params = ", ".join(f"{k}={plain(v)}" for k, v in task.parameters.items()) or "defaults"
    split = "its own test set" if task.train_ratio is None else f"train ratio {task.train_ratio:g}"
    transfer = (
        f" · from model version #{task.base_model_version_id}" if task.base_model_version_id else ""
    )
    times = []
    if task.started_at:
        times.append(f"started {task.started_at:%Y-%m-%d %H:%M:%S}")
    if task.finished_at:
        times.append(f"finished {task.finished_at:%Y-%m-%d %H:%M:%S}")
    reason = (
        f"<div style='color:{'#b71c1c' if task.state == TaskState.FAILED else '#555'}'>"
        f"{escape(task.state_reason)}</div>"
        if task.state_reason
        else ""
    )
    return (
        f"{heading_html(task.name, task.description)}"
        f"<div>state {state_html(task.state)} · {task.purpose}/{task.sub_purpose} · "
        f"{task.visibility} · owner {escape(task.owner)}</div>"
        f"<div>algorithm #{task.algorithm_id} {escape(task.algorithm_name)} · dataset "
        f"#{task.dataset_id} {escape(task.dataset_name)} ({split}){transfer}</div>"
        f"<div>parameters <code>{escape(params)}</code> · {task.cpus:g} CPUs, "
        f"{task.memory_mb} MiB, {task.gpus} GPUs</div>"
        f"<div style='color:var(--jp-ui-font-color2, #555)'>{' · '.join(times)}</div>{reason}"
    )


def evaluation_html(evaluation: Evaluation) -> str:
    """Accuracy and the macro averages, one row per class, then the container's numbers."""

    def num(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    parts = ["<div style='margin-top:6px'><b>Evaluation</b> (on the test set)</div>"]
    if evaluation.accuracy is not None:
        parts.append(
            table_html(
                ["accuracy", "precision (macro)", "recall (macro)", "F1 (macro)"],
                [
                    [
                        num(evaluation.accuracy),
                        num(evaluation.precision),
                        num(evaluation.recall),
                        num(evaluation.f1),
                    ]
                ],
                "wb-eval-overall",
            )
        )
    if evaluation.per_class:
        parts.append(
            table_html(
                ["class", "precision", "recall", "F1", "support"],
                [
                    [escape(label), num(c.precision), num(c.recall), num(c.f1), str(c.support)]
                    for label, c in evaluation.per_class.items()
                ],
                "wb-eval-classes",
            )
        )
    if evaluation.metrics:
        numbers = " · ".join(
            f"{escape(k)} {escape(plain(v))}" for k, v in evaluation.metrics.items()
        )
        parts.append(f"<div>{numbers}</div>")
    return "".join(parts)


def model_html(model_name: str, version: ModelVersionInfo) -> str:
    return (
        f"<div><b>Model</b> {escape(model_name)} v{version.version} (id {version.id}) · "
        f"{version.files} files, "
        f"{size_text(version.size)}</div>"
    )


def _evaluation_brief(evaluation: Evaluation | None) -> str:
    if evaluation is None or evaluation.accuracy is None:
        return "no accuracy"
    return f"accuracy {evaluation.accuracy:.3f}"


def metrics_chart() -> Chart:
    return Chart(
        metrics_figure({}, "epoch", "Metrics"),
        "No metrics yet: they appear as the run writes them (metrics.jsonl).",
    )


def metric_groups(points: dict[str, tuple[list[float], list[float]]]) -> list[list[str]]:
    """The metrics that share an axis: the losses; the rates (every value within 0..1,
    accuracies say); then each other metric (a count of samples, say) on its own."""
    losses = [name for name in points if "loss" in name.lower()]
    rates = [
        name for name in points if name not in losses and all(0 <= y <= 1 for y in points[name][1])
    ]
    others = [[name] for name in points if name not in losses and name not in rates]
    return [group for group in (losses, rates) if group] + others


def metrics_figure(
    points: dict[str, tuple[list[float], list[float]]], x_title: str, title: str
) -> go.Figure:
    """Small multiples: a chart per :func:`metric_groups` group, over one x axis."""
    groups = metric_groups(points) or [[]]
    rows = len(groups)
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.3 / rows,
        subplot_titles=[", ".join(group) for group in groups],
    )
    for row, group in enumerate(groups, start=1):
        for name in group:
            xs, ys = points[name]
            figure.add_scatter(
                x=list(xs), y=list(ys), name=name, mode="lines+markers", row=row, col=1
            )
    figure.update_xaxes(title_text=x_title, row=rows, col=1)
    last = max((max(xs, default=1) for xs, _ in points.values()), default=1)
    figure.update_xaxes(tick0=0, dtick=max(1, math.ceil(last / 8)))  # whole epochs
    figure.update_layout(
        title=title,
        autosize=True,
        height=90 + 170 * rows,
        margin={"l": 50, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.35 / rows, "yanchor": "top"},
    )
    return figure


def confusion_chart() -> Chart:
    return chart(
        [go.Heatmap(z=[], x=[], y=[], colorscale="Blues", texttemplate="%{z}")],
        empty="No confusion matrix: the run's evaluation has none.",
        title="Confusion matrix",
        height=420,
        margin={"l": 60, "r": 10, "t": 40, "b": 50},
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )


def _log_html(lines: Iterable[str]) -> str:
    """The log's tail, the newest line at the bottom."""
    text = escape("\n".join(lines)) or "(no output yet)"
    return (
        "<pre style='margin:0;padding:4px 6px;font-size:11px;line-height:1.35;"
        "white-space:pre-wrap;word-break:break-all;"
        f"background:var(--jp-layout-color2, #f5f5f5)'>{text}</pre>"
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
