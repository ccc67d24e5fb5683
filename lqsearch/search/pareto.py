"""The Pareto set of a search: the candidates no other beats on both accuracy and FLOPs."""
from __future__ import annotations

import math
from typing import Hashable, Iterable, Tuple

from lqsearch.checks import check_number

__all__ = ["pareto_front"]


def pareto_front(points: Iterable[Tuple[Hashable, float, float]]) -> list:
    """Keys of the non-dominated points, maximizing accuracy and minimizing FLOPs.

    A point is dominated when another has accuracy >= and FLOPs <=, with at least
    one strict. Exact duplicates (same accuracy and FLOPs) do not dominate each
    other, so all of them are kept, in input order.

    Arguments:
        points: `(key, accuracy, flops)` triples.

    Returns:
        The keys of the front, sorted by FLOPs ascending (so accuracy ascends too).

    Raises:
        ValueError: if an accuracy or a FLOPs count is missing or not a finite number.
    """
    points = list(points)
    for key, accuracy, flops in points:
        check_number(f"point {key!r}: accuracy", accuracy)
        check_number(f"point {key!r}: flops", flops)
    order = sorted(range(len(points)), key=lambda i: (points[i][2], -points[i][1], i))
    front, best_accuracy, best_flops = [], -math.inf, None
    for i in order:
        _, accuracy, flops = points[i]
        if accuracy > best_accuracy:
            front.append(i)
            best_accuracy, best_flops = accuracy, flops
        elif accuracy == best_accuracy and flops == best_flops:
            front.append(i)  # an exact duplicate of the last front point
    return [points[i][0] for i in front]
