"""The Algorithms section of the side panel (manual 2.2): the library with filters, an
algorithm's details (training and inference settings, each image's state), the create and
edit form (:mod:`workbench.widgets.algorithm_forms`), its images
(:mod:`workbench.widgets.algorithm_images`: a workspace's ``docker_image/`` tar checked
before it is used, a tar upload with a progress bar, or a pull), online/offline,
visibility and delete."""

from __future__ import annotations

import shlex

import ipywidgets as w

from workbench.algorithms.schemas import AlgorithmInfo
from workbench.enums import Purpose
from workbench.widgets import common
from workbench.widgets.algorithm_forms import AlgorithmForm
from workbench.widgets.algorithm_images import ImagesBox, image_html
from workbench.widgets.section import Section


class AlgorithmsSection(Section[AlgorithmInfo]):
    area = "algorithms"
    empty_hint = "New algorithm, below, makes one from a workspace's docker_image/ tars."
    deletes = " and its images"
    refresh_on_open = True  # it lists the images that workspaces build

    # --- the parts ------------------------------------------------------------------------

    def build_filters(self) -> list[w.Widget]:
        self.show_only = common.filter_choice("Show", ["mine", "public", "preset"], "160px")
        self.purpose = common.filter_choice("Purpose", Purpose, "170px")
        self.state = common.filter_choice("State", ["draft", "online", "offline"], "170px")
        self.search = common.search_box("130px")
        filters = [self.show_only, self.purpose, self.state, self.search]
        self.watch(*filters)
        return filters

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        self.form = AlgorithmForm(self.client, self._saved, self.visibilities)
        return [("New algorithm", self.form)]

    def build_details(self) -> w.VBox:
        """An algorithm: its summary and sharing, Edit, its settings and images."""
        self.summary = w.HTML()
        algorithms = self.client.algorithms
        sharing = self.sharing(
            algorithms.publish,
            algorithms.take_offline,
            algorithms.update,
            publish_label="Put online",
        )
        self.publish_button.add_class("wb-algo-publish")
        self.edit_button = w.Button(description="Edit", icon="pencil")
        self.edit_button.on_click(lambda _: self.edit())
        sharing.insert(2, self.edit_button)
        self.settings = w.HTML()
        self.images = ImagesBox(self.client, self._image_changed, self.poll_interval)
        self.follow(self.images.poller)
        return w.VBox(
            [
                self.summary,
                w.HBox([*sharing, self.delete_button], layout=common.wrap()),
                self.settings,
                self.images,
            ]
        )

    @property
    def form_box(self) -> w.Accordion:
        """The accordion of the form (the Section's ``forms``)."""
        return self.forms

    # --- the Section hooks ----------------------------------------------------------------

    def fetch(self) -> list[AlgorithmInfo]:
        return self.client.algorithms.list(
            visibility=common.chosen(self.show_only),
            purpose=common.chosen(self.purpose),
            state=common.chosen(self.state),
            q=self.search.value or None,
        )

    def label(self, algo: AlgorithmInfo) -> str:
        return (
            f"#{algo.id} {algo.name} · {algo.purpose}/{algo.sub_purpose} · {algo.state} · "
            f"{algo.visibility} · {algo.owner}"
        )

    def render(self, algo: AlgorithmInfo) -> None:
        self.summary.value = summary_html(algo)
        self.settings.value = settings_html(algo)
        self.show_sharing(algo)
        self.images.show(algo)

    # --- actions --------------------------------------------------------------------------

    def edit(self) -> None:
        algo = self.selected
        if algo is None:
            return
        self.form.load(algo)
        self.open_form(0, f"Edit {algo.name}")

    def _saved(self, algo: AlgorithmInfo, created: bool) -> None:
        self.close_forms()
        self.saved(
            algo,
            f"created {algo.name} (#{algo.id}); give it its images below"
            if created
            else f"saved {algo.name}",
        )

    def _image_changed(self, algo: AlgorithmInfo) -> None:
        if self.listing.value == algo.id:
            self.items[algo.id] = algo
            self.summary.value = summary_html(algo)
            self.settings.value = settings_html(algo)


# --- HTML views ---------------------------------------------------------------------------


def summary_html(algo: AlgorithmInfo) -> str:
    facts = " · ".join(
        [
            f"{algo.purpose}/{algo.sub_purpose}",
            algo.visibility,
            f"owner {algo.owner}",
        ]
    )
    return (
        f"{common.heading_html(algo.name, algo.description)}"
        f"<div>state {common.state_html(algo.state)} · "
        f"<span style='color:var(--jp-ui-font-color2, #555)'>{common.escape(facts)}</span></div>"
    )


def settings_html(algo: AlgorithmInfo) -> str:
    """Both images: how they run, their parameters, the API spec, and where they stand."""
    parts = []
    for title, image in (("Training", algo.train), ("Inference", algo.predict)):
        s = image.settings
        command = f"<code>{common.escape(shlex.join(s.command))}</code>" if s.command else "its own"
        args = f"<code>{common.escape(shlex.join(s.args))}</code>" if s.args else "its own"
        run = f"command {command} · arguments {args} · {s.device.upper()}"
        params = (
            common.table_html(
                ["parameter", "type", "default", "description"],
                [
                    [
                        f"<code>{common.escape(name)}</code>",
                        spec.type,
                        common.escape("" if spec.default is None else common.plain(spec.default)),
                        common.escape(spec.description),
                    ]
                    for name, spec in s.env.items()
                ],
            )
            if s.env
            else "<div><i>no parameters</i></div>"
        )
        api = ""
        if s.api_spec is not None:
            route = common.escape(s.api_spec.route)
            api = f"<div>API <code>{s.api_spec.method} {route}</code></div>"
            if s.api_spec.params:
                api += common.table_html(
                    ["input", "type", "required", "example", "description"],
                    [
                        [
                            f"<code>{common.escape(p.name)}</code>",
                            p.type,
                            "yes" if p.required else "no",
                            common.escape("" if p.example is None else common.plain(p.example)),
                            common.escape(p.description),
                        ]
                        for p in s.api_spec.params
                    ],
                )
        parts.append(
            f"<div style='margin-top:6px'><b>{title}</b> · {run}</div>{params}{api}"
            f"{image_html(image)}"
        )
    return "".join(parts)
