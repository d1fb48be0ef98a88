"""Assignment checks for the exercises on bidirectional layers and beam search.

- ``check_bidirectional_gru(fn)``: ``fn(xs, forward_params, backward_params)`` returns
  ``(output, h_n)`` of one bidirectional GRU layer in numpy: ``output`` (T, B, 2H), the
  forward state and the backward state of every step side by side, and ``h_n`` (2, B, H),
  the last state of each direction, as ``torch.nn.GRU(bidirectional=True)`` returns them.
- ``check_beam_step(fn)``: ``fn(scores, log_probs, beam_width)`` returns ``(new_scores,
  parents, tokens)``, the ``beam_width`` best extensions of K hypotheses, best first.

Each check draws hidden cases from a private seed, compares the student's outputs with the
library's reference (``stacking.bidirectional_layer``, ``seq2seq.beam_step``) and, when the
numbers are exactly those of a known mistake (the backward states left in reversed order,
the sequence not reversed for the backward direction, the hypotheses' scores left out of
the ranking, ...), says which. The machinery is that of ``throughtime.checks``;
``hidden_cases``, ``run_cases``, ``judge_cases`` and ``hidden_check`` take these checks'
names, for graders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import checks, numpy_cells
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
from .seq2seq import beam_step
from .stacking import bidirectional_layer

__all__ = [
    "CHECKS",
    "check_bidirectional_gru",
    "check_beam_step",
    "hidden_cases",
    "run_cases",
    "judge_cases",
    "hidden_check",
]

_SEED = 5_310_884  # private: the public cases depend on it


# The bidirectional layer ------------------------------------------------------------------


def _gru_states(xs: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    return numpy_cells.gru_forward(xs, None, params)[0]


def _bidirectional_mistakes(xs, forward_params, backward_params):
    forward = _gru_states(xs, forward_params)
    backward_reversed = _gru_states(xs[::-1].copy(), backward_params)  # time runs T .. 1
    backward = backward_reversed[::-1]
    unreversed_input = _gru_states(xs, backward_params)
    same_params = _gru_states(xs[::-1].copy(), forward_params)[::-1]

    def result(first, second, h_first, h_second):
        return {"output": np.concatenate([first, second], axis=2),
                "h_n": np.stack([h_first, h_second])}

    return [
        ("the backward direction's states are still in reversed time order: after running "
         "the GRU on xs[::-1], reverse its states again ([::-1]) so that row t holds the "
         "backward state at step t, next to the forward state at step t.",
         lambda: result(forward, backward_reversed, forward[-1], backward_reversed[-1])),
        ("the backward direction reads the sequence forwards: run it on the reversed "
         "sequence, xs[::-1], so that it starts at x_T.",
         lambda: result(forward, unreversed_input, forward[-1], unreversed_input[-1])),
        ("the two directions are concatenated in the wrong order: the forward states come "
         "first ([forward, backward] along the last axis), and h_n[0] is the forward one.",
         lambda: result(backward, forward, backward[0], forward[-1])),
        ("h_n[1], the backward direction's last state, is the one after it has read the "
         "whole sequence, x_T down to x_1: it sits at row 0 of the output once the states "
         "are back in time order, not at the last row.",
         lambda: result(forward, backward, forward[-1], backward[-1])),
        ("the backward direction uses the forward direction's parameters: each direction "
         "has its own (backward_params for the backward one).",
         lambda: result(forward, same_params, forward[-1], same_params[0])),
    ]


def _bidirectional_case(rng, size, label) -> Case:
    steps, batch, input_size, hidden = size
    forward_params = numpy_cells.init_params("gru", input_size, hidden, rng)
    backward_params = numpy_cells.init_params("gru", input_size, hidden, rng)
    xs = rng.standard_normal((steps, batch, input_size))
    output, h_n = bidirectional_layer("gru", xs, forward_params, backward_params)
    dims = {"T": steps, "B": batch, "I": input_size, "H": hidden}
    return Case(label(dims), hidden, (xs, forward_params, backward_params),
                {"output": (steps, batch, 2 * hidden), "h_n": (2, batch, hidden)},
                {"output": output, "h_n": h_n},
                mistakes=lambda: _bidirectional_mistakes(xs, forward_params, backward_params))


# One step of beam search ------------------------------------------------------------------


def _ranked(candidates: np.ndarray, width: int, ascending: bool = False) -> np.ndarray:
    order = np.argsort(candidates if ascending else -candidates, kind="stable")
    return order[:width]


def _beam_mistakes(scores, log_probs, width):
    hypotheses, vocabulary = log_probs.shape
    candidates = (scores[:, None] + log_probs).ravel()

    def result(new_scores, parents, tokens):
        return {"new_scores": np.asarray(new_scores, dtype=np.float64),
                "parents": np.asarray(parents, dtype=np.float64),
                "tokens": np.asarray(tokens, dtype=np.float64)}

    best = _ranked(candidates, width)
    by_token = _ranked(log_probs.ravel(), width)
    hints = [
        ("the candidates are ranked by the new token's log-probability alone: a candidate's "
         "score is its hypothesis's score plus that log-probability, S_k + log p(v | k).",
         lambda: result(log_probs.ravel()[by_token], by_token // vocabulary,
                        by_token % vocabulary)),
        ("the candidates are ranked by the new token's log-probability alone (the returned "
         "scores add S_k afterwards): rank by S_k + log p(v | k), over all k and v together.",
         lambda: result(candidates[by_token], by_token // vocabulary, by_token % vocabulary)),
        ("the lowest scores are kept: keep the beam_width highest (log-probabilities are "
         "negative; the best is the one closest to 0).",
         lambda: result(*_split(candidates, _ranked(candidates, width, ascending=True),
                                vocabulary))),
        ("the right candidates are returned worst first: return them best first.",
         lambda: result(*_split(candidates, best[::-1], vocabulary))),
        ("the flat index of candidate (k, v) in the (K, V) array of scores is k V + v: the "
         "parent is index // V and the token index % V (divide by V, the number of tokens, "
         "not by K).",
         lambda: result(candidates[best], best // hypotheses, best % hypotheses)),
        ("the scores are probabilities: keep them as log-probabilities, S_k + log p(v | k), "
         "so that they add along a hypothesis and do not underflow.",
         lambda: result(np.exp(candidates[best]), best // vocabulary, best % vocabulary)),
    ]
    if width <= hypotheses:
        own = log_probs.argmax(axis=1)
        extended = scores + log_probs.max(axis=1)
        keep = _ranked(extended, width)
        hints.append(("each hypothesis keeps only its own best token: compare all K V "
                      "candidates together; one hypothesis may supply several of the kept "
                      "ones, and another none.",
                      lambda: result(extended[keep], keep, own[keep])))
    return hints


def _split(candidates, index, vocabulary):
    return candidates[index], index // vocabulary, index % vocabulary


def _beam_case(rng, size, label) -> Case:
    hypotheses, vocabulary, width = size
    scores = np.sort(-rng.exponential(3.0, size=hypotheses))[::-1].copy()
    log_probs = np.log(rng.dirichlet(np.ones(vocabulary), size=hypotheses))
    new_scores, parents, tokens = beam_step(scores, log_probs, width)
    dims = {"K": hypotheses, "V": vocabulary, "beam_width": width}
    return Case(label(dims), 0, (scores, log_probs, int(width)),
                {"new_scores": (width,), "parents": (width,), "tokens": (width,)},
                {"new_scores": new_scores, "parents": parents.astype(np.float64),
                 "tokens": tokens.astype(np.float64)},
                mistakes=lambda: _beam_mistakes(scores, log_probs, width))


def _indices_as_floats(fn: Callable) -> Callable:
    """The student's beam step, its integer outputs read as float64 for the comparison."""

    def beam_step_outputs(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, (tuple, list)) and len(result) == 3:
            result = tuple(np.asarray(value, dtype=np.float64)
                           if isinstance(value, np.ndarray) and index > 0
                           and np.issubdtype(value.dtype, np.integer) else value
                           for index, value in enumerate(result))
        return result

    return beam_step_outputs


_SPECS: dict[str, _Spec] = {spec.check: spec for spec in (
    _Spec("check_bidirectional_gru", "bidirectional_gru",
          ("xs", "forward_params", "backward_params"), ("output", "h_n"),
          "output and h_n", _bidirectional_case,
          ((1, 2, 2, 3), (4, 3, 2, 3), (6, 2, 3, 4), (5, 1, 2, 2)),
          ("throughtime.stacking.bidirectional_layer", "throughtime.stacking.stacked_forward"),
          allowed="numpy_cells.gru_forward is fine"),
    _Spec("check_beam_step", "beam_step", ("scores", "log_probs", "beam_width"),
          ("new_scores", "parents", "tokens"), "new_scores, parents and tokens", _beam_case,
          ((1, 5, 3), (3, 7, 3), (4, 6, 2), (2, 13, 5), (3, 4, 12)),
          ("throughtime.seq2seq.beam_step", "throughtime.seq2seq.beam_search"),
          allowed="numpy's argsort, sort and argmax are fine", prepare=_indices_as_floats),
)}

CHECKS = tuple(_SPECS)
"""The names of this module's checks, for graders."""



# The entry points are throughtime.checks' own, which know this module's checks too; only the
# public cases' seed is this module's.


def _run_check(check: str, fn: Any) -> str:
    return checks._run_check(check, fn, seed=_SEED)


@_public
def check_bidirectional_gru(bidirectional_gru: Callable) -> None:
    """Check ``bidirectional_gru(xs, forward_params, backward_params) -> (output, h_n)``.

    xs (T, B, I) float64; the two parameter dicts of ``numpy_cells`` (GRU, gates r, z, n);
    output (T, B, 2H) with ``output[t] = [forward state at t, backward state at t]`` and
    h_n (2, B, H), the forward direction's state after x_T and the backward direction's
    after x_1, as ``torch.nn.GRU(bidirectional=True)`` returns them. Zero initial states.

    Raises
    ------
    throughtime.checks.CheckFailed
        When an output is wrong (with the likely mistake), of the wrong shape or dtype, an
        input was changed in place, or the function fails.
    """
    return _run_check("check_bidirectional_gru", bidirectional_gru)


@_public
def check_beam_step(beam_step: Callable) -> None:
    """Check ``beam_step(scores, log_probs, beam_width) -> (new_scores, parents, tokens)``.

    scores (K,) float64, the hypotheses' log-probabilities; log_probs (K, V) float64, the
    log-probability of each next token after each hypothesis; returns the ``beam_width``
    best candidates S_k + log_probs[k, v] over all k and v, best first: their scores
    (float64), the hypothesis k each extends and the token v each adds (integer arrays).

    Raises
    ------
    throughtime.checks.CheckFailed
        When an output is wrong (with the likely mistake), of the wrong shape, an input
        was changed in place, or the function fails.
    """
    return _run_check("check_beam_step", beam_step)
