"""Pieces every section of the panel shares."""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as w

from workbench.errors import WorkbenchError

#: a row of controls that wraps in a narrow sidebar
WRAP = w.Layout(flex_flow="row wrap", align_items="center")
CONFIRM_DELETE = "Confirm delete"
#: the colour of a state in lists and summaries
STATE_COLOURS = {
    "ready": "#1b5e20",
    "online": "#1b5e20",
    "succeeded": "#1b5e20",
    "running": "#0d47a1",
    "loading": "#0d47a1",
    "queued": "#6a1b9a",
    "failed": "#b71c1c",
    "stopped": "#e65100",
    "offline": "#e65100",
}


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


class Status(w.HTML):
    """One line telling the user what happened, errors in red with what to do."""

    def ok(self, text: str) -> None:
        self.value = f"<span style='color:#1b5e20'>{escape(text)}</span>"

    def error(self, exc: WorkbenchError) -> None:
        self.value = f"<span style='color:#b71c1c'><b>{exc.code}</b>: {escape(exc.message)}</span>"

    def problem(self, text: str) -> None:
        """A mistake the panel itself catches, before asking the server."""
        self.value = f"<span style='color:#b71c1c'>{escape(text)}</span>"


class Poller:
    """Calls ``tick`` every ``interval`` seconds for as long as it returns True, so the panel
    follows the server (a training run's state, log and metrics) while the kernel stays free
    for clicks. ``tick`` shows its own errors.

    In a kernel the calls run on its event loop, between the messages from the browser: a
    widget changed from another thread while the kernel applies the browser's changes to it
    can lose the change (plotly's FigureWidget then stops drawing). Without a running loop
    (a plain Python process, where no browser talks back) they run on a daemon thread.
    """

    def __init__(self, tick: Callable[[], bool], interval: float) -> None:
        self.tick = tick
        self.interval = interval
        self._lock = threading.Lock()
        #: bumped by every start and stop: a scheduled call of an older round does nothing
        self._round = 0
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return self._handle is not None or (thread is not None and thread.is_alive())

    def start(self) -> None:
        """Start polling unless it already runs (a second start is a no-op)."""
        with self._lock:
            if self.running:
                return
            self._round += 1
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._thread = threading.Thread(
                    target=self._run_thread, args=(self._round,), daemon=True
                )
                self._thread.start()
            else:
                self._handle = loop.call_later(self.interval, self._run_once, loop, self._round)

    def stop(self) -> None:
        with self._lock:
            self._round += 1
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._thread = None

    def _current(self, round_: int) -> bool:
        return round_ == self._round

    def _run_once(self, loop: asyncio.AbstractEventLoop, round_: int) -> None:
        if not self._current(round_):
            return
        more = False
        try:
            more = self.tick()
        finally:  # an error ends the polling; the next start begins it again
            with self._lock:
                if self._current(round_):
                    self._handle = (
                        loop.call_later(self.interval, self._run_once, loop, round_)
                        if more
                        else None
                    )

    def _run_thread(self, round_: int) -> None:
        try:
            while True:
                time.sleep(self.interval)
                if not self._current(round_) or not self.tick():
                    return
        finally:
            with self._lock:
                if self._current(round_):
                    self._thread = None
