"""throughtime.stats: the exact Mann–Whitney test against enumeration and scipy."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
from scipy import stats as scipy_stats

from throughtime.stats import count_phrase, mann_whitney


def brute_force_p(a, b):
    """Enumerate every split of the pooled values; count those with |U - mean| as large."""
    pooled = np.concatenate([a, b])
    n = len(a)

    def u_statistic(x, y):
        return sum((xi > yi) + 0.5 * (xi == yi) for xi in x for yi in y)

    observed = abs(u_statistic(a, b) - n * len(b) / 2)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n):
        rest = [i for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += abs(u_statistic(pooled[list(chosen)], pooled[rest]) - n * len(b) / 2) >= (
            observed - 1e-12)
    return hits / total


def test_complete_separation_gives_the_textbook_values():
    three = mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert three.p == pytest.approx(0.10) and three.smallest_p == pytest.approx(0.10)
    assert three.u == 0
    five = mann_whitney(np.arange(5.0), np.arange(5.0) + 10)
    assert five.p == pytest.approx(2 / 252)
    assert mann_whitney([9, 8, 7], [1, 2, 3]).u == 9


@pytest.mark.parametrize("seed", range(6))
def test_matches_scipy_exact_without_ties(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rng.integers(2, 8)), rng.normal(0.7, 1, size=rng.integers(2, 8))
    ours = mann_whitney(a, b)
    reference = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    assert ours.u == pytest.approx(reference.statistic)
    assert ours.p == pytest.approx(reference.pvalue, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_ties_are_counted_exactly(seed):
    rng = np.random.default_rng(100 + seed)
    a = rng.integers(0, 3, size=rng.integers(2, 6)).astype(float)
    b = rng.integers(1, 4, size=rng.integers(2, 6)).astype(float)
    assert mann_whitney(a, b).p == pytest.approx(brute_force_p(a, b), rel=1e-12)


def test_identical_samples_give_p_one():
    assert mann_whitney([0.5] * 4, [0.5] * 4).p == 1.0


def test_smallest_p_follows_the_sizes():
    assert mann_whitney([1, 2], [3, 4, 5, 6]).smallest_p == pytest.approx(2 / comb(6, 2))


@pytest.mark.parametrize("a, b, message", [([], [1.0], "a must hold at least one"),
                                           ([1.0], [np.nan], "b must hold finite")])
def test_bad_samples_are_named(a, b, message):
    with pytest.raises(ValueError, match=message):
        mann_whitney(a, b)


def test_count_phrase():
    assert count_phrase(10, 10) == "all 10"
    assert count_phrase(0, 5) == "none of the 5"
    assert count_phrase(7, 10) == "7 of 10"
    assert count_phrase(2, 2) == "both"
    with pytest.raises(ValueError, match="0 <= count <= total"):
        count_phrase(4, 3)
