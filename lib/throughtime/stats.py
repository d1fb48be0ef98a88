"""How strong is the evidence? Small exact tests for comparisons over a few seeds.

A training outcome depends on the seed and on the machine, so the book compares two kinds of
network over several seeds each and says how strong the evidence is. With few seeds an
asymptotic test is wrong; these functions compute exact probabilities.

``mann_whitney(a, b)`` is the exact two-sided Mann–Whitney U test (Mann & Whitney 1947): under
the hypothesis that the two samples come from one distribution, every split of the pooled
values into groups of sizes ``len(a)`` and ``len(b)`` is equally likely, and the p-value is the
share of splits whose rank sum is at least as far from its mean as the observed one. Ties get
mid-ranks and are handled exactly (the distribution is counted over the tied ranks, not
approximated). With 3 seeds a side and complete separation the smallest possible p is
2 / C(6, 3) = 0.10; with 5 a side it is 2 / C(10, 5) ≈ 0.0079.
"""

from __future__ import annotations

from math import comb
from typing import Any, NamedTuple

import numpy as np


class MannWhitney(NamedTuple):
    """The result of :func:`mann_whitney`.

    ``u`` counts the pairs (x from ``a``, y from ``b``) with x > y (ties count 1/2);
    ``p`` is the exact two-sided p-value; ``smallest_p`` is the smallest p-value the test
    could give with these sample sizes (complete separation), which says how much evidence
    the number of seeds can carry at all.
    """

    u: float
    p: float
    smallest_p: float
    sizes: tuple[int, int]


def _sample(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{name} must hold at least one value, got an empty sample")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers, got {array.tolist()}")
    return array


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def _rank_sum_counts(doubled_ranks: np.ndarray, size: int) -> dict[int, int]:
    """How many subsets of ``size`` ranks have each (doubled) rank sum: exact, ties included."""
    # counts[k] maps a sum of doubled ranks to the number of k-subsets with that sum.
    counts: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(size)]
    for rank in doubled_ranks.tolist():
        for k in range(size, 0, -1):
            previous = counts[k - 1]
            current = counts[k]
            for total, ways in previous.items():
                current[total + rank] = current.get(total + rank, 0) + ways
    return counts[size]


def mann_whitney(a: Any, b: Any) -> MannWhitney:
    """Exact two-sided Mann–Whitney U test of samples ``a`` and ``b`` (e.g. one value a seed).

    Parameters
    ----------
    a, b : array-like of finite floats
        The two samples (any lengths ≥ 1; the exact count is fast up to a few dozen values).

    Returns
    -------
    MannWhitney
        ``u`` (pairs with a > b, ties 1/2), the exact two-sided ``p``, the ``smallest_p``
        possible at these sizes, and the ``sizes``.
    """
    first, second = _sample("a", a), _sample("b", b)
    n, m = len(first), len(second)
    pooled = np.concatenate([first, second])
    doubled = np.rint(2 * _midranks(pooled)).astype(int)  # mid-ranks are multiples of 1/2
    observed = int(doubled[:n].sum())
    counts = _rank_sum_counts(doubled, n)
    total = comb(n + m, n)
    centre = n * (n + m + 1)  # the mean of the doubled rank sum
    distance = abs(observed - centre)
    extreme = sum(ways for value, ways in counts.items() if abs(value - centre) >= distance)
    u = observed / 2 - n * (n + 1) / 2
    return MannWhitney(u=float(u), p=min(1.0, extreme / total),
                       smallest_p=min(1.0, 2 / total), sizes=(n, m))


def count_phrase(count: int, total: int) -> str:
    """"all 10", "none of the 10" or "7 of 10": how many seeds (or runs) did something."""
    if not (isinstance(count, (int, np.integer)) and isinstance(total, (int, np.integer))):
        raise TypeError(f"count and total must be integers, got {count!r} and {total!r}")
    if not 0 <= count <= total or total < 1:
        raise ValueError(f"need 0 <= count <= total and total >= 1, got {count} of {total}")
    if count == total:
        return f"all {total}" if total > 2 else ("both" if total == 2 else "the one")
    if count == 0:
        return f"none of the {total}"
    return f"{count} of {total}"
