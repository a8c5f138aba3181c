"""The Services section of the side panel (manual 2.7): publish a model version as a
service (its default serving format, or one chosen), the services with their state, a
service's details (the version, task and dataset behind it, its address, each replica),
start, stop, restart and scale (deploy jobs, followed), an online test form made from the
served model's V2 metadata (the answer and its latency), the replicas' logs, and live
charts of its request rate, latency percentiles and batch size from its replicas' metrics.
"""

from __future__ import annotations

import json
import time
from collections import deque
from datetime import datetime
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.client import WorkbenchClient
from workbench.deployments.metrics import rates
from workbench.deployments.schemas import (
    IMAGE_FORMAT,
    ServiceInfo,
    ServiceMetrics,
    ServiceRates,
)
from workbench.jobs import FINISHED_JOB_STATES
from workbench.models.schemas import ModelDetail, ModelVersionInfo
from workbench.widgets.charts import Chart
from workbench.widgets.common import (
    FAILED,
    Section,
    Status,
    attempt,
    escape,
    heading_html,
    on_pick,
    replace_options,
    state_html,
    table_html,
    visibility_choices,
    wrap,
)
from workbench.widgets.poller import Poller

#: readings the live charts keep (one per poll)
HISTORY = 90
#: the live charts' titles, and each one's lines: the reading's field, a name, a colour
LIVE_TITLES = ("Requests per second", "Latency (ms)", "Batch size and queue")
LIVE_LINES = (
    (("request_rate", "requests/s", "#1e88e5"), ("error_rate", "errors/s", "#e53935")),
    (("p50_ms", "p50", "#43a047"), ("p95_ms", "p95", "#fb8c00"), ("p99_ms", "p99", "#e53935")),
    (("mean_batch", "mean batch", "#8e24aa"), ("queue_depth", "queue depth", "#546e7a")),
)
#: the V2 datatypes' JSON example value of one element
EXAMPLE_VALUE = {"BYTES": "text", "BOOL": False}
#: the answer shown, at most (a long output is cut)
ANSWER_CHARS = 4000


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


class ServicesSection(Section[ServiceInfo]):
    title = "Services"
    noun = "service"
    empty_hint = "Publish a model version, below, to make one."
    deletes = " and its replicas (its address is freed)"
    refresh_on_open = True  # versions converted or benchmarked meanwhile

    def __init__(self, client: WorkbenchClient, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._shown: int | None = None
        self._job: int | None = None
        self._metadata: dict[str, Any] | None = None
        self._last: ServiceMetrics | None = None
        self._history: deque[ServiceRates] = deque(maxlen=HISTORY)
        self.poller = Poller(self._tick, self.poll_interval)

        # publish a version, or an algorithm's inference image (manual 2.7.1)
        self.serve_from = w.ToggleButtons(
            options=[("A model version", "version"), ("An inference image", IMAGE_FORMAT)],
            value="version",
            style={"button_width": "150px"},
        )
        self.serve_from.add_class("wb-service-from")
        self.serve_from.observe(lambda _: self._show_source(), names="value")
        self.pick_algorithm = w.Dropdown(
            description="Algorithm", layout=w.Layout(width="330px", display="none")
        )
        self.pick_algorithm.add_class("wb-service-algorithm")
        self._algorithm_names: dict[int, str] = {}
        on_pick(self.pick_algorithm, lambda _: self._name_after_algorithm())
        self.pick_model = w.Dropdown(description="Model", layout=w.Layout(width="330px"))
        self.pick_version = w.Dropdown(description="Version", layout=w.Layout(width="330px"))
        self.pick_format = w.Dropdown(description="Format", layout=w.Layout(width="330px"))
        on_pick(self.pick_model, lambda _: self._offer_versions())
        on_pick(self.pick_version, lambda _: self._offer_formats())
        self.new_name = w.Text(description="Name", placeholder="lowercase-with-dashes")
        self._suggested_name = ""
        self.new_replicas = w.BoundedIntText(value=1, min=0, max=32, description="Replicas")
        self.new_cpus = w.BoundedFloatText(
            value=1.0, min=0.1, max=64, step=0.5, description="CPUs each"
        )
        self.new_memory = w.BoundedIntText(
            value=1024, min=128, max=1024 * 1024, step=256, description="MiB each"
        )
        self.new_visibility = w.Dropdown(
            options=visibility_choices(self.is_admin), description="Visibility"
        )
        self.new_public = w.Checkbox(
            value=False, description="Public endpoint: anyone may call it, without a key"
        )
        self.new_public.add_class("wb-service-public")
        self.publish_button = w.Button(
            description="Publish", icon="cloud-upload", button_style="success"
        )
        self.publish_button.add_class("wb-service-publish")
        self.publish_button.on_click(lambda _: self.publish())
        self.publish_status = Status()
        self._model_detail: ModelDetail | None = None
        #: the chosen version's algorithm (whose inference image the form may offer)
        self._algorithm_id: int | None = None
        publish_form = w.VBox(
            [
                self.serve_from,
                self.pick_algorithm,
                self.pick_model,
                self.pick_version,
                self.pick_format,
                self.new_name,
                w.HBox([self.new_replicas, self.new_cpus], layout=wrap()),
                w.HBox([self.new_memory, self.new_visibility], layout=wrap()),
                self.new_public,
                self.publish_button,
                self.publish_status,
            ]
        )

        # a service: summary, replicas and their actions
        self.summary = w.HTML()
        self.summary.add_class("wb-service-summary")
        self.replica_table = w.HTML()
        self.replica_table.add_class("wb-service-replicas")
        self.start_button = w.Button(description="Start", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop")
        self.restart_button = w.Button(description="Restart", icon="refresh")
        self.scale_to = w.BoundedIntText(
            value=1, min=0, max=32, description="Replicas", layout=w.Layout(width="150px")
        )
        self.scale_to.add_class("wb-service-scale-to")
        self.scale_button = w.Button(description="Scale", icon="arrows-v")
        for button, action in (
            (self.start_button, "start"),
            (self.stop_button, "stop"),
            (self.restart_button, "restart"),
            (self.scale_button, "scale"),
        ):
            button.add_class(f"wb-service-{action}")
            button.on_click(lambda _, a=action: self.deploy(a))
        self.rotate_button = w.Button(description="New key", icon="key")
        self.rotate_button.add_class("wb-service-rotate-key")
        self.rotate_button.on_click(lambda _: self.rotate_key())
        #: the endpoint's key, shown once: after the service is made or its key rotated
        self.key_box = w.HTML()
        self.key_box.add_class("wb-service-key")
        self.deploy_status = Status()
        self.deploy_status.add_class("wb-service-deploy-status")
        self.action_status = self.deploy_status

        # the online test
        self.test_inputs = w.VBox()
        self.route = w.ToggleButtons(
            options=[("simple /predict", "predict"), ("V2 infer", "infer")],
            value="predict",
            style={"button_width": "120px"},
        )
        self.send_button = w.Button(description="Send", icon="paper-plane", button_style="primary")
        self.send_button.add_class("wb-service-send")
        self.send_button.on_click(lambda _: self.send())
        self.answer_status = Status()
        self.answer_status.add_class("wb-service-answer-status")
        self.answer = w.HTML()
        self.answer.add_class("wb-service-answer")
        self.test_box = w.VBox(
            [
                self.test_inputs,
                w.HBox([self.route, self.send_button], layout=wrap()),
                self.answer_status,
                self.answer,
            ]
        )

        # the replicas' logs
        self.log_replica = w.Dropdown(description="Replica", layout=w.Layout(width="160px"))
        self.log_button = w.Button(description="Show log", icon="file-text-o")
        self.log_button.on_click(lambda _: self.show_log())
        self.log_text = w.HTML()
        self.log_text.add_class("wb-service-log")

        # live charts
        self.now = w.HTML()
        self.now.add_class("wb-service-now")
        #: the live charts, made when a service is first shown: a panel that shows none
        #: sends none
        self.live_chart: Chart | None = None
        self.charts = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.charts.add_class("wb-service-charts")

        self.arrange(
            forms=[("Publish a model version", publish_form)],
            details=w.VBox(
                [
                    self.summary,
                    self.replica_table,
                    w.HBox(
                        [
                            self.start_button,
                            self.stop_button,
                            self.restart_button,
                            self.scale_to,
                            self.scale_button,
                            self.rotate_button,
                            self.delete_button,
                        ],
                        layout=wrap(),
                    ),
                    self.key_box,
                    self.deploy_status,
                    w.HTML("<b>Test it online</b>"),
                    self.test_box,
                    w.HTML("<b>Live</b> (from its replicas' metrics)"),
                    self.now,
                    self.charts,
                    w.HTML("<b>Logs</b>"),
                    w.HBox([self.log_replica, self.log_button], layout=wrap()),
                    self.log_text,
                ]
            ),
        )

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[ServiceInfo]:
        return self.client.services.list()

    def label(self, s: ServiceInfo) -> str:
        running = sum(1 for r in s.replica_states if r.state == "running")
        return (
            f"#{s.id} {s.name} · {s.model} v{s.version} {s.format} · {s.state} · "
            f"{running}/{s.replicas} replicas"
        )

    def render(self, s: ServiceInfo) -> None:
        if s.id != self._shown:  # another service: its form and charts start afresh
            self._shown, self._metadata, self._last = s.id, None, None
            self._history.clear()
            self._draw()
            self.test_inputs.children = ()
            self.answer.value = self.answer_status.value = ""
            self.log_text.value = self.now.value = self.key_box.value = ""
            self.scale_to.value = max(1, s.replicas)
            self._job = s.job_id if s.state == "deploying" else None
        self.summary.value = _summary_html(s)
        self.replica_table.value = _replicas_html(s)
        replicas = [(f"r{r.index}", r.index) for r in s.replica_states]
        keep = self.log_replica.value
        replace_options(self.log_replica, replicas, keep if keep is not None else 0)
        running = s.state == "running"
        self.start_button.disabled = running and len(s.replica_states) >= s.replicas > 0
        self.stop_button.disabled = s.state == "stopped"
        serving = any(r.state == "running" for r in s.replica_states)
        if serving and self._metadata is None:
            self._load_form(s)
        elif not serving:  # stopped, or not started yet: no form, no live line
            self._metadata = None
            self.now.value = ""
            self.test_inputs.children = (
                w.HTML(f"<i>The form appears when a replica runs ({escape(s.state)}).</i>"),
            )
        self.poller.start()

    def remove(self, service_id: int) -> None:
        self.client.services.delete(service_id)

    def clear(self) -> None:
        self._shown = None
        self.poller.stop()

    def load_choices(self) -> None:
        algorithms = attempt(self.publish_status, self.client.algorithms.list)
        if algorithms is not FAILED:  # those whose inference image is loaded
            ready = [a for a in algorithms if a.predict.state == "ready"]
            served = [(f"{a.name} ({a.owner})", a.id) for a in ready]
            self._algorithm_names = {a.id: a.name for a in ready}
            replace_options(self.pick_algorithm, served, self.pick_algorithm.value)
            if self.pick_algorithm.value is None and served:
                self.pick_algorithm.value = served[0][1]
        models = attempt(self.publish_status, self.client.models.list)
        if models is FAILED:
            return
        options = [(f"{m.name} ({m.owner})", m.id) for m in models if m.latest_version is not None]
        replace_options(self.pick_model, options, self.pick_model.value)
        if self.pick_model.value is None and options:
            self.pick_model.value = options[0][1]

    def stop_polling(self) -> None:
        self.poller.stop()

    # --- publish --------------------------------------------------------------------------

    def _offer_versions(self) -> None:
        model_id = self.pick_model.value
        self._model_detail = None
        if model_id is None:
            replace_options(self.pick_version, [], None)
            return
        detail = attempt(self.publish_status, lambda: self.client.models.get(model_id))
        if detail is FAILED:
            return
        self._model_detail = detail
        newest = list(reversed(detail.versions))
        options = [(_version_label(v), v.id) for v in newest]
        # the newest version converted and verified, else the newest
        chosen = next((v.id for v in newest if _verified(v)), newest[0].id if newest else None)
        replace_options(self.pick_version, options, chosen)
        self._suggest_name(detail.name)
        self._offer_formats()

    def _suggest_name(self, name: str) -> None:
        """The service named after what it serves, unless the user typed a name."""
        if self.new_name.value in ("", self._suggested_name):
            self.new_name.value = self._suggested_name = _service_name(name)

    def _offer_formats(self) -> None:
        detail = self._model_detail
        version = (
            next((v for v in detail.versions if v.id == self.pick_version.value), None)
            if detail is not None
            else None
        )
        if version is None:
            replace_options(self.pick_format, [], None)
            return
        default = version.default_format or "native"
        verified = _verified(version)
        options = [(f"default: {default}", ""), ("native", "native")]
        options += [(fmt, fmt) for fmt in verified]
        algorithm_id = version.algorithm_id
        if algorithm_id is not None:  # trained by an algorithm: its inference image too
            algorithm = attempt(
                self.publish_status, lambda: self.client.algorithms.get(algorithm_id)
            )
            if algorithm is not FAILED and algorithm.predict.state == "ready":
                options.append((f"{algorithm.name}'s inference image", IMAGE_FORMAT))
        self._algorithm_id = algorithm_id
        replace_options(self.pick_format, options, "")

    def _name_after_algorithm(self) -> None:
        name = self._algorithm_names.get(self.pick_algorithm.value)
        if name and self.serve_from.value == IMAGE_FORMAT:
            self._suggest_name(name)

    def _show_source(self) -> None:
        """The form for a version (model, version, format) or an inference image."""
        image = self.serve_from.value == IMAGE_FORMAT
        for widget in (self.pick_model, self.pick_version, self.pick_format):
            widget.layout.display = "none" if image else ""
        self.pick_algorithm.layout.display = "" if image else "none"
        if image:
            self._name_after_algorithm()

    def publish(self) -> None:
        version_id, name = self.pick_version.value, self.new_name.value.strip()
        image_only = self.serve_from.value == IMAGE_FORMAT
        if image_only:
            version_id = None
            if self.pick_algorithm.value is None:
                self.publish_status.problem(
                    "Choose an algorithm whose inference image is loaded (the Algorithms tab "
                    "uploads or pulls one)."
                )
                return
        elif version_id is None:
            self.publish_status.problem("Choose a model and one of its versions.")
            return
        if not name:
            self.publish_status.problem("Give the service a name (lowercase, digits, dashes).")
            return
        options: dict[str, Any] = {
            "replicas": self.new_replicas.value,
            "cpus": self.new_cpus.value,
            "memory_mb": self.new_memory.value,
            "visibility": self.new_visibility.value,
            "public_endpoint": self.new_public.value,
        }
        if image_only:
            options["algorithm_id"] = self.pick_algorithm.value
        elif self.pick_format.value == IMAGE_FORMAT:
            options["algorithm_id"] = self._algorithm_id
        elif self.pick_format.value:
            options["format"] = self.pick_format.value
        made = attempt(
            self.publish_status,
            lambda: self.client.services.create(name, version_id, wait=False, **options),
        )
        if made is FAILED:
            return
        self.publish_status.ok(f"{made.name}: deploy job {made.job_id} queued")
        self.new_name.value = ""
        self.close_forms()
        self.saved(made, f"{made.name}: deploy job {made.job_id} started (followed below)")
        if made.key:
            self.key_box.value = _key_html(made, made.key)

    def rotate_key(self) -> None:
        """A new key for the chosen service's endpoint, shown here this once."""
        service = self.selected
        if service is None:
            return
        key = attempt(self.deploy_status, lambda: self.client.services.rotate_key(service.id))
        if key is FAILED:
            return
        self.key_box.value = _key_html(service, key)
        self.deploy_status.ok("a new key: the old one is refused from now on")

    # --- start, stop, restart, scale ------------------------------------------------------

    def deploy(self, action: str) -> None:
        """One of the deploy actions on the chosen service, its job followed."""
        services = self.client.services
        replicas = self.scale_to.value
        calls = {
            "start": lambda i: services.start(i, wait=False),
            "stop": lambda i: services.stop(i, wait=False),
            "restart": lambda i: services.restart(i, wait=False),
            "scale": lambda i: services.scale(i, replicas, wait=False),
        }
        done = f"scaling to {replicas}" if action == "scale" else f"{action}: deploying"
        if self.act(calls[action], done) and self.selected is not None:
            self._job = self.selected.job_id
            self.poller.start()

    def _tick(self) -> bool:
        """One look: the deploy job followed (the service again when it ends), and a new
        reading of the replicas' metrics for the live charts."""
        service = self.selected
        if service is None or service.id != self._shown:
            return False
        if self._job is not None:
            self._follow_job(service.id, self._job)
        fresh = self.selected
        serving = fresh is not None and any(r.state == "running" for r in fresh.replica_states)
        if serving and self._metadata is None:
            self._load_form(fresh)  # its endpoint did not answer the last time
        if fresh is not None and fresh.replica_states:
            self._read_metrics(service.id)
        return True

    def _follow_job(self, service_id: int, job_id: int) -> None:
        job = self.attempt(lambda: self.client.jobs.get(job_id))
        if job is FAILED:
            self._job = None
            return
        if job.state not in FINISHED_JOB_STATES:
            self.deploy_status.value = f"deploy job {job_id} {job.state}: {escape(job.message)}"
            return
        self._job = None
        fresh = self.attempt(lambda: self.client.services.get(service_id))
        if fresh is not FAILED:
            self.put(fresh)
        if job.state == "succeeded":
            self.deploy_status.ok(f"deploy job {job_id} done: {job.message}")
        else:
            self.deploy_status.problem(f"deploy job {job_id} {job.state}: {job.message}")

    # --- the online test ------------------------------------------------------------------

    def _load_form(self, s: ServiceInfo) -> None:
        """The test form: one JSON field per input of the served model's V2 metadata (filled
        with a sample of its shape), or per parameter of an inference image's API spec
        (filled with its example)."""
        if s.api_spec is not None:
            spec = s.api_spec
            self._metadata = {"api_spec": spec}
            fields = [
                SampleField(
                    p["name"],
                    p["type"],
                    p.get("example"),
                    f"{p['type']}{'' if p['required'] else ', optional'}"
                    + (f": {p['description']}" if p.get("description") else ""),
                )
                for p in spec["params"]
            ]
            self.route.layout.display = "none"
        else:
            metadata = attempt(
                self.answer_status, lambda: self.client.services.metadata(s.id, s.model)
            )
            if metadata is FAILED:
                return
            self._metadata = metadata
            fields = []
            for tensor in metadata["inputs"]:
                shape = ", ".join("N" if d < 0 else str(d) for d in tensor["shape"])
                one = example_sample([tensor])[tensor["name"]]
                kind = "lines" if tensor["datatype"] == "BYTES" else "array"
                note = f"{tensor['datatype']} [{shape}]"
                fields.append(SampleField(tensor["name"], kind, one, note))
            self.route.layout.display = ""
        self.answer_status.value = ""
        self.test_inputs.children = tuple(fields)

    def send(self) -> None:
        """The form's sample to the service (simple route or V2), its answer and latency."""
        service, metadata = self.selected, self._metadata
        self.answer.value = ""
        if service is None or metadata is None:
            self.answer_status.problem("Start the service first: the form comes from its model.")
            return
        sample = {}
        for field in self.test_inputs.children:
            if not isinstance(field, SampleField):
                continue  # the note a deploying service shows
            try:
                sample[field.name] = field.value()
            except ValueError as exc:
                self.answer_status.problem(str(exc))
                return
        route = self.route.value

        def call() -> Any:
            if "api_spec" in metadata:  # an inference image: its own route
                spec = metadata["api_spec"]
                return self.client.services.call(service.id, spec["route"], sample, spec["method"])
            if route == "predict":
                return self.client.services.predict(service.id, sample)
            request = v2_request(metadata["inputs"], sample)
            return self.client.services.infer(service.id, service.model, request)

        started = time.perf_counter()
        answer = attempt(self.answer_status, call)
        took = (time.perf_counter() - started) * 1000
        if answer is FAILED:
            return
        text = json.dumps(answer)
        if len(text) > ANSWER_CHARS:
            text = text[:ANSWER_CHARS] + "\n…"
        self.answer_status.ok(f"answered in {took:.1f} ms (through the Workbench server)")
        self.answer.value = (
            "<pre style='font-size:11px;line-height:1.3;white-space:pre-wrap;max-height:240px;"
            f"overflow:auto;margin:2px 0'>{escape(text)}</pre>"
        )

    # --- logs -----------------------------------------------------------------------------

    def show_log(self) -> None:
        service, replica = self.selected, self.log_replica.value
        if service is None or replica is None:
            self.log_text.value = "<i>No replica runs.</i>"
            return
        logs = self.attempt(lambda: self.client.services.logs(service.id, replica=replica))
        if logs is FAILED:
            return
        text = "\n".join(log.text for log in logs) or "(empty)"
        self.log_text.value = (
            "<pre style='font-size:11px;line-height:1.3;max-height:260px;overflow:auto;"
            f"margin:2px 0'>{escape(text)}</pre>"
        )

    # --- live charts ----------------------------------------------------------------------

    def _read_metrics(self, service_id: int) -> None:
        reading = attempt(self.deploy_status, lambda: self.client.services.metrics(service_id))
        if reading is FAILED:
            return
        unread = [r for r in reading.replicas if r.error]
        if unread and len(unread) == len(reading.replicas):
            self.now.value = (
                "<small><i>Its replicas serve no Prometheus /metrics (an inference image's own "
                f"server): {escape(unread[0].error[:200])}</i></small>"
            )
            return
        if self._last is not None:
            now = rates(self._last, reading)
            self._history.append(now)
            self._draw()
            self.now.value = _now_html(now)
        self._last = reading

    def _draw(self) -> None:
        """The charts drawn again from the readings kept (no reading: empty)."""
        if self.live_chart is None:
            self.live_chart = live_chart()
            self.charts.children = (self.live_chart,)
        points = list(self._history)
        xs = [datetime.fromtimestamp(p.at).isoformat(timespec="milliseconds") for p in points]
        traces, rows = [], []
        for row, lines in enumerate(LIVE_LINES, start=1):
            for column, name, colour in lines:
                y = [getattr(p, column) for p in points]
                style = {"color": colour}
                traces.append(go.Scatter(x=xs, y=y, name=name, mode="lines", line=style))
                rows.append(row)
        with self.live_chart.drawing() as figure:
            figure.data = []
            if points:
                figure.add_traces(traces, rows=rows, cols=[1] * len(rows))


def live_chart() -> Chart:
    """Three charts over time, one above the other: request rate, latency percentiles,
    batch size and queue depth."""
    figure = make_subplots(
        rows=len(LIVE_LINES),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=LIVE_TITLES,
    )
    figure.update_layout(
        autosize=True,
        height=640,
        margin={"l": 50, "r": 10, "t": 30, "b": 30},
        legend={"orientation": "h", "y": -0.08},
    )
    figure.update_yaxes(rangemode="tozero")
    figure.update_xaxes(tickformat="%H:%M:%S")
    # no toolbar: it would cover the first title, and zooming a chart that moves on is moot
    unread = "No readings yet: the charts start with the replicas' second reading."
    return Chart(figure, unread, {"displayModeBar": False})


class SampleField(w.VBox):
    """One input of the online test, typed as the model or API takes it: text as text (a
    ``lines`` input: one sample per line), numbers as numbers, a check box for a boolean,
    JSON only for arrays and objects (a tensor)."""

    def __init__(self, name: str, kind: str, example: Any, note: str) -> None:
        self.name, self.kind = name, kind
        self.input: w.ValueWidget
        if kind == "string":
            self.input = w.Text(value="" if example is None else str(example))
        elif kind == "lines":
            lines = example if isinstance(example, list) else [example]
            self.input = w.Textarea(value="\n".join(str(x) for x in lines))
            note += " · one sample per line"
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


def _verified(version: ModelVersionInfo) -> list[str]:
    """The formats of ``version`` converted and verified."""
    return [f.format for f in version.formats if f.state == "verified"]


def _version_label(version: ModelVersionInfo) -> str:
    return f"v{version.version} · {', '.join(['native', *_verified(version)])}"


def _service_name(model: str) -> str:
    """A service name from a model's: lowercase letters, digits and dashes."""
    name = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
    return name[:63] or "service"


def _summary_html(s: ServiceInfo) -> str:
    lineage = ", ".join(
        f"{what} {value}"
        for what, value in (
            ("task", s.task_id),
            ("dataset", s.dataset_id),
            ("algorithm", s.algorithm_id),
        )
        if value is not None
    )
    options = s.options
    rows = [
        (
            "state",
            state_html(s.state)
            + (f" · {escape(s.message)}" if s.message not in ("", s.state) else ""),
        ),
        ("serves", _serves_html(s)),
        ("made by", escape(lineage or "no training task here (registered or imported)")),
        ("address", f"<code>http://{escape(s.address)}</code>" if s.address else "-"),
        (
            "callers",
            "<b>anyone</b>: its endpoint is public, on purpose (no key asked)"
            if s.public_endpoint
            else "those with its key (<code>Authorization: Bearer &lt;key&gt;</code>); "
            "New key gives one",
        ),
        ("through Jupyter", f"<code>/workbench/api/v1/{escape(s.relay)}</code>"),
        (
            "each replica",
            f"{s.cpus:g} CPU, {s.memory_mb} MiB · batches up to {options.max_batch}, "
            f"waits ≤ {options.max_delay_ms:g} ms, queue {options.max_queue}",
        ),
        ("owner", f"{escape(s.owner)} · {escape(s.visibility)}"),
    ]
    return heading_html(s.name) + table_html(["", ""], rows)


def _key_html(s: ServiceInfo, key: str) -> str:
    """The endpoint's key, shown this once, with a call that sends it."""
    route = s.api_spec["route"] if s.api_spec is not None else "/predict"
    call = (
        f"curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f"-d @sample.json http://{s.address}{route}"
    )
    return (
        "<div><b>The endpoint's key</b>, shown this once (copy it now; <i>New key</i> "
        f"replaces it): <code class='wb-service-key-value'>{escape(key)}</code><br>"
        f"<small>For example:</small> <code>{escape(call)}</code></div>"
    )


def _serves_html(s: ServiceInfo) -> str:
    version = (
        f"{escape(s.model)} v{s.version} (version id {s.model_version_id})"
        if s.model_version_id is not None
        else ""
    )
    if s.api_spec is None:
        return f"{version} as <b>{escape(s.format)}</b> ({escape(s.runtime)} runtime)"
    api = f"{escape(s.api_spec['method'])} <code>{escape(s.api_spec['route'])}</code>"
    files = f", with {version}'s files" if version else ""
    return f"algorithm {s.algorithm_id}'s <b>inference image</b>{files}; its API: {api}"


def _replicas_html(s: ServiceInfo) -> str:
    if not s.replica_states:
        return f"<i>No replica runs ({s.replicas} asked for when started).</i>"
    rows = [
        [
            f"r{r.index}",
            state_html(r.state),
            r.address or "-",
            r.run_id[:12],
        ]
        for r in s.replica_states
    ]
    return table_html(["replica", "state", "answers on", "container"], rows, "wb-replicas-table")


def _now_html(r: ServiceRates) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    batch = "-" if r.mean_batch is None else f"{r.mean_batch:.1f}"
    return (
        f"<small>last {r.seconds:.1f} s: <b>{r.request_rate:.1f} req/s</b>, "
        f"{r.error_rate:.1f} errors/s, p50 {ms(r.p50_ms)} · p95 {ms(r.p95_ms)} · p99 "
        f"{ms(r.p99_ms)} ms, mean batch {batch}, queue {r.queue_depth:.0f}, "
        f"{r.replicas} replica{'s' if r.replicas != 1 else ''} read</small>"
    )
