"""The Services section of the side panel (manual 2.7): publish a model version as a
service (its default serving format, or one chosen), the services with their state, a
service's details (the version, task and dataset behind it, its address, each replica),
start, stop, restart and scale (deploy jobs, followed), an online test form made from the
served model's V2 metadata (the answer and its latency), the replicas' logs, and live
charts of its request rate, latency percentiles and batch size from its replicas' metrics.

Beside it: what the publish form offers (:mod:`~workbench.widgets.service_publish`), the
online test's fields and request (:mod:`~workbench.widgets.service_samples`), the
details' HTML and live charts (:mod:`~workbench.widgets.service_views`).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import ipywidgets as w

from workbench.deployments.metrics import rates
from workbench.deployments.schemas import IMAGE_FORMAT, ServiceInfo, ServiceMetrics, ServiceRates
from workbench.jobs.states import FINISHED_JOB_STATES
from workbench.models.schemas import ModelDetail
from workbench.widgets import common
from workbench.widgets.charts import Chart
from workbench.widgets.poller import Poller
from workbench.widgets.section import Section
from workbench.widgets.service_publish import format_choices, service_name, version_choices
from workbench.widgets.service_samples import (
    SampleField,
    answer_html,
    api_fields,
    tensor_fields,
    v2_request,
)
from workbench.widgets.service_views import (
    key_html,
    live_chart,
    live_traces,
    logs_html,
    now_html,
    replicas_html,
    summary_html,
    unread_html,
)

#: readings the live charts keep (one per poll)
HISTORY = 90
#: every how many looks the shown service is read again (its replicas as they run)
LOOK_AGAIN_TICKS = 5


class ServicesSection(Section[ServiceInfo]):
    area = "services"
    empty_hint = "Publish a model version, below, to make one."
    deletes = " and its replicas (its address is freed)"
    refresh_on_open = True  # versions converted or benchmarked meanwhile

    # --- the parts ------------------------------------------------------------------------

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        return [("Publish a model version", self._build_publish_form())]

    def build_details(self) -> w.VBox:
        """The service shown, followed by :attr:`poller` (its deploy job, its replicas and
        their metrics)."""
        self._shown: int | None = None
        self._job: int | None = None
        self._ticks = 0
        self._metadata: dict[str, Any] | None = None
        #: the served model's classes, in the order of its probabilities (its evaluation's)
        self._labels: list[str] = []
        self._last: ServiceMetrics | None = None
        self._history: deque[ServiceRates] = deque(maxlen=HISTORY)
        self.poller = self.follow(Poller(self._tick, self.poll_interval))
        return w.VBox(
            [
                *self._build_service(),
                *self._build_online_test(),
                *self._build_live(),
                *self._build_logs(),
            ]
        )

    def _build_publish_form(self) -> w.VBox:
        """Publish a version, or an algorithm's inference image (manual 2.7.1)."""
        source = self._build_publish_source()
        self.new_name = w.Text(description="Name", placeholder="lowercase-with-dashes")
        self._suggested_name = ""
        self.new_replicas = w.BoundedIntText(value=1, min=0, max=32, description="Replicas")
        self.new_cpus = w.BoundedFloatText(
            value=1.0, min=0.1, max=64, step=0.5, description="CPUs each"
        )
        self.new_memory = w.BoundedIntText(
            value=1024, min=128, max=1024 * 1024, step=256, description="MiB each"
        )
        self.new_visibility = w.Dropdown(options=self.visibilities, description="Visibility")
        self.new_public = w.Checkbox(
            value=False, description="Public endpoint: anyone may call it, without a key"
        )
        self.new_public.add_class("wb-service-public")
        self.publish_button = common.button(
            "Publish", "service-publish", self.publish, icon="cloud-upload", button_style="success"
        )
        self.publish_status = common.Status()
        return w.VBox(
            [
                *source,
                self.new_name,
                w.HBox([self.new_replicas, self.new_cpus], layout=common.wrap()),
                w.HBox([self.new_memory, self.new_visibility], layout=common.wrap()),
                self.new_public,
                self.publish_button,
                self.publish_status,
            ]
        )

    def _build_publish_source(self) -> list[w.Widget]:
        """What is published: a version (model, version, format) or an algorithm's image."""
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
        common.on_pick(self.pick_algorithm, lambda _: self._name_after_algorithm())
        self.pick_model = w.Dropdown(description="Model", layout=w.Layout(width="330px"))
        self.pick_version = w.Dropdown(description="Version", layout=w.Layout(width="330px"))
        self.pick_format = w.Dropdown(description="Format", layout=w.Layout(width="330px"))
        common.on_pick(self.pick_model, lambda _: self._offer_versions())
        common.on_pick(self.pick_version, lambda _: self._offer_formats())
        self._model_detail: ModelDetail | None = None
        #: the chosen version's algorithm (whose inference image the form may offer)
        self._algorithm_id: int | None = None
        return [
            self.serve_from,
            self.pick_algorithm,
            self.pick_model,
            self.pick_version,
            self.pick_format,
        ]

    def _build_service(self) -> list[w.Widget]:
        """A service: summary, replicas and their actions, its key, what they answer."""
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
        self.rotate_button = common.button(
            "New key", "service-rotate-key", self.rotate_key, icon="key"
        )
        #: the endpoint's key, shown once: after the service is made or its key rotated
        self.key_box = w.HTML()
        self.key_box.add_class("wb-service-key")
        self.deploy_status = common.Status(css="service-deploy-status")
        self.action_status = self.deploy_status
        actions = w.HBox(
            [
                self.start_button,
                self.stop_button,
                self.restart_button,
                self.scale_to,
                self.scale_button,
                self.rotate_button,
                self.delete_button,
            ],
            layout=common.wrap(),
        )
        return [self.summary, self.replica_table, actions, self.key_box, self.deploy_status]

    def _build_online_test(self) -> list[w.Widget]:
        """The online test: its inputs (made from the model's metadata), Send, the answer."""
        self.test_inputs = w.VBox()
        self.route = w.ToggleButtons(
            options=[("simple /predict", "predict"), ("V2 infer", "infer")],
            value="predict",
            style={"button_width": "120px"},
        )
        self.send_button = common.button(
            "Send", "service-send", self.send, icon="paper-plane", button_style="primary"
        )
        self.answer_status = common.Status(css="service-answer-status")
        self.answer = w.HTML()
        self.answer.add_class("wb-service-answer")
        self.send_row = w.HBox([self.route, self.send_button], layout=common.wrap())
        self.test_box = w.VBox([self.test_inputs, self.send_row, self.answer_status, self.answer])
        return [w.HTML("<b>Test it online</b>"), self.test_box]

    def _build_live(self) -> list[w.Widget]:
        """The latest reading and the live charts."""
        self.now = w.HTML()
        self.now.add_class("wb-service-now")
        #: the live charts, made when a service is first shown: a panel that shows none
        #: sends none
        self.live_chart: Chart | None = None
        self.charts = w.Box(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.charts.add_class("wb-service-charts")
        return [w.HTML("<b>Live</b> (from its replicas' metrics)"), self.now, self.charts]

    def _build_logs(self) -> list[w.Widget]:
        """The replicas' logs: a replica, Show log, the log."""
        self.log_replica = w.Dropdown(description="Replica", layout=w.Layout(width="160px"))
        self.log_button = w.Button(description="Show log", icon="file-text-o")
        self.log_button.on_click(lambda _: self.show_log())
        self.log_text = w.HTML()
        self.log_text.add_class("wb-service-log")
        picked = w.HBox([self.log_replica, self.log_button], layout=common.wrap())
        return [w.HTML("<b>Logs</b>"), picked, self.log_text]

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
            self._shown, self._metadata, self._last, self._labels = s.id, None, None, []
            self._history.clear()
            self._draw()
            self.test_inputs.children = ()
            self.answer.value = self.answer_status.value = ""
            self.log_text.value = self.now.value = self.key_box.value = ""
            self.scale_to.value = max(1, s.replicas)
            self._job = s.job_id if s.state == "deploying" else None
        self.summary.value = summary_html(s)
        self.replica_table.value = replicas_html(s)
        replicas = [(f"r{r.index}", r.index) for r in s.replica_states]
        keep = self.log_replica.value
        common.replace_options(self.log_replica, replicas, keep if keep is not None else 0)
        running = s.state == "running"
        self.start_button.disabled = running and len(s.replica_states) >= s.replicas > 0
        self.stop_button.disabled = s.state == "stopped"
        serving = any(r.state == "running" for r in s.replica_states)
        if serving and self._metadata is None:
            self._load_form(s)
        elif not serving:  # stopped, or not started yet: no form, answer or live charts
            self._metadata, self._last, self.send_row.layout.display = None, None, "none"
            self.now.value = self.answer.value = self.answer_status.value = ""
            self.test_inputs.children = (
                w.HTML(f"<i>The form appears when a replica runs ({common.escape(s.state)}).</i>"),
            )
            if self._history:
                self._history.clear()
                self._draw()
        self.poller.start()

    def clear(self) -> None:
        self._shown = None
        self.poller.stop()

    def load_choices(self) -> None:
        algorithms = common.attempt(self.publish_status, self.client.algorithms.list)
        if algorithms is not common.FAILED:  # those whose inference image is loaded
            ready = [a for a in algorithms if a.predict.state == "ready"]
            served = [(f"{a.name} ({a.owner})", a.id) for a in ready]
            self._algorithm_names = {a.id: a.name for a in ready}
            common.replace_options(self.pick_algorithm, served, self.pick_algorithm.value)
            if self.pick_algorithm.value is None and served:
                self.pick_algorithm.value = served[0][1]
        models = common.attempt(self.publish_status, self.client.models.list)
        if models is common.FAILED:
            return
        options = [(f"{m.name} ({m.owner})", m.id) for m in models if m.latest_version is not None]
        common.replace_options(self.pick_model, options, self.pick_model.value)
        if self.pick_model.value is None and options:
            self.pick_model.value = options[0][1]

    # --- publish --------------------------------------------------------------------------

    def _offer_versions(self) -> None:
        model_id = self.pick_model.value
        self._model_detail = None
        if model_id is None:
            common.replace_options(self.pick_version, [], None)
            return
        detail = common.attempt(self.publish_status, lambda: self.client.models.get(model_id))
        if detail is common.FAILED:
            return
        self._model_detail = detail
        options, chosen = version_choices(detail)
        common.replace_options(self.pick_version, options, chosen)
        self._suggest_name(detail.name)
        self._offer_formats()

    def _suggest_name(self, name: str) -> None:
        """The service named after what it serves, unless the user typed a name."""
        if self.new_name.value in ("", self._suggested_name):
            self.new_name.value = self._suggested_name = service_name(name)

    def _offer_formats(self) -> None:
        detail = self._model_detail
        version = (
            next((v for v in detail.versions if v.id == self.pick_version.value), None)
            if detail is not None
            else None
        )
        if version is None:
            common.replace_options(self.pick_format, [], None)
            return
        options = format_choices(version)
        algorithm_id = version.algorithm_id
        if algorithm_id is not None:  # trained by an algorithm: its inference image too
            algorithm = common.attempt(
                self.publish_status, lambda: self.client.algorithms.get(algorithm_id)
            )
            if algorithm is not common.FAILED and algorithm.predict.state == "ready":
                options.append((f"{algorithm.name}'s inference image", IMAGE_FORMAT))
        self._algorithm_id = algorithm_id
        common.replace_options(self.pick_format, options, "")

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
        made = common.attempt(
            self.publish_status,
            lambda: self.client.services.create(name, version_id, wait=False, **options),
        )
        if made is common.FAILED:
            return
        self.publish_status.ok(f"{made.name}: deploy job {made.job_id} queued")
        self.new_name.value = ""
        self.close_forms()
        self.saved(made, f"published {made.name}; its deploy is followed below")
        if made.key:
            self.key_box.value = key_html(made, made.key)

    def rotate_key(self) -> None:
        """A new key for the chosen service's endpoint, shown here this once."""
        service = self.selected
        if service is None:
            return
        key = common.attempt(
            self.deploy_status, lambda: self.client.services.rotate_key(service.id)
        )
        if key is common.FAILED:
            return
        self.key_box.value = key_html(service, key)
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
        self._ticks += 1
        if self._job is not None:
            self._follow_job(service.id, self._job)
        elif self._ticks % LOOK_AGAIN_TICKS == 0:
            self._look_again(service)
        fresh = self.selected
        serving = fresh is not None and any(r.state == "running" for r in fresh.replica_states)
        if serving and self._metadata is None:
            self._load_form(fresh)  # its endpoint did not answer the last time
        if fresh is not None and fresh.replica_states:
            self._read_metrics(service.id)
        return True

    def _look_again(self, shown: ServiceInfo) -> None:
        """The service as it runs now, shown if it changed: the list's counts and the
        replica table follow a replica that died, was replaced or came up, unclicked."""
        fresh = common.attempt(self.deploy_status, lambda: self.client.services.get(shown.id))
        if fresh is common.FAILED:
            return
        with self._lock:  # not a service deleted meanwhile back into the list
            changed = (fresh.state, fresh.replica_states) != (shown.state, shown.replica_states)
            if changed and self.listing.value == shown.id:
                self.put(fresh)

    def _follow_job(self, service_id: int, job_id: int) -> None:
        job = self.attempt(lambda: self.client.jobs.get(job_id))
        if job is common.FAILED:
            self._job = None
            return
        if job.state not in FINISHED_JOB_STATES:
            message = common.escape(job.message)
            self.deploy_status.value = f"deploy job {job_id} {job.state}: {message}"
            return
        self._job = None
        fresh = self.attempt(lambda: self.client.services.get(service_id))
        if fresh is not common.FAILED:
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
            fields = api_fields(spec["params"])
            self.route.layout.display = "none"
        else:
            metadata = common.attempt(
                self.answer_status, lambda: self.client.services.metadata(s.id, s.model)
            )
            if metadata is common.FAILED:
                return
            self._metadata = metadata
            fields = tensor_fields(metadata["inputs"])
            self._labels = self._classes(s.model_version_id)
            self.route.layout.display = ""
        self.answer_status.value, self.send_row.layout.display = "", ""
        self.test_inputs.children = tuple(fields)

    def _classes(self, version_id: int | None) -> list[str]:
        """The classes of the version's evaluation, in the order of its probabilities."""
        if version_id is None:
            return []
        version = common.attempt(self.answer_status, lambda: self.client.models.version(version_id))
        evaluation = None if version is common.FAILED else version.evaluation
        return list(evaluation.labels) if evaluation else []

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
        answer = common.attempt(self.answer_status, call)
        took = (time.perf_counter() - started) * 1000
        if answer is common.FAILED:
            return
        self.answer_status.ok(f"answered in {took:.1f} ms (through the Workbench server)")
        self.answer.value = answer_html(answer, self._labels)

    # --- logs -----------------------------------------------------------------------------

    def show_log(self) -> None:
        service, replica = self.selected, self.log_replica.value
        if service is None or replica is None:
            self.log_text.value = "<i>No replica runs.</i>"
            return
        logs = self.attempt(lambda: self.client.services.logs(service.id, replica=replica))
        if logs is common.FAILED:
            return
        self.log_text.value = logs_html(logs)

    # --- live charts ----------------------------------------------------------------------

    def _read_metrics(self, service_id: int) -> None:
        reading = common.attempt(
            self.deploy_status, lambda: self.client.services.metrics(service_id)
        )
        if reading is common.FAILED:
            return
        unread = [r for r in reading.replicas if r.error]
        if unread and len(unread) == len(reading.replicas):
            self.now.value = unread_html(unread[0].error)
            return
        if self._last is not None:
            now = rates(self._last, reading)
            self._history.append(now)
            self._draw()
            self.now.value = now_html(now)
        self._last = reading

    def _draw(self) -> None:
        """The charts drawn again from the readings kept (no reading: empty)."""
        if self.live_chart is None:
            self.live_chart = live_chart()
            self.charts.children = (self.live_chart,)
        points = list(self._history)
        traces, rows = live_traces(points)
        with self.live_chart.drawing() as figure:
            figure.data = []
            if points:
                figure.add_traces(traces, rows=rows, cols=[1] * len(rows))
