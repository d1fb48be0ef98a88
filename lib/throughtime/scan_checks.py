"""Assignment checks for the exercises on linear recurrences and their parallel scan.

- ``check_combine(fn)``: ``fn(decay_1, increment_1, decay_2, increment_2)`` returns
  ``(decay, increment)``, the single step equal to the step (lambda_1, u_1) followed by
  the step (lambda_2, u_2): (lambda_1 lambda_2, lambda_2 u_1 + u_2).
- ``check_hillis_steele(fn)``: ``fn(decay, increment)`` returns ``states`` (T, ...), the
  states of h_t = lambda_t h_{t-1} + u_t from h_0 = 0, computed in ceil(log2 T) rounds
  that each combine every position t >= 2^j with the position 2^j before it.

Each check draws hidden cases from a private seed, compares the student's outputs with the
library's reference (``linear_recurrence.combine``, ``linear_recurrence.scan_sequential``)
and, when the numbers are exactly those of a known mistake (the two steps composed in the
wrong order, the decay not applied to the earlier increment, a round too few, the states
shifted by one step, ...), says which. The machinery is that of ``throughtime.checks``;
``hidden_cases``, ``run_cases``, ``judge_cases`` and ``hidden_check`` take these checks'
names, for graders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import checks
from .checks import (  # noqa: F401  (the grader's entry points, re-exported)
    Case,
    CheckFailed,
    _public,
    _Spec,
    hidden_cases,
    hidden_check,
    judge_cases,
    run_cases,
)
from .linear_recurrence import combine, scan_sequential

__all__ = [
    "CHECKS",
    "check_combine",
    "check_hillis_steele",
    "hidden_cases",
    "run_cases",
    "judge_cases",
    "hidden_check",
]

_SEED = 8_164_203  # private: the public cases depend on it


# The combine step -------------------------------------------------------------------------


def _combine_mistakes(decay_1, increment_1, decay_2, increment_2):
    def result(decay, increment):
        return {"decay": decay, "increment": increment}

    return [
        ("the two steps are composed in the wrong order: the first pair is the earlier step, "
         "so its increment is the one that the later decay multiplies, lambda_2 u_1 + u_2.",
         lambda: result(decay_1 * decay_2, decay_1 * increment_2 + increment_1)),
        ("the earlier increment must decay by the later step: lambda_2 (lambda_1 h + u_1) + "
         "u_2 = lambda_1 lambda_2 h + (lambda_2 u_1 + u_2), not u_1 + u_2.",
         lambda: result(decay_1 * decay_2, increment_1 + increment_2)),
        ("the decays of two steps multiply, lambda_1 lambda_2, they do not add.",
         lambda: result(decay_1 + decay_2, decay_2 * increment_1 + increment_2)),
        ("the increment multiplies the earlier increment by its own decay (lambda_1 u_1); "
         "it is the later step's decay, lambda_2, that acts on everything before it.",
         lambda: result(decay_1 * decay_2, decay_1 * increment_1 + increment_2)),
    ]


def _combine_case(rng, size, label) -> Case:
    shape = tuple(size)
    decay_1, decay_2 = (rng.uniform(0.1, 0.95, size=shape) for _ in range(2))
    increment_1, increment_2 = (rng.standard_normal(shape) for _ in range(2))
    decay, increment = combine(decay_1, increment_1, decay_2, increment_2)
    dims = dict(zip(("B", "H"), shape, strict=False))
    return Case(label(dims), 0, (decay_1, increment_1, decay_2, increment_2),
                {"decay": shape, "increment": shape},
                {"decay": decay, "increment": increment},
                mistakes=lambda: _combine_mistakes(decay_1, increment_1, decay_2, increment_2))


# The Hillis-Steele scan -------------------------------------------------------------------


def _rounds_scan(decay, increment, rounds, combine_fn=combine):
    decay, increment = decay.copy(), increment.copy()
    for j in range(rounds):
        offset = 2 ** j
        if offset >= decay.shape[0]:
            break
        decay[offset:], increment[offset:] = combine_fn(decay[:-offset], increment[:-offset],
                                                        decay[offset:], increment[offset:])
    return increment


def _in_place_scan(decay, increment, rounds):
    """Each round reading values the same round has already replaced (a loop over t)."""
    decay, increment = decay.copy(), increment.copy()
    for j in range(rounds):
        offset = 2 ** j
        for t in range(offset, decay.shape[0]):
            decay[t], increment[t] = combine(decay[t - offset], increment[t - offset],
                                             decay[t], increment[t])
    return increment


def _scan_mistakes(decay, increment):
    length = decay.shape[0]
    rounds = (length - 1).bit_length()
    floor_rounds = max(length.bit_length() - 1, 0)
    states = scan_sequential(decay, increment)
    exclusive = np.concatenate([np.zeros_like(states[:1]), states[:-1]])

    def swapped(d1, u1, d2, u2):
        return d1 * d2, d1 * u2 + u1

    hints = [
        ("the scan combines each position with the one 2^j before it in the wrong order: the "
         "earlier position's pair comes first, combine(decay[t - 2^j], increment[t - 2^j], "
         "decay[t], increment[t]).",
         lambda: {"states": _rounds_scan(decay, increment, rounds, swapped)}),
        ("these are the states before each step (an exclusive scan, shifted by one): "
         "states[t] must include step t itself.",
         lambda: {"states": exclusive}),
        ("a round updates positions from values it has already replaced in the same round "
         "(a loop over t in place): compute every position of a round from the previous "
         "round's values, e.g. with slices, decay[2^j:] from decay[:-2^j].",
         lambda: {"states": _in_place_scan(decay, increment, rounds)}),
    ]
    if floor_rounds != rounds:
        hints.append((
            f"the scan stops a round early: T = {length} needs ceil(log2 T) = {rounds} rounds "
            f"(offsets 1, 2, 4, ... up to the last one below T), not floor(log2 T) = "
            f"{floor_rounds}.",
            lambda: {"states": _rounds_scan(decay, increment, floor_rounds)}))
    return hints


def _scan_case(rng, size, label) -> Case:
    length, batch, hidden = size
    shape = (length, batch, hidden)
    decay = rng.uniform(0.1, 0.95, size=shape)
    increment = rng.standard_normal(shape)
    states = scan_sequential(decay, increment)
    return Case(label({"T": length, "B": batch, "H": hidden}), hidden, (decay, increment),
                {"states": shape}, {"states": states},
                mistakes=lambda: _scan_mistakes(decay, increment))


_SPECS: dict[str, _Spec] = {spec.check: spec for spec in (
    _Spec("check_combine", "combine", ("decay_1", "increment_1", "decay_2", "increment_2"),
          ("decay", "increment"), "decay and increment", _combine_case,
          ((3,), (2, 4), (5, 3)),
          ("throughtime.linear_recurrence.combine",),
          allowed="numpy's elementwise operations are fine",
          # The answer is one line, so a right one is always "a copy" of the library's:
          # refuse only the library's function itself.
          refuse_copies=False),
    _Spec("check_hillis_steele", "hillis_steele", ("decay", "increment"), ("states",),
          "states", _scan_case, ((1, 2, 3), (2, 1, 2), (5, 2, 3), (8, 1, 4), (13, 3, 2)),
          ("throughtime.linear_recurrence.scan_hillis_steele",
           "throughtime.linear_recurrence.scan_sequential",
           "throughtime.linear_recurrence.scan_blelloch"),
          allowed="your own combine (or linear_recurrence.combine) is fine"),
)}

CHECKS = tuple(_SPECS)
"""The names of this module's checks, for graders."""


# The entry points are throughtime.checks' own, which know this module's checks too; only the
# public cases' seed is this module's.


def _run_check(check: str, fn: Any) -> str:
    return checks._run_check(check, fn, seed=_SEED)


@_public
def check_combine(combine: Callable) -> None:
    """Check ``combine(decay_1, increment_1, decay_2, increment_2) -> (decay, increment)``.

    Arrays of one shape, float64: the step h -> lambda_1 h + u_1 followed by the step
    h -> lambda_2 h + u_2 as one step, (lambda_1 lambda_2, lambda_2 u_1 + u_2).

    Raises
    ------
    throughtime.checks.CheckFailed
        When an output is wrong (with the likely mistake), of the wrong shape, an input was
        changed in place, or the function fails.
    """
    return _run_check("check_combine", combine)


@_public
def check_hillis_steele(hillis_steele: Callable) -> None:
    """Check ``hillis_steele(decay, increment) -> states``, all (T, B, H) float64.

    The states of h_t = lambda_t h_{t-1} + u_t from h_0 = 0 (``states[t]`` after step t),
    computed by Hillis and Steele's scan.

    Raises
    ------
    throughtime.checks.CheckFailed
        When the states are wrong (with the likely mistake), of the wrong shape, an input
        was changed in place, or the function fails.
    """
    return _run_check("check_hillis_steele", hillis_steele)
