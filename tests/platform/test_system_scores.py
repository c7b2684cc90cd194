"""Systems on leaderboards: seed means, spread and count; private runs kept out of public views."""

from __future__ import annotations

import statistics

import pytest

from catalog.models import Backbone, Method, Task
from tests.factories import BackboneFactory, MethodFactory, TaskFactory, UserFactory
from tracking.models import Run, Visibility
from tracking.selectors import system_scores
from tracking.services import RunInputError, config_fingerprint, run_create_external

pytestmark = pytest.mark.django_db


@pytest.fixture
def parts() -> tuple[Method, Backbone, Task]:
    return MethodFactory.create(), BackboneFactory.create(), TaskFactory.create()


def submit(
    parts: tuple[Method, Backbone, Task], *, value: float, seed: int, **kwargs: object
) -> Run:
    method, backbone, task = parts
    defaults: dict[str, object] = {
        "owner": UserFactory.create(username="alice"),
        "config": {"lr": 1e-4},
    }
    defaults.update(kwargs)
    return run_create_external(
        method=method,
        backbone=backbone,
        task=task,
        seed=seed,
        scores={"accuracy": value},
        **defaults,  # type: ignore[arg-type]
    )


def test_seeds_of_one_config_form_one_system(parts: tuple[Method, Backbone, Task]) -> None:
    values = [0.81, 0.83, 0.88]
    for seed, value in enumerate(values):
        submit(parts, value=value, seed=seed, config={"lr": 1e-4, "epochs": 3})
    submit(parts, value=0.5, seed=0, config={"lr": 3e-4, "epochs": 3})

    systems = system_scores(task_ids=[parts[2].pk])
    assert len(systems) == 2
    by_hash = {s.config_hash: s for s in systems}
    main = by_hash[config_fingerprint({"epochs": 3, "lr": 1e-4})]
    aggregate = main.scores[(parts[2].pk, "accuracy")]
    assert aggregate.count == 3
    assert aggregate.mean == pytest.approx(statistics.mean(values))
    assert aggregate.std == pytest.approx(statistics.stdev(values))
    other = by_hash[config_fingerprint({"lr": 3e-4, "epochs": 3})].scores[(parts[2].pk, "accuracy")]
    assert (other.count, other.std) == (1, None)
    assert main.method == parts[0]
    assert main.config == {"lr": 1e-4, "epochs": 3}
    assert main.provenance_tiers == {"self_reported"}


def test_private_runs_never_move_the_public_view(parts: tuple[Method, Backbone, Task]) -> None:
    alice = UserFactory.create(username="alice")
    bob = UserFactory.create(username="bob")
    submit(parts, value=0.80, seed=0, owner=alice)
    submit(parts, value=0.20, seed=1, owner=alice, visibility=Visibility.PRIVATE)

    public = system_scores(task_ids=[parts[2].pk])
    assert public[0].scores[(parts[2].pk, "accuracy")].mean == pytest.approx(0.80)
    personal = system_scores(task_ids=[parts[2].pk], viewer=alice)
    assert personal[0].scores[(parts[2].pk, "accuracy")].mean == pytest.approx(0.50)
    others = system_scores(task_ids=[parts[2].pk], viewer=bob)
    assert others[0].scores[(parts[2].pk, "accuracy")].count == 1


def test_unfinished_runs_are_not_ranked(parts: tuple[Method, Backbone, Task]) -> None:
    from tests.factories import RunFactory

    RunFactory.create(method=parts[0], backbone=parts[1], task=parts[2])
    assert system_scores(task_ids=[parts[2].pk]) == []


def test_the_query_count_does_not_grow_with_runs(
    parts: tuple[Method, Backbone, Task], django_assert_max_num_queries: object
) -> None:
    for seed in range(12):
        submit(parts, value=0.5 + seed / 100, seed=seed, config={"lr": seed})
    with django_assert_max_num_queries(4):  # type: ignore[operator]
        assert len(system_scores(task_ids=[parts[2].pk])) == 12


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"accuracy": 0.5, "f1": 0.1}, "not a metric"),
        ({}, "missing accuracy"),
        ({"accuracy": float("nan")}, "not a finite number"),
        ({"accuracy": "high"}, "not a finite number"),
    ],
)
def test_bad_scores_are_refused_and_nothing_is_written(
    parts: tuple[Method, Backbone, Task], scores: dict[str, object], message: str
) -> None:
    from tracking.models import Run

    method, backbone, task = parts
    with pytest.raises(RunInputError, match=message):
        run_create_external(
            owner=UserFactory.create(),
            method=method,
            backbone=backbone,
            task=task,
            config={},
            seed=0,
            scores=scores,  # type: ignore[arg-type]
        )
    assert not Run.objects.exists()


def test_seed_inside_config_is_refused() -> None:
    with pytest.raises(RunInputError, match="seed"):
        config_fingerprint({"seed": 1})


def test_config_order_does_not_change_the_system() -> None:
    assert config_fingerprint({"a": 1, "b": [1, 2]}) == config_fingerprint({"b": [1, 2], "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})


def test_runs_on_another_split_are_a_separate_marked_system(
    parts: tuple[Method, Backbone, Task],
) -> None:
    task = parts[2]
    task.definition = {"eval_split": "validation"}
    task.save()
    official = submit(parts, value=0.8, seed=0)
    elsewhere = submit(parts, value=0.4, seed=1, eval_split="train")
    assert (official.eval_split, official.on_official_split) == ("validation", True)
    assert (elsewhere.eval_split, elsewhere.on_official_split) == ("train", False)

    systems = {s.official_split: s for s in system_scores(task_ids=[task.pk])}
    assert systems[True].scores[(task.pk, "accuracy")].mean == pytest.approx(0.8)
    assert systems[False].scores[(task.pk, "accuracy")].mean == pytest.approx(0.4)
    assert systems[False].label.endswith("non-official split")
    assert not systems[True].label.endswith("non-official split")
