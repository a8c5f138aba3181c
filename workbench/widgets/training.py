"""The Training section of the side panel (manual 2.3, 2.4): the task list, and a task's
details that follow its run live (state, log tail, metric charts), then show its
evaluation, confusion matrix and model version. Its forms: the wizard that makes or edits
a task (:mod:`workbench.widgets.training_wizard`), and the choice of a model version that
transfer training starts from, which fills the wizard."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.enums import ACTIVE_TASK_STATES, FINISHED_TASK_STATES, TaskState
from workbench.errors import WorkbenchError
from workbench.models.evaluation import Evaluation
from workbench.models.schemas import ModelVersionInfo
from workbench.training.schemas import MetricPoint, TaskInfo
from workbench.widgets import common
from workbench.widgets.poller import Poller
from workbench.widgets.section import Section
from workbench.widgets.training_views import (
    confusion_chart,
    evaluation_html,
    log_html,
    metrics_chart,
    metrics_figure,
    model_html,
    task_summary_html,
)
from workbench.widgets.training_wizard import TrainingWizard

#: the log lines the detail shows (the tail of the run's log)
LOG_TAIL = 20
#: metric keys that are the x axis, in order of preference (docs/contracts.md)
X_KEYS = ("epoch", "step")


def _active(task: TaskInfo) -> bool:
    return task.state in ACTIVE_TASK_STATES


class TrainingSection(Section[TaskInfo]):
    area = "training"
    noun = "training task"
    empty_hint = "New training task, below, walks through one."
    deletes = ", its runs, log and metrics (its model versions stay)"
    refresh_on_open = True  # it lists the algorithms and datasets put online meanwhile

    # --- the parts ------------------------------------------------------------------------

    def build_filters(self) -> list[w.Widget]:
        """The filters, and :attr:`list_poller`: a list with an active task is followed."""
        self.state = common.filter_choice("State", TaskState, "190px")
        self.mine = common.mine_only()
        self.watch(self.state, self.mine)
        #: refreshes the list while any task in it is queued or running
        self.list_poller = self.follow(Poller(self._poll_list, self.poll_interval * 3))
        return [self.state, self.mine]

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        self.wizard = TrainingWizard(self.client, self._saved, self.is_admin)
        self.models = ModelsBox(self.client, self.transfer)
        return [
            ("New training task", self.wizard),
            ("Transfer training from a model", self.models),
        ]

    def build_details(self) -> TaskDetail:
        self.detail = TaskDetail(self.client, self, self.poll_interval)
        self.follow(self.detail.poller)
        self.action_status = self.detail.status
        return self.detail

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[TaskInfo]:
        return self.client.training.list(
            state=common.chosen(self.state), mine=self.mine.value or None
        )

    def label(self, task: TaskInfo) -> str:
        return (
            f"#{task.id} {task.name} · {task.state} · {task.algorithm_name} on "
            f"{task.dataset_name} · {task.owner}"
        )

    def render(self, task: TaskInfo) -> None:
        self.detail.show(task)

    def clear(self) -> None:
        self.detail.show(None)

    def load_choices(self) -> None:
        self.wizard.load_choices()
        self.models.load()

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
        actions = self._build_actions()
        #: what the actions answer (the Section's ``action_status``)
        self.status = common.Status()
        super().__init__(
            [self.summary, actions, self.status, *self._build_results()],
            layout=w.Layout(display="none"),
        )

    def _build_actions(self) -> w.HBox:
        """Start, Stop, Retry, Edit, Transfer training and the section's Delete."""
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning")
        self.retry_button = w.Button(description="Retry", icon="repeat")
        self.edit_button = w.Button(description="Edit", icon="pencil")
        self.transfer_button = w.Button(description="Transfer training", icon="share")
        self.delete_button = self.section.delete_button
        common.name_for_css(
            "task",
            {
                "start": self.start_button,
                "stop": self.stop_button,
                "retry": self.retry_button,
                "transfer": self.transfer_button,
            },
        )
        section, training = self.section, self.client.training
        self.start_button.on_click(lambda _: section.act(training.start, "started"))
        self.stop_button.on_click(lambda _: section.act(training.stop, "stopped"))
        self.retry_button.on_click(lambda _: section.act(training.retry, "restarted"))
        self.edit_button.on_click(lambda _: self.edit())
        self.transfer_button.on_click(lambda _: self.transfer())
        return w.HBox(
            [
                self.start_button,
                self.stop_button,
                self.retry_button,
                self.edit_button,
                self.transfer_button,
                self.delete_button,
            ],
            layout=common.wrap(),
        )

    def _build_results(self) -> list[w.Widget]:
        """The model it made, its evaluation, the metrics chart, the log, the confusion
        matrix. The charts join the page when there is something to draw: plotly draws a
        figure best in a visible container, and a panel that never shows a task draws none."""
        self.chart = metrics_chart()
        self.chart_box = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.chart_box.add_class("wb-training-metrics")
        self.log_view = w.HTML(log_html([]))
        self.log_view.add_class("wb-training-log")
        self.evaluation = w.HTML()
        self.evaluation.add_class("wb-training-evaluation")
        self.confusion = confusion_chart()
        self.confusion_box = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.confusion_box.add_class("wb-training-confusion")
        self.model = w.HTML()
        self.model.add_class("wb-training-model")
        return [
            self.model,
            self.evaluation,
            self.chart_box,
            w.HTML(f"<b>Log</b> <small>(the last {LOG_TAIL} lines, live while it runs)</small>"),
            self.log_view,
            self.confusion_box,
        ]

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
        self.log_view.value = log_html([])
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
                    page = self.client.jobs.log(self.job_id, self.log_offset)
                    if page.text:
                        self.log_lines.extend(page.text.splitlines())
                        self.log_view.value = log_html(self.log_lines)
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
        model = common.attempt(self.status, lambda: self.client.models.get(model_id))
        if model is common.FAILED:
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
        self.message = common.Status()
        self.versions: dict[int, ModelVersionInfo] = {}
        self.names: dict[int, str] = {}
        common.on_pick(self.model, self._model_changed)
        self.button.on_click(lambda _: self.transfer())
        super().__init__([self.model, self.version, self.button, self.message])

    def load(self) -> None:
        found = common.attempt(self.message, self.client.models.list)
        if found is common.FAILED:
            return
        self.names = {m.id: m.name for m in found}
        options = [(f"#{m.id} {m.name} · {m.owner}", m.id) for m in found]
        common.replace_options(self.model, [("choose a model", None), *options], self.model.value)

    def _model_changed(self, _: int | None = None) -> None:
        self.versions = {}
        common.replace_options(self.version, [], None)
        if self.model.value is None:
            return
        model_id = self.model.value
        model = common.attempt(self.message, lambda: self.client.models.get(model_id))
        if model is common.FAILED:
            return
        self.versions = {v.id: v for v in model.versions}
        options = [
            (f"v{v.version} · {_evaluation_brief(v.evaluation)}", v.id)
            for v in sorted(model.versions, key=lambda v: -v.version)
        ]
        common.replace_options(self.version, options, options[0][1] if options else None)  # newest

    def transfer(self) -> None:
        version = self.versions.get(self.version.value) if self.version.value else None
        if version is None:
            self.message.problem("Choose a model and one of its versions.")
            return
        self.message.value = ""
        self.on_transfer(version, self.names.get(version.model_id, f"model {version.model_id}"))


def _evaluation_brief(evaluation: Evaluation | None) -> str:
    if evaluation is None or evaluation.accuracy is None:
        return "no accuracy"
    return f"accuracy {evaluation.accuracy:.3f}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
