"""The :class:`Section` base of a tab of the panel: the list of one kind of item with its
filters, the status line, the forms that make or change items and the details of the one
chosen, built from the hooks each section implements. The small widgets and helpers it
uses are in :mod:`workbench.widgets.common`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.enums import Purpose
from workbench.widgets.common import (
    CONFIRM_DELETE,
    FAILED,
    Failed,
    Status,
    attempt,
    chosen,
    confirmed,
    escape,
    filter_choice,
    mine_only,
    on_pick,
    replace_options,
    search_box,
    visibility_choices,
    wrap,
)
from workbench.widgets.poller import Poller

T = TypeVar("T")


#: a listed item's id: a number, or a name (a cluster's node)
ItemId = int | str


class Item(Protocol):
    """What a section lists: server objects with an id and a name."""

    @property
    def id(self) -> ItemId: ...

    @property
    def name(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Item)


class Section(w.VBox, Generic[ItemT]):
    """One tab of the panel: the list of one kind of item (datasets, workspaces, algorithms,
    training tasks...) with its filters, the status line, the forms that make or change
    items, and the details and actions of the item chosen in the list.

    **The contract of a section.** A subclass sets the class attributes

    - ``area``: the client's area of the items (``"datasets"``: ``client.datasets``),
      whose ``delete`` the :attr:`delete_button` calls (through :meth:`remove`); it names
      the tab (its :attr:`title`, "Datasets") and the list's CSS class
      (``wb-datasets-list``: the browser tests find it by that);
    - ``noun``, where one item is not the area less its "s": for the count in the status
      line ("training task": "3 training tasks");
    - ``deletes``: what the delete question says goes with an item (" and its files");
    - ``refresh_on_open``: True to list again each time the tab is opened (for a section
      that lists what the other tabs make);

    and implements

    - :meth:`build_details`: the details box (hidden while nothing is chosen), which
      places :attr:`delete_button` among its actions;
    - :meth:`fetch`: the list from the server, with the filters' values (:func:`chosen`);
    - :meth:`label`: an item's line in the list;
    - :meth:`render`: the details of an item; called each time the item is shown, also
      with a fresher copy of the item shown already (after an action, a refresh);

    and may implement :meth:`build_filters` (each wired to refresh by :meth:`watch`),
    :meth:`build_forms` (titled, in an Accordion: :attr:`forms`), :meth:`build_header`
    (above the filters) and override :meth:`clear` (nothing chosen: the details are
    hidden already) and :meth:`load_choices` (what its forms offer, fetched again by each
    refresh).

    ``__init__`` makes the shared widgets (:attr:`status`, :attr:`listing`,
    :attr:`refresh_button`, :attr:`delete_button`), then calls the ``build_`` hooks in the
    order filters, forms, details, header, and lays out what they answer. A detail's
    action button calls :meth:`act` with a client call; a form calls :meth:`saved` with
    what it made or changed; :meth:`attempt` runs any other client call with its error
    shown; a section that follows something running hands its pollers to :meth:`follow`
    (the closed panel stops them). Finally the section gets its tab in
    ``widgets/panel.py``.
    """

    area: ClassVar[str]
    #: the tab's title: the area's name
    title: ClassVar[str]
    #: one item
    noun: ClassVar[str]
    #: how many lines of the list are shown
    list_rows: ClassVar[int] = 6
    #: what the status line suggests while the list is empty
    empty_hint: ClassVar[str] = ""
    deletes: ClassVar[str] = ""
    refresh_on_open: ClassVar[bool] = False
    #: the filters of :meth:`owned_filters`, in the sections that have them
    purpose: w.Dropdown
    mine: w.Checkbox
    search: w.Text

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A section's title, and its noun unless it names one, come from its area."""
        super().__init_subclass__(**kwargs)
        cls.title = cls.area.capitalize()
        if "noun" not in cls.__dict__:
            cls.noun = cls.area.removesuffix("s")

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
        #: the visibilities this user may give things (only admins preset)
        self.visibilities = visibility_choices(is_admin)
        self.poll_interval = poll_interval
        #: the items listed, by id
        self.items: dict[ItemId, ItemT] = {}
        self._lock = threading.RLock()  # the list may be refreshed by a Poller's thread
        self.status = Status()
        #: where the details' actions answer: the status line, unless the details have one
        self.action_status = self.status
        self.listing = w.Select(options=[], rows=self.list_rows, layout=w.Layout(width="100%"))
        self.listing.add_class(f"wb-{self.area}-list")
        on_pick(self.listing, self.show)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.delete_button.on_click(lambda _: self.delete())
        self._pollers: list[Poller] = []
        super().__init__(**kwargs)
        filters = self.build_filters()
        forms = self.build_forms()
        self._form_titles = tuple(title for title, _ in forms)
        #: the forms, titled, all closed
        self.forms = w.Accordion(
            children=[form for _, form in forms], titles=self._form_titles, selected_index=None
        )
        #: the details of the item chosen, hidden until one is
        self.details = self.build_details()
        self.details.layout.display = "none"
        self.children = [
            *self.build_header(),
            w.HBox([*filters, self.refresh_button], layout=wrap()),
            self.listing,
            self.status,
            self.forms,
            self.details,
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

    def build_filters(self) -> list[w.Widget]:
        """The filters of the list, left of Refresh (each :meth:`watch`-ed)."""
        return []

    def build_forms(self) -> list[tuple[str, w.Widget]]:
        """The forms that make or change items, each with its title."""
        return []

    def build_details(self) -> w.Box:
        """The details of the item chosen, with its actions."""
        raise NotImplementedError

    def build_header(self) -> list[w.Widget]:
        """What stands above the filters."""
        return []

    def fetch(self) -> list[ItemT]:
        """The items to list, with the filters applied (raises WorkbenchError)."""
        raise NotImplementedError

    def label(self, item: ItemT) -> str:
        raise NotImplementedError

    def render(self, item: ItemT) -> None:
        """Fill the details with ``item`` (they are visible)."""
        raise NotImplementedError

    def remove(self, item_id: ItemId) -> None:
        """Delete the item on the server (raises WorkbenchError)."""
        getattr(self.client, self.area).delete(item_id)

    def clear(self) -> None:
        """Nothing is chosen any more (the details are hidden already)."""

    def load_choices(self) -> None:
        """Fetch again what the forms offer (each refresh calls it)."""

    def follow(self, poller: Poller) -> Poller:
        """``poller``, which :meth:`stop_polling` will stop."""
        self._pollers.append(poller)
        return poller

    def stop_polling(self) -> None:
        """Stop following anything running (the panel is closed)."""
        for poller in self._pollers:
            poller.stop()

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

    def show(self, item_id: ItemId | None) -> None:
        """Show the details of the item ``item_id`` (hide them for None)."""
        item = self.items.get(item_id) if item_id is not None else None
        self.delete_button.description = "Delete"
        if item is None:
            self.details.layout.display = "none"
            self.clear()
            return
        self.details.layout.display = ""
        self.render(item)

    def select(self, item_id: ItemId) -> None:
        """Choose ``item_id`` in the list (which shows it), if it is listed."""
        if item_id in self.items and self.listing.value != item_id:
            self.listing.value = item_id

    # --- actions --------------------------------------------------------------------------

    def attempt(self, call: Callable[[], T]) -> T | Literal[Failed.FAILED]:
        """``call()`` with its error shown in :attr:`action_status` (:data:`FAILED`)."""
        return attempt(self.action_status, call)

    def act(self, call: Callable[[ItemId], ItemT], done: str) -> bool:
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
            options=self.visibilities,
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
