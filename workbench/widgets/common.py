"""What every section of the panel shares: the status line, the two-click delete, and small
HTML and widget helpers. The :class:`~workbench.widgets.section.Section` base of a tab is
in :mod:`workbench.widgets.section`, the charts in :mod:`workbench.widgets.charts`, the
polling of a running thing in :mod:`workbench.widgets.poller`."""

from __future__ import annotations

import html
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar

import ipywidgets as w

from workbench.enums import SUB_PURPOSES, Purpose, Visibility
from workbench.errors import WorkbenchError

#: a row of controls that wraps in a narrow sidebar
CONFIRM_DELETE = "Confirm delete"
#: the value of a filter that filters nothing
ALL = "all"
#: the colour of a state in lists and summaries
STATE_COLOURS = {
    "ready": "#1b5e20",
    "online": "#1b5e20",
    "succeeded": "#1b5e20",
    "verified": "#1b5e20",
    "running": "#0d47a1",
    "converting": "#0d47a1",
    "loading": "#0d47a1",
    "queued": "#6a1b9a",
    "failed": "#b71c1c",
    "stopped": "#e65100",
    "offline": "#e65100",
}

T = TypeVar("T")


def confirmed(button: w.Button, status: w.HTML, question: str) -> bool:
    """The two-click delete: the first click arms ``button`` and asks ``question`` in
    ``status``; the second disarms it and says yes."""
    if button.description != CONFIRM_DELETE:
        button.description = CONFIRM_DELETE
        status.value = question
        return False
    button.description = "Delete"
    return True


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def heading_html(name: str, description: str = "") -> str:
    """An item's name as the title of its details, its description under it."""
    desc = f"<div>{escape(description)}</div>" if description else ""
    return f"<h3 style='margin:4px 0'>{escape(name)}</h3>{desc}"


def state_html(state: str) -> str:
    colour = STATE_COLOURS.get(state, "var(--jp-ui-font-color2, #555)")
    return f"<b style='color:{colour}'>{escape(state)}</b>"


def size_text(size: int) -> str:
    """Bytes for people: 973.6 MB, 12.0 kB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def table_html(headers: Sequence[str], rows: Iterable[Sequence[str]], css_class: str = "") -> str:
    """A small table; cells are HTML already (escape text before passing it)."""
    head = "".join(f"<th style='text-align:left;padding:1px 6px'>{h}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:1px 6px'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f"<table class='{css_class}' style='font-size:12px;border-collapse:collapse'>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def plain(value: object) -> str:
    """A value as people type it: true/false for a bool, JSON for lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


Choice = w.Select | w.Dropdown


def on_pick(choice: Choice, handler: Callable[[Any], None]) -> None:
    """Call ``handler(value)`` when another value is picked, but not for the values a
    selection passes through while :func:`replace_options` swaps its options."""

    def changed(change: dict[str, Any]) -> None:
        if not getattr(choice, "_wb_replacing", False):
            handler(change["new"])

    choice.observe(changed, names="value")
    choice._wb_on_pick = [*getattr(choice, "_wb_on_pick", []), handler]


def replace_options(choice: Choice, options: Sequence[tuple[str, Any]], keep: Any) -> None:
    """New options, with ``keep`` still picked if it is one of them (else nothing is).
    Setting options alone picks the first one; the handlers of :func:`on_pick` hear only
    the end result, and only when it differs from the pick before."""
    before = choice.value
    choice._wb_replacing = True
    try:
        choice.options = list(options)
        values = [value for _, value in options]
        choice.index = values.index(keep) if keep in values else None
    finally:
        choice._wb_replacing = False
    if choice.value != before:
        for handler in getattr(choice, "_wb_on_pick", []):
            handler(choice.value)


def filter_choice(description: str, options: Iterable[str], width: str) -> w.Dropdown:
    """A filter of a section's list: ``all`` (no filter), then ``options``."""
    return w.Dropdown(
        options=[ALL, *options], value=ALL, description=description, layout=w.Layout(width=width)
    )


def chosen(choice: Choice) -> Any:
    """A filter's value for the client: None for ``all``."""
    return None if choice.value == ALL else choice.value


def mine_only() -> w.Checkbox:
    return w.Checkbox(
        value=False, description="Mine only", indent=False, layout=w.Layout(width="100px")
    )


def search_box(width: str) -> w.Text:
    """A search field that filters when Enter is pressed or it loses the focus."""
    return w.Text(placeholder="search", continuous_update=False, layout=w.Layout(width=width))


def progress_bar(description: str, width: str, *, hidden: bool = False) -> w.IntProgress:
    """A bar from 0 to 100 (percent done); ``hidden`` until the work it follows starts."""
    layout = w.Layout(width=width, display="none" if hidden else None)
    return w.IntProgress(value=0, min=0, max=100, description=description, layout=layout)


def visibility_choices(is_admin: bool) -> list[Visibility]:
    """Only admins may mark something preset, so only they are offered it."""
    return [v for v in Visibility if is_admin or v is not Visibility.PRESET]


def offer_sub_purposes(purpose: w.Dropdown, sub_purpose: w.Dropdown) -> None:
    """The sub-purposes of the chosen purpose in ``sub_purpose``, the current one kept where
    it is one of them (else the first)."""
    choices = list(SUB_PURPOSES[Purpose(purpose.value)])
    keep = sub_purpose.value
    sub_purpose.options = choices
    sub_purpose.value = keep if keep in choices else choices[0]


@contextmanager
def picked_file(upload: w.FileUpload, typed: w.Text) -> Iterator[Path | None]:
    """The file to send: the one given to the ``upload`` button (written to a temporary
    folder for the time of the ``with``; the button is cleared after a block that did not
    raise), else the path on the server ``typed``, else None."""
    if upload.value:
        item = upload.value[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(item["name"]).name
            path.write_bytes(item["content"])
            yield path
        upload.value = ()
    elif typed.value.strip():
        yield Path(typed.value.strip()).expanduser()
    else:
        yield None


class Status(w.HTML):
    """One line telling the user what happened, errors in red with what to do."""

    def __init__(self, *, css: str = "", **kwargs: Any) -> None:
        """``css``: the line's CSS class is ``wb-<css>`` (what the browser tests find it by)."""
        super().__init__(**kwargs)
        if css:
            self.add_class(f"wb-{css}")

    def ok(self, text: str) -> None:
        self.value = f"<span style='color:#1b5e20'>{escape(text)}</span>"

    def error(self, exc: WorkbenchError) -> None:
        self.value = f"<span style='color:#b71c1c'><b>{exc.code}</b>: {escape(exc.message)}</span>"

    def problem(self, text: str) -> None:
        """A mistake the panel itself catches, before asking the server."""
        self.value = f"<span style='color:#b71c1c'>{escape(text)}</span>"


class Failed(Enum):
    """What :func:`attempt` answers for a call that raised (its error is shown already)."""

    FAILED = "failed"


FAILED = Failed.FAILED


def name_for_css(prefix: str, widgets: dict[str, w.DOMWidget]) -> None:
    """Give each widget the CSS class ``wb-<prefix>-<name>`` (what the browser tests and
    the panel's style find it by)."""
    for name, widget in widgets.items():
        widget.add_class(f"wb-{prefix}-{name}")


def button(description: str, css: str, on_click: Callable[[], None], **kwargs: Any) -> w.Button:
    """A button with the CSS class ``wb-<css>`` that calls ``on_click()``; ``kwargs`` are
    the Button's own (``icon``, ``button_style``)."""
    made = w.Button(description=description, **kwargs)
    made.add_class(f"wb-{css}")
    made.on_click(lambda _: on_click())
    return made


def wrap() -> w.Layout:
    """The layout of a row that wraps: a new one each time, since a widget shown or hidden
    sets its own layout's ``display``, and a layout shared by every row would hide them
    all (the Workspaces tab's invitations, when none were pending, hid every row of the
    panel)."""
    return w.Layout(flex_flow="row wrap", align_items="center")


def attempt(status: Status, call: Callable[[], T]) -> T | Literal[Failed.FAILED]:
    """``call()``, or :data:`FAILED` with its Workbench error shown in ``status``."""
    try:
        return call()
    except WorkbenchError as exc:
        status.error(exc)
        return FAILED
