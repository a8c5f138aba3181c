"""What the ``workbench`` commands share: Workbench errors shown as one line, the registry
(for the administration commands) and the client (for the rest), the commands every area
writes alike for one thing given by its id (:func:`id_command`, :class:`IdCommands`) or for
a list (:func:`list_command`), and small helpers.

The commands that go through the client need only Workbench's base packages; those that
work on this machine's registry or Docker Engine need the ``server`` extra, so they import
the server's modules inside the command, in :func:`server_imports`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click
from pydantic import BaseModel

from workbench.client import WorkbenchClient
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.jobs.schemas import JobInfo, job_error
from workbench.jobs.states import JobState

if TYPE_CHECKING:
    from workbench.services import Workbench

Item = TypeVar("Item", bound=BaseModel)


class CLIError(click.ClickException):
    """A Workbench error shown as a one-line message, without a traceback."""

    def __init__(self, error: WorkbenchError) -> None:
        super().__init__(f"{error.message} [{error.code}]")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the Workbench errors a command raises into :class:`CLIError`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            raise CLIError(exc) from exc

    return wrapper


class ServerPackagesMissing(click.ClickException):
    """A command that works on this machine's registry or engine, run where only the client
    is installed."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"this command works on the registry or the Docker Engine of this machine, which "
            f"needs the Workbench server's packages ({package} is not installed); install "
            "them with `pip install 'workbench[server]'`, or run the command where the "
            "server runs."
        )


@contextmanager
def server_imports() -> Iterator[None]:
    """Import the server's modules inside: a package of the ``server`` extra that is not
    installed becomes :class:`ServerPackagesMissing`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] == "workbench":
            raise
        raise ServerPackagesMissing(exc.name) from exc


@contextmanager
def local_workbench(upgrade: bool = False, check: bool = True) -> Iterator[Workbench]:
    """The registry itself ($WORKBENCH_HOME, $WORKBENCH_DB_URL), for the administration
    commands; ``upgrade``: apply the migrations first; ``check``: refuse a schema that is
    not this version's."""
    with server_imports():
        from workbench.services import Workbench

    wb = Workbench.from_settings(Settings.from_env())
    try:
        if upgrade:
            wb.registry.upgrade()
        if check:
            wb.registry.check_schema()
        yield wb
    finally:
        wb.close()


def client() -> WorkbenchClient:
    """The REST client of the saved login (or $WORKBENCH_URL and $WORKBENCH_TOKEN)."""
    return WorkbenchClient.from_env()


def choice(enum: type) -> click.Choice:
    return click.Choice([m.value for m in enum])


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options that were given (not None): the fields a ``set`` command changes."""
    return {k: v for k, v in options.items() if v is not None}


#: ``--json``: print what the command found as JSON instead of lines for people
json_option = click.option("--json", "as_json", is_flag=True)
#: ``--mine``: only the caller's own things (left out: None, whatever the server shows)
mine_option = click.option("--mine", is_flag=True, flag_value=True, default=None, help="Only mine.")
#: ``--search``: the text a list's things have in their names or descriptions
search_option = click.option("--search", "q", help="Text to find in names and descriptions.")


def echo_json(items: Sequence[BaseModel]) -> None:
    """A ``list --json``: the items as a JSON array."""
    click.echo(json.dumps([item.model_dump(mode="json") for item in items], indent=1))


def echo_list(items: Sequence[Item], as_json: bool, echo: Callable[[Item], None]) -> None:
    """A ``list`` command's output: the items as a JSON array (``as_json``), else each one
    printed by ``echo``."""
    if as_json:
        echo_json(items)
        return
    for item in items:
        echo(item)


class Purposed(Protocol):
    """A thing made for a purpose (a dataset, a workspace, an algorithm, a training task)."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def purpose(self) -> str: ...

    @property
    def sub_purpose(self) -> str: ...


def echo_row(item: Purposed, name_width: int, purpose_width: int, rest: str) -> None:
    """A ``list`` row of a thing made for a purpose: its id, its name and its
    purpose/sub-purpose in columns ``name_width`` and ``purpose_width`` wide, then ``rest``."""
    click.echo(
        f"{item.id:>4}  {item.name:<{name_width}} {item.purpose}/"
        f"{item.sub_purpose:<{purpose_width}} {rest}"
    )


def client_command(
    group: click.Group,
    name: str,
    fn: Callable[..., Any],
    call: Callable[[WorkbenchClient, dict[str, Any]], None],
    help_text: str | None = None,
    *decorators: Callable[[Any], Any],
) -> click.Command:
    """The command ``name`` of ``group`` that opens the client and hands it, with the
    command's parameters, to ``call``, its Workbench errors shown as one line. It takes
    ``fn``'s options (the click decorators on it) and docstring (unless ``help_text``);
    ``decorators`` add more parameters, the first one first."""

    @wraps(fn)  # keeps the options declared on ``fn``, and its docstring
    @friendly
    def command(**params: Any) -> None:
        with client() as c:
            call(c, params)

    for decorate in reversed(decorators):
        command = decorate(command)
    return group.command(name, help=help_text)(command)


def list_command(
    group: click.Group, name: str, echo: Callable[[Any], None], help_text: str | None = None
) -> Callable[[Callable[..., Sequence[BaseModel]]], click.Command]:
    """Make the decorated ``fetch(client, **params)``, which answers a list of things, the
    :func:`client_command` ``name`` of ``group``: it prints each thing with ``echo``, or all
    of them as a JSON array where :data:`json_option` (among the click decorators under this
    one, which add the command's options, ``params``) is given."""

    def register(fetch: Callable[..., Sequence[BaseModel]]) -> click.Command:
        def call(c: WorkbenchClient, params: dict[str, Any]) -> None:
            as_json = params.pop("as_json", False)
            echo_list(fetch(c, **params), as_json, echo)

        return client_command(group, name, fetch, call, help_text)

    return register


def id_command(
    group: click.Group, name: str, argument: str, help_text: str | None = None
) -> Callable[[Callable[..., None]], click.Command]:
    """Make the decorated ``run(client, id, **params)`` the :func:`client_command` ``name``
    of ``group``, on one thing given by its integer id (the first argument, ``argument``);
    the click decorators under this one add the command's other arguments and options
    (``params``)."""

    def register(run: Callable[..., None]) -> click.Command:
        def call(c: WorkbenchClient, params: dict[str, Any]) -> None:
            run(c, params.pop(argument), **params)

        return client_command(group, name, run, call, help_text, click.argument(argument, type=int))

    return register


@dataclass(frozen=True)
class IdCommands:
    """The commands an area writes alike for one kind of thing with an integer id: ``show``
    (as JSON), ``delete`` (confirmed first), and the actions that change the thing and print
    it again (``publish``, ``stop``...)."""

    group: click.Group
    #: names the thing in what ``delete`` says
    noun: str
    #: the id's argument
    argument: str
    #: picks the area's part of the client (``lambda c: c.datasets``)
    api: Callable[[WorkbenchClient], Any]
    #: prints one thing as the area's ``list`` does
    echo: Callable[[Any], None]

    def show(self, help_text: str | None = None) -> None:
        """``show ID``: the thing as JSON."""

        @id_command(self.group, "show", self.argument, help_text)
        def show(c: WorkbenchClient, item_id: int) -> None:
            click.echo(self.api(c).get(item_id).model_dump_json(indent=1))

    def action(self, name: str, help_text: str | None = None, method: str | None = None) -> None:
        """``name ID``: call the area's ``method`` (default: ``name``) on the thing and print
        what it returns."""

        @id_command(self.group, name, self.argument, help_text)
        def act(c: WorkbenchClient, item_id: int) -> None:
            self.echo(getattr(self.api(c), method or name)(item_id))

    def delete(self, prompt: str, help_text: str | None = None) -> None:
        """``delete ID``: delete the thing once ``prompt`` is answered yes, and say so."""

        @id_command(self.group, "delete", self.argument, help_text)
        @click.confirmation_option(prompt=prompt)
        def delete(c: WorkbenchClient, item_id: int) -> None:
            self.api(c).delete(item_id)
            click.echo(f"deleted {self.noun} {item_id}")


def upload_progress(bar: Any) -> Callable[[int, int], None]:
    """A client upload's ``progress`` callback that moves a ``click.progressbar``."""
    seen = [0]

    def progress(sent: int, _total: int) -> None:
        bar.update(sent - seen[0])
        seen[0] = sent

    return progress


#: for the commands that start a job: return once it is queued instead of following it
detach_option = click.option(
    "--detach",
    is_flag=True,
    help="Return once the job is queued (follow it later with `workbench job log ID -f`).",
)


#: the one flag of every log command: a job's, an environment's build, a task's run
follow_option = click.option(
    "--follow", "-f", is_flag=True, help="Keep reading as it is written, until the work is over."
)


def show_log(c: WorkbenchClient, job_id: int | None, follow: bool) -> None:
    """A job's log: all of it so far, or (``follow``) as it is written until the job is
    over. Every log command prints through here."""
    if job_id is None:
        raise click.ClickException("nothing has run yet, so there is no log")
    if follow:
        follow_job(c, job_id)
        return
    offset, text = 0, None
    while text != "":
        page = c.jobs.log(job_id, offset)
        click.echo(page.text, nl=False)
        offset, text = page.next_offset, page.text


def follow_job(
    c: WorkbenchClient, job_id: int | None, *, quiet: bool = False, detach: bool = False
) -> None:
    """Show a job's log as it is written (unless ``quiet``) until it is over; its error
    (as one line) if it failed. ``detach``: only say which job it is."""
    if job_id is None:
        return
    if detach:
        click.echo(f"job {job_id} queued; `workbench job log {job_id} -f` follows it")
        return
    for line in c.jobs.follow(job_id, interval=0.5):
        if not quiet:
            click.echo(line)
    info: JobInfo = c.jobs.get(job_id)
    if info.state == JobState.FAILED:
        raise job_error(info)
