"""Ranker experiments, the pure part: the sticky hash split, team-draft interleaving and its
credit, latency quantiles and the guardrails."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ranking.experiments import (
    LATENCY_BOUNDS_MS,
    Arm,
    ArmStats,
    Experiment,
    Guardrails,
    assign,
    breach,
    experiment_problems,
    latency_bucket,
    quantile_ms,
    team_draft,
    top_agreement,
    winner,
)


def ab(name: str = "exp1", weights: tuple[int, ...] = (1, 1)) -> Experiment:
    return Experiment(name, "ab", tuple(Arm(f"arm{i}", "formula", w)
                                        for i, w in enumerate(weights)))


def test_a_session_stays_in_its_arm_and_arms_get_their_share() -> None:
    e = ab(weights=(1, 3))
    sessions = [f"s{i}" for i in range(20_000)]
    first = {s: assign(e, s).name for s in sessions}
    again = {s: assign(ab(weights=(1, 3)), s).name for s in sessions}  # another process
    assert first == again
    share = Counter(first.values())
    assert share["arm0"] / len(sessions) == pytest.approx(0.25, abs=0.015)
    assert share["arm1"] / len(sessions) == pytest.approx(0.75, abs=0.015)


def test_another_experiment_splits_the_same_sessions_independently() -> None:
    sessions = [f"s{i}" for i in range(10_000)]
    one = [assign(ab("one"), s).name for s in sessions]
    two = [assign(ab("two"), s).name for s in sessions]
    same = sum(a == b for a, b in zip(one, two, strict=True)) / len(sessions)
    assert same == pytest.approx(0.5, abs=0.03)


def test_stopping_an_arm_moves_no_other_session() -> None:
    e = ab(weights=(1, 1, 1))
    stopped = Experiment(e.name, e.kind, e.arms, stopped_arms={"arm1": "p99"})
    for i in range(2_000):
        assert assign(stopped, f"s{i}") == assign(e, f"s{i}")
    assert not stopped.live("arm1") and stopped.live("arm0")


def test_team_draft_interleaves_both_orders_fairly() -> None:
    rnd = random.Random(3)
    for trial in range(200):
        items = list(range(rnd.randint(1, 30)))
        a = rnd.sample(items, len(items))
        b = rnd.sample(items, len(items))
        merged, teams = team_draft(a, b, trial)
        assert sorted(merged) == items  # every item once
        na, nb = teams.count("a"), teams.count("b")
        assert abs(na - nb) <= 1  # the teams take turns
        # each team's picks appear in the order its ranker put them
        for team, order in (("a", a), ("b", b)):
            picks = [m for m, t in zip(merged, teams, strict=True) if t == team]
            assert picks == sorted(picks, key=order.index)
        assert team_draft(a, b, trial) == (merged, teams)  # the same coin, the same list


def test_team_draft_of_identical_orders_is_that_order() -> None:
    order = [4, 2, 0, 1, 3]
    merged, _ = team_draft(order, order, 11)
    assert merged == order


def test_team_draft_first_pick_is_one_of_the_two_bests() -> None:
    firsts = {team_draft([1, 2, 3], [3, 2, 1], seed)[0][0] for seed in range(50)}
    assert firsts == {1, 3}  # the coin decides, over seeds both happen


def test_the_team_with_more_clicks_wins_the_search() -> None:
    assert winner(["a", "a", "b"]) == "a"
    assert winner(["b"]) == "b"
    assert winner(["a", "b"]) is None
    assert winner([None, None]) is None


def test_latency_quantiles_from_the_histogram() -> None:
    hist = [0] * len(LATENCY_BOUNDS_MS)
    for ms in [4.0] * 98 + [40.0, 400.0]:
        hist[latency_bucket(ms)] += 1
    assert quantile_ms(hist, 0.5) == 5
    assert quantile_ms(hist, 0.99) == 50
    assert quantile_ms(hist, 1.0) == 500
    assert quantile_ms([0] * len(LATENCY_BOUNDS_MS), 0.99) is None
    assert latency_bucket(10**9) == len(LATENCY_BOUNDS_MS) - 1


def stats(requests: int, errors: int = 0, ms: float = 5.0) -> ArmStats:
    hist = [0] * len(LATENCY_BOUNDS_MS)
    hist[latency_bucket(ms)] = requests
    return ArmStats(requests=requests, errors=errors, latency=tuple(hist))


def test_guardrails_stop_an_arm_only_past_its_limits_and_enough_requests() -> None:
    g = Guardrails(max_error_rate=0.05, max_p99_ms=100, min_requests=50)
    assert breach(stats(49, errors=49), g) is None  # too few to judge
    assert breach(stats(100, errors=5), g) is None  # at the limit
    reason = breach(stats(100, errors=6), g)
    assert reason is not None and "error rate" in reason
    reason = breach(stats(100, ms=120), g)
    assert reason is not None and "p99 150 ms" in reason
    assert breach(stats(100, ms=90), g) is None


def test_experiment_definitions_are_checked_by_field() -> None:
    arms = (Arm("a", "formula"), Arm("b", "text"))
    assert experiment_problems("ab", arms, Guardrails(), None, 0.0) == {}
    assert "arms" in experiment_problems("interleave", (*arms, Arm("c", "weighted")),
                                         Guardrails(), None, 0.0)
    assert "arms" in experiment_problems("ab", (Arm("a", "x"), Arm("a", "y")), Guardrails(),
                                         None, 0.0)
    assert "arms" in experiment_problems("ab", (Arm("a", "x"), Arm("shadow", "y")),
                                         Guardrails(), None, 0.0)
    assert "shadow" in experiment_problems("ab", arms, Guardrails(), None, 0.5)
    assert "guardrails.min_requests" in experiment_problems("ab", arms, Guardrails(0, 10, 0),
                                                            None, 0)
    with pytest.raises(ValueError, match="arms"):
        Experiment("x", "ab", arms[:1])


def test_top_agreement_counts_shared_top_k() -> None:
    assert top_agreement(list(range(20)), list(range(20))) == 10
    assert top_agreement([1, 2, 3], [3, 9, 1], k=2) == 0
    assert top_agreement([1, 2, 3], [2, 1, 9], k=2) == 2
