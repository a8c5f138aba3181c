"""Names that are unique per owner stay unique when the services' look-first check is
passed by a request that raced another: the database refuses the second row and the
service answers with the check's own Conflict, leaving nothing of the loser behind.

The race is made deterministic by letting the first look of a call miss the clash, as it
does when the winner commits between the loser's look and its insert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.conftest import add_people
from workbench import algorithms, datasets, environments
from workbench.access import ShareableService
from workbench.algorithms.schemas import AlgorithmCreate, AlgorithmUpdate
from workbench.datasets.schemas import DatasetCreate, DatasetUpdate
from workbench.environments.schemas import EnvironmentCreate, EnvironmentUpdate
from workbench.errors import Conflict
from workbench.registry import models as m
from workbench.registry.unique import flush_unique

KINDS = {
    "dataset": (
        m.Dataset,
        datasets.service.DatasetService,
        lambda name: DatasetCreate(
            name=name, purpose="image", sub_purpose="classification", format="dir"
        ),
        DatasetUpdate,
        "You already have a dataset named {name!r} (id {id}); pick another name.",
    ),
    "environment": (
        m.Environment,
        environments.service.EnvironmentService,
        lambda name: EnvironmentCreate(name=name, framework="python"),
        EnvironmentUpdate,
        "There already is an environment named {name!r} (id {id}); pick another name.",
    ),
    "algorithm": (
        m.Algorithm,
        algorithms.service.AlgorithmService,
        lambda name: AlgorithmCreate(name=name, purpose="text", sub_purpose="classification"),
        AlgorithmUpdate,
        "There already is an algorithm named {name!r} (id {id}); pick another name.",
    ),
}


def first_look_misses(monkeypatch: pytest.MonkeyPatch, owner: type[ShareableService]) -> None:
    """The next call of ``owner._check_unique_name`` finds no clash; later ones look."""
    real = owner._check_unique_name
    calls = []

    def late(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) > 1:
            real(*args, **kwargs)

    monkeypatch.setattr(owner, "_check_unique_name", late)


def names(wb, model) -> list[str]:
    with wb.registry.session() as s:
        return list(s.scalars(sa.select(model.name).order_by(model.id)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rename", [False, True], ids=["create", "rename"])
def test_a_name_taken_meanwhile_is_the_usual_conflict(wb, monkeypatch, kind, rename):
    model, owner, create, update, message = KINDS[kind]
    service = getattr(wb, f"{kind}s")
    bob = add_people(wb).bob
    winner = service.create(bob, create("taken"))
    mine = service.create(bob, create("mine")) if rename else None
    first_look_misses(monkeypatch, owner)
    with pytest.raises(Conflict) as caught:
        if mine is None:
            service.create(bob, create("taken"))
        else:
            service.update(bob, mine.id, update(name="taken", description="new"))
    assert caught.value.message == message.format(name="taken", id=winner.id)
    assert caught.value.details == {"id": winner.id}
    assert names(wb, model) == (["taken", "mine"] if mine else ["taken"])
    if mine is not None:  # nothing of the refused change stayed
        assert service.get(bob, mine.id).description == ""
    if kind == "algorithm":  # the loser's images were never written
        with wb.registry.session() as s:
            images = s.scalars(sa.select(m.AlgorithmImage.algorithm_id)).all()
        assert sorted(images) == sorted([winner.id] * 2 + ([mine.id] * 2 if mine else []))


@pytest.mark.parametrize(
    "row",
    [
        lambda: m.Team(name="vision"),  # another unique constraint
        lambda: m.Project(name="p", owner_id=424242),  # no such user
    ],
)
def test_other_integrity_errors_pass_through(wb, row):
    people = add_people(wb)
    wb.users.create_team(people.alice, "vision")

    def check() -> None:
        raise AssertionError("not a clash of dataset names")

    with pytest.raises(sa.exc.IntegrityError), wb.registry.session() as s:
        s.add(row())
        flush_unique(s, "uq_datasets_owner_id_name", check)


def test_a_clash_gone_again_is_still_a_conflict(wb):
    people = add_people(wb)
    wb.environments.create(people.bob, EnvironmentCreate(name="e", framework="python"))
    check: Callable[[], None] = lambda: None  # noqa: E731 (the winner was deleted meanwhile)
    with pytest.raises(Conflict, match="at the same moment") as caught, wb.registry.session() as s:
        s.add(m.Environment(name="e", framework="python", owner_id=people.bob.id))
        flush_unique(s, "uq_environments_owner_id_name", check)
    assert caught.value.details == {"constraint": "uq_environments_owner_id_name"}


@pytest.mark.parametrize(
    ("add", "message"),
    [
        (lambda wb, people: wb.users.add_user("bob"), "User 'bob' already exists."),
        (
            lambda wb, people: wb.users.create_team(people.alice, "vision"),
            "Team 'vision' already exists.",
        ),
    ],
)
def test_users_and_teams_raced_are_the_usual_conflict(wb, monkeypatch, add, message):
    people = add_people(wb)
    wb.users.create_team(people.alice, "vision")
    looks = []
    scalar = Session.scalar

    def first_look_finds_nothing(self, statement, *args, **kwargs):
        looks.append(statement)
        return None if len(looks) == 1 else scalar(self, statement, *args, **kwargs)

    monkeypatch.setattr(Session, "scalar", first_look_finds_nothing)
    with pytest.raises(Conflict) as caught:
        add(wb, people)
    assert caught.value.message == message
    assert len(looks) == 2  # the look, then the look again once the database refused


def test_a_preset_named_like_an_admins_own_environment_is_refused_by_name(wb):
    people = add_people(wb)
    own = wb.environments.create(people.alice, EnvironmentCreate(name="python", framework="python"))
    with pytest.raises(Conflict) as caught:
        wb.environments.sync_presets(people.alice)
    assert caught.value.message == KINDS["environment"][4].format(name="python", id=own.id)
