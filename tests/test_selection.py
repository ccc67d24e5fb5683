"""NSGA-II's ranking (lqsearch.search.selection) against fronts and distances computed by hand."""
import itertools
import math
import random

import keras_tuner
import pytest

from lqsearch.search.selection import crowding_distances, non_dominated_ranks, nsga2_order
from lqsearch.search.settings import EvolutionSettings, SearchSettings

MAX_MIN = ["max", "min"]  # accuracy (max), flops (min)

# Seven (accuracy, flops) points. By hand:
#   A, B, C, D: nobody has both >= accuracy and <= flops         -> front 0
#   E (75, 3) is dominated by B (80, 2) and D (85, 3);
#   G (72, 2.5) by B only; E and G do not dominate each other    -> front 1
#   F (60, 4) is dominated by A, B, C, D, E and G                -> front 2
POINTS = {"A": (90, 4), "B": (80, 2), "C": (70, 1), "D": (85, 3), "E": (75, 3), "F": (60, 4), "G": (72, 2.5)}
RANKS = {"A": 0, "B": 0, "C": 0, "D": 0, "E": 1, "F": 2, "G": 1}
# Crowding in front 0. Accuracy sorted C 70, B 80, D 85, A 90 (range 20); flops sorted C 1, B 2, D 3, A 4 (range 3).
# C and A are boundaries (infinite); B = (85 - 70) / 20 + (3 - 1) / 3; D = (90 - 80) / 20 + (4 - 2) / 3.
FRONT0_CROWDING = {"A": math.inf, "B": 0.75 + 2 / 3, "C": math.inf, "D": 0.5 + 2 / 3}
# Order: front 0 by crowding (A and C infinite: older first), then front 1 (both infinite: E before G), then F.
ORDER = ["A", "C", "B", "D", "E", "G", "F"]


def test_non_dominated_ranks_of_the_hand_computed_fronts():
    names = list(POINTS)
    ranks = non_dominated_ranks([POINTS[n] for n in names], MAX_MIN)
    assert dict(zip(names, ranks)) == RANKS


def test_crowding_distances_of_the_hand_computed_front():
    front = ["A", "B", "C", "D"]
    distances = crowding_distances([POINTS[n] for n in front], MAX_MIN)
    assert dict(zip(front, distances)) == pytest.approx(FRONT0_CROWDING)
    assert crowding_distances([POINTS["E"], POINTS["G"]], MAX_MIN) == [math.inf, math.inf]
    assert crowding_distances([(1, 5), (1, 5), (1, 5)], MAX_MIN)[1] == 0.0  # zero range adds nothing


def test_nsga2_order_is_rank_then_crowding_then_age():
    names = list(POINTS)
    assert [names[i] for i in nsga2_order([POINTS[n] for n in names], MAX_MIN)] == ORDER


def test_directions_and_three_objectives():
    # Minimizing both: (1, 3), (2, 2), (3, 1) are the front; (2, 3) is dominated by (1, 3) and (2, 2).
    assert non_dominated_ranks([(1, 3), (2, 2), (3, 1), (2, 3)], ["min", "min"]) == [0, 0, 0, 1]
    # Maximizing both, the same points: (2, 3) dominates (1, 3) and (2, 2); (3, 1) is alone on its axis.
    assert non_dominated_ranks([(1, 3), (2, 2), (3, 1), (2, 3)], ["max", "max"]) == [1, 1, 0, 0]
    # Three objectives (max, min, min): only (5, 1, 1) is undominated; (5, 2, 2) and (4, 1, 2) are
    # dominated only by it; (4, 2, 2) by all three others.
    points = [(4, 2, 2), (5, 1, 1), (5, 2, 2), (4, 1, 2)]
    assert non_dominated_ranks(points, ["max", "min", "min"]) == [2, 0, 1, 1]
    # Front 1 = (5, 2, 2) and (4, 1, 2): two points, both boundaries.
    assert crowding_distances([points[2], points[3]], ["max", "min", "min"]) == [math.inf, math.inf]


def test_equal_points_share_a_front():
    assert non_dominated_ranks([(80, 2), (80, 2), (70, 3)], MAX_MIN) == [0, 0, 1]
    assert non_dominated_ranks([], MAX_MIN) == []


def _dominates(a, b, directions):
    signs = [1 if d == "max" else -1 for d in directions]
    no_worse = all(s * x >= s * y for s, x, y in zip(signs, a, b))
    return no_worse and any(s * x > s * y for s, x, y in zip(signs, a, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranks_match_the_definition_on_random_points(seed):
    rng = random.Random(seed)
    points = [(rng.randint(0, 9), rng.randint(0, 9)) for _ in range(60)]
    ranks = non_dominated_ranks(points, MAX_MIN)
    for i, j in itertools.permutations(range(len(points)), 2):
        if _dominates(points[i], points[j], MAX_MIN):
            assert ranks[i] < ranks[j]
    for j, rank in enumerate(ranks):  # rank r > 0: some point of rank r - 1 dominates it
        if rank:
            assert any(ranks[i] == rank - 1 and _dominates(points[i], points[j], MAX_MIN) for i in range(len(points)))


def test_settings_accept_objectives_and_refuse_a_pareto_selection_without_them():
    settings = EvolutionSettings(selection="pareto", objectives=[keras_tuner.Objective("accuracy", "max"), "flops"])
    assert [(o.name, o.direction) for o in settings.objectives] == [("accuracy", "max"), ("flops", "min")]
    assert settings.model_dump(mode="json")["objectives"] == ["accuracy", "flops"]
    assert hash(settings) == hash(EvolutionSettings(selection="pareto", objectives=["accuracy", "flops"]))
    assert EvolutionSettings().selection == "fitness"
    with pytest.raises(ValueError, match="selection='pareto' ranks the trials on several objectives"):
        EvolutionSettings(selection="pareto")
    with pytest.raises(ValueError, match="Did you mean 'pareto'"):
        EvolutionSettings(selection="paretto")
    with pytest.raises(ValueError, match="name a metric twice"):
        EvolutionSettings(selection="pareto", objectives=["accuracy", "accuracy"])
    search = SearchSettings(selection="pareto", objectives=["accuracy", "memory_bits"])
    assert [o.name for o in search.evolution().objectives] == ["accuracy", "memory_bits"]
    assert SearchSettings().objectives == ("accuracy", "flops")
    with pytest.raises(ValueError, match="Did you mean 'flops'"):
        SearchSettings(objectives=["accuracy", "flop"])
    with pytest.raises(ValueError, match="set cost_metric='latency'"):
        SearchSettings(objectives=["accuracy", "latency_s"])
    with pytest.raises(ValueError, match=r"give \['accuracy', COST\]"):
        SearchSettings(objectives=["flops", "accuracy"])
