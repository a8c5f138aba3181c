"""What every section of the panel shares: the :class:`Section` base of a tab, the status
line, the two-click delete, and small HTML and widget helpers. The charts are in
:mod:`workbench.widgets.charts`, the polling of a running thing in
:mod:`workbench.widgets.poller`."""

from __future__ import annotations

import html
import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import ipywidgets as w

from workbench.client import WorkbenchClient
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


class Item(Protocol):
    """What a section lists: server objects with an id and a name."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Item)


class Section(w.VBox, Generic[ItemT]):
    """One tab of the panel: the list of one kind of item (datasets, workspaces, algorithms,
    training tasks...) with its filters, the status line, the forms that make or change
    items, and the details and actions of the item chosen in the list.

    **The contract of a section.** A subclass sets the class attributes

    - ``title``: the tab's title ("Datasets"); the list gets the CSS class
      ``wb-<title in lower case>-list`` (the browser tests find it by that);
    - ``noun``: one item, for the count in the status line ("dataset": "3 datasets");
    - ``deletes``: what the delete question says goes with an item (" and its files");
    - ``refresh_on_open``: True to list again each time the tab is opened (for a section
      that lists what the other tabs make);

    and implements

    - :meth:`fetch`: the list from the server, with the filters' values (:func:`chosen`);
    - :meth:`label`: an item's line in the list;
    - :meth:`render`: the details of an item; called each time the item is shown, also
      with a fresher copy of the item shown already (after an action, a refresh);
    - :meth:`remove`: the client's delete call, for :attr:`delete_button`;

    and may override :meth:`clear` (nothing chosen: the details are hidden already),
    :meth:`load_choices` (what its forms offer, fetched again by each refresh) and
    :meth:`stop_polling` (a closed panel).

    Its ``__init__`` calls ``super().__init__(client, is_admin=..., poll_interval=...)``
    first, which makes the shared widgets: :attr:`status`, :attr:`listing`,
    :attr:`refresh_button` and :attr:`delete_button` (the subclass places it among its
    details' actions). It then makes its own widgets and hands them to :meth:`arrange`:
    the filters (each wired to refresh by :meth:`watch`), the forms (an Accordion,
    :attr:`forms`) and the details box (hidden while nothing is chosen). A detail's action
    button calls :meth:`act` with a client call; a form calls :meth:`saved` with what it
    made or changed; :meth:`attempt` runs any other client call with its error shown.
    Finally the section gets its tab in ``widgets/panel.py``.
    """

    title: ClassVar[str]
    noun: ClassVar[str]
    #: what the status line suggests while the list is empty
    empty_hint: ClassVar[str] = ""
    deletes: ClassVar[str] = ""
    refresh_on_open: ClassVar[bool] = False
    #: the filters of :meth:`owned_filters`, in the sections that have them
    purpose: w.Dropdown
    mine: w.Checkbox
    search: w.Text

    def __init__(
        self,
        client: WorkbenchClient,
        *,
        is_admin: bool = False,
        poll_interval: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """``poll_interval``: seconds between two looks at something running (a task, an
        image loading), for the sections that follow one."""
        self.client = client
        self.is_admin = is_admin
        self.poll_interval = poll_interval
        #: the items listed, by id
        self.items: dict[int, ItemT] = {}
        self._lock = threading.RLock()  # the list may be refreshed by a Poller's thread
        self.status = Status()
        #: where the details' actions answer: the status line, unless the details have one
        self.action_status = self.status
        self.listing = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
        self.listing.add_class(f"wb-{self.title.lower()}-list")
        on_pick(self.listing, self.show)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.delete_button.on_click(lambda _: self.delete())
        self.forms = w.Accordion()
        self.details: w.Box = w.VBox()
        super().__init__(**kwargs)

    def arrange(
        self,
        *,
        filters: Sequence[w.Widget] = (),
        forms: Sequence[tuple[str, w.Widget]] = (),
        details: w.Box,
    ) -> None:
        """The section's layout: the filters and Refresh, the list, the status line, the
        forms (titled, all closed) and the details (hidden until an item is chosen)."""
        self._form_titles = tuple(title for title, _ in forms)
        self.forms = w.Accordion(
            children=[form for _, form in forms], titles=self._form_titles, selected_index=None
        )
        self.details = details
        details.layout.display = "none"
        self.children = [
            w.HBox([*filters, self.refresh_button], layout=wrap()),
            self.listing,
            self.status,
            self.forms,
            details,
        ]

    def watch(self, *controls: w.ValueWidget) -> None:
        """List again whenever one of the filters ``controls`` changes."""
        for control in controls:
            control.observe(lambda _: self.refresh(), names="value")

    def owned_filters(self, own: w.Dropdown) -> list[w.Widget]:
        """The filters of a list of what users own and share (datasets, models), each
        watched: :attr:`purpose`, the kind's ``own`` choice, :attr:`mine` and
        :attr:`search`; :meth:`owned_filter_values` reads them for the client."""
        self.purpose = filter_choice("Purpose", Purpose, "170px")
        self.mine = mine_only()
        self.search = search_box("140px")
        filters = [self.purpose, own, self.mine, self.search]
        self.watch(*filters)
        return filters

    def owned_filter_values(self) -> dict[str, Any]:
        """The values of :meth:`owned_filters` as the client's ``list`` takes them."""
        return {
            "purpose": chosen(self.purpose),
            "mine": self.mine.value or None,
            "q": self.search.value or None,
        }

    # --- the hooks ------------------------------------------------------------------------

    def fetch(self) -> list[ItemT]:
        """The items to list, with the filters applied (raises WorkbenchError)."""
        raise NotImplementedError

    def label(self, item: ItemT) -> str:
        raise NotImplementedError

    def render(self, item: ItemT) -> None:
        """Fill the details with ``item`` (they are visible)."""
        raise NotImplementedError

    def remove(self, item_id: int) -> None:
        """Delete the item on the server (raises WorkbenchError)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Nothing is chosen any more (the details are hidden already)."""

    def load_choices(self) -> None:
        """Fetch again what the forms offer (each refresh calls it)."""

    def stop_polling(self) -> None:
        """Stop following anything running (the panel is closed)."""

    # --- the list and the details ---------------------------------------------------------

    @property
    def selected(self) -> ItemT | None:
        value = self.listing.value
        return self.items.get(value) if value is not None else None

    def refresh(self) -> None:
        """The list again, the chosen item shown as it is now, the forms' choices fetched
        again, and the count in the status line."""
        keep = self.listing.value
        if not self.load():
            return
        if keep is not None and self.listing.value == keep:
            self.show(keep)
        self.load_choices()
        count = len(self.items)
        if count:
            self.status.ok(f"{count} {self.noun}{'' if count == 1 else 's'}")
        else:
            self.status.value = f"<i>No {escape(self.noun)}s to show. {self.empty_hint}</i>"

    def load(self) -> bool:
        """The list again, and nothing else; False when the server said no (shown)."""
        found = attempt(self.status, self.fetch)
        if found is FAILED:
            return False
        self.set_items(found)
        return True

    def set_items(self, items: Iterable[ItemT]) -> None:
        """List ``items``, keeping the chosen one chosen (without choosing it again)."""
        with self._lock:
            self.items = {item.id: item for item in items}
            options = [(self.label(item), item.id) for item in self.items.values()]
            if list(self.listing.options) != options:
                replace_options(self.listing, options, self.listing.value)

    def put(self, item: ItemT) -> None:
        """A fresh copy of ``item`` (what an action answered): its line in the list (added
        if it was not there), its details if it is the one shown."""
        self.set_items({**self.items, item.id: item}.values())
        if self.listing.value == item.id:
            self.render(item)

    def show(self, item_id: int | None) -> None:
        """Show the details of the item ``item_id`` (hide them for None)."""
        item = self.items.get(item_id) if item_id is not None else None
        self.delete_button.description = "Delete"
        if item is None:
            self.details.layout.display = "none"
            self.clear()
            return
        self.details.layout.display = ""
        self.render(item)

    def select(self, item_id: int) -> None:
        """Choose ``item_id`` in the list (which shows it), if it is listed."""
        if item_id in self.items and self.listing.value != item_id:
            self.listing.value = item_id

    # --- actions --------------------------------------------------------------------------

    def attempt(self, call: Callable[[], T]) -> T | Literal[Failed.FAILED]:
        """``call()`` with its error shown in :attr:`action_status` (:data:`FAILED`)."""
        return attempt(self.action_status, call)

    def act(self, call: Callable[[int], ItemT], done: str) -> bool:
        """An action on the chosen item: ``call(item_id)`` answers the changed item, which
        is shown, and the status says "<name> <done>". False if nothing is chosen or the
        server said no (shown)."""
        item = self.selected
        if item is None:
            return False
        fresh = self.attempt(lambda: call(item.id))
        if fresh is FAILED:
            return False
        self.put(fresh)
        self.action_status.ok(f"{item.name} {done}")
        return True

    def delete(self) -> None:
        """The two-click delete of the chosen item: the first click asks, the second
        deletes."""
        item = self.selected
        if item is None:
            return
        question = f"Click '{CONFIRM_DELETE}' to delete {escape(item.name)}{self.deletes}."
        if not confirmed(self.delete_button, self.action_status, question):
            return
        if self.attempt(lambda: self.remove(item.id)) is FAILED:
            return
        self.listing.value = None
        self.refresh()
        self.status.ok(f"deleted {item.name}")

    # --- sharing: online or not, and who sees it -------------------------------------------

    def sharing(
        self,
        publish: Callable[[int], ItemT],
        take_offline: Callable[[int], ItemT],
        update: Callable[..., ItemT],
        publish_label: str = "Publish",
    ) -> list[w.Widget]:
        """For items with a state (online or not) and a visibility: the buttons
        :attr:`publish_button`, :attr:`offline_button`, the :attr:`visibility` choice and
        its :attr:`visibility_button`, acting on the chosen item with these client calls
        (``update(item_id, visibility=...)``). The section places them among its details'
        actions and calls :meth:`show_sharing` in :meth:`render`."""
        self.publish_button = w.Button(
            description=publish_label, icon="cloud-upload", button_style="success"
        )
        self.offline_button = w.Button(description="Take offline", icon="cloud-download")
        self.visibility = w.Dropdown(
            options=visibility_choices(self.is_admin),
            description="Visibility",
            layout=w.Layout(width="200px"),
        )
        self.visibility_button = w.Button(description="Apply")
        self._update = update
        self.publish_button.on_click(lambda _: self.act(publish, "is online"))
        self.offline_button.on_click(lambda _: self.act(take_offline, "is offline"))
        self.visibility_button.on_click(lambda _: self.apply_visibility())
        return [self.publish_button, self.offline_button, self.visibility, self.visibility_button]

    def show_sharing(self, item: Any) -> None:
        """The sharing controls for ``item``: Publish or Take offline, its visibility."""
        if item.visibility in self.visibility.options:  # members are not offered preset
            self.visibility.value = item.visibility
        online = item.state == "online"
        self.publish_button.layout.display = "none" if online else ""
        self.offline_button.layout.display = "" if online else "none"

    def apply_visibility(self) -> None:
        visibility = self.visibility.value
        self.act(lambda i: self._update(i, visibility=visibility), f"is {visibility}")

    # --- forms ----------------------------------------------------------------------------

    def open_form(self, index: int, title: str) -> None:
        """Open the form ``index`` of :attr:`forms` under another ``title`` (Edit ...)."""
        titles = list(self.forms.titles)
        titles[index] = title
        self.forms.titles = tuple(titles)
        self.forms.selected_index = index

    def close_forms(self) -> None:
        """Close the forms, with their first titles back."""
        self.forms.titles = self._form_titles
        self.forms.selected_index = None

    def saved(self, item: ItemT, message: str) -> None:
        """A form made or changed ``item``: the list again with ``item`` chosen and shown
        (listed even where the filters leave it out), ``message`` in the status line."""
        self.refresh()
        if item.id not in self.items:
            self.put(item)
        self.select(item.id)
        self.status.ok(message)
