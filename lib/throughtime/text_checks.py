"""Assignment checks for the language-model exercises, in the style of ``throughtime.checks``.

- ``check_next_char_probabilities(fn)``: ``fn(logits, temperature, top_k=None)`` returns
  the sampling distribution softmax(logits / temperature) over the k largest logits, 0 for
  the others, float64 (B, V).
- ``check_bits_and_perplexity(fn)``: ``fn(logits, targets)`` returns the mean
  cross-entropy in bits per character, -mean log2 softmax(logits)[target], and the
  perplexity 2 ** bits; logits (N, V), targets (N,) integer ids.

Each check draws hidden cases from a private seed, compares the student's outputs with the
library's reference in float64 and, when the numbers are exactly those of a known mistake
(natural logarithms, multiplying by the temperature, forgetting to renormalise after top-k,
...), says which. The machinery (running the student's code, refusing the library's own
functions or copies of them, explaining a mismatch) is that of ``throughtime.checks``;
``throughtime.checks``' ``hidden_cases``, ``run_cases``, ``judge_cases`` and
``hidden_check`` take these checks' names, for graders (and are importable from here too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import checks
from .checks import (  # noqa: F401  (the grader's entry points, re-exported)
    Case,
    _public,
    _Spec,
    hidden_cases,
    hidden_check,
    judge_cases,
    run_cases,
)
from .text import next_char_probabilities

__all__ = [
    "CHECKS",
    "check_next_char_probabilities",
    "check_bits_and_perplexity",
]

_SEED = 6_402_117  # private: the public cases depend on it


# Mistakes ---------------------------------------------------------------------------------


def _quietly(variant: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """A mistaken variant may overflow or divide by zero: its numbers, without warnings."""
    with np.errstate(all="ignore"):
        return variant(*args, **kwargs)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _probability_variant(logits, temperature, top_k, *, multiply=False, renormalise=True,
                         zero_logits=False, axis=-1, keep=0):
    z = logits * temperature if multiply else logits / temperature
    if top_k is not None:
        kth = np.sort(z, axis=-1)[..., -(top_k + keep)][..., None]
        if zero_logits:
            z = np.where(z >= kth, z, 0.0)
        elif not renormalise:
            p = _softmax(z)
            return {"the probabilities": np.where(z >= kth, p, 0.0)}
        else:
            z = np.where(z >= kth, z, -np.inf)
    if axis == 0:
        z = z - z.max(axis=0, keepdims=True)
        e = np.exp(z)
        return {"the probabilities": e / e.sum(axis=0, keepdims=True)}
    return {"the probabilities": _softmax(z)}


def _probability_mistakes(logits, temperature, top_k):
    hints = [
        ("the logits are multiplied by the temperature; divide them: softmax(z / tau), so "
         "that tau > 1 flattens the distribution and tau < 1 sharpens it.", {"multiply": True}),
        ("the softmax is taken over the batch axis (axis 0); each row is one distribution "
         "over the V symbols: normalise along the last axis.", {"axis": 0}),
    ]
    if top_k is not None:
        hints += [
            ("after top-k the kept probabilities are not renormalised: apply the softmax to "
             "the k kept logits only (set the others to -inf first), so that they sum to 1.",
             {"renormalise": False}),
            ("the logits outside the top k are set to 0, which still gives them probability; "
             "set them to -inf so that exp gives exactly 0.", {"zero_logits": True}),
            ("one logit too many is kept: top-k keeps exactly the k largest.", {"keep": 1}),
        ]
        if top_k > 1:
            hints.append(("one logit too few is kept: top-k keeps the k largest, the k-th "
                          "included.", {"keep": -1}))
    return [(hint, lambda kw=kw: _quietly(_probability_variant, logits, temperature, top_k,
                                          **kw)) for hint, kw in hints]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _score_variant(logits, targets, *, log=np.log2, total=False, base=2.0, raw=False,
                   greedy=False, inverse=False):
    rows = np.arange(len(targets))
    if raw:
        chosen = logits[rows, targets] / np.log(2) if log is np.log2 else logits[rows, targets]
    else:
        log_p = _log_softmax(logits)
        picked = log_p[rows, logits.argmax(axis=-1) if greedy else targets]
        chosen = picked / np.log(2) if log is np.log2 else picked
    bits = -(chosen.sum() if total else chosen.mean())
    if inverse:
        probabilities = np.exp(_log_softmax(logits)[rows, targets])
        return {"bits": np.float64(bits), "perplexity": np.float64(1 / probabilities.mean())}
    return {"bits": np.float64(bits), "perplexity": np.float64(base ** bits)}


def _score_mistakes(logits, targets):
    hints = [
        ("the logarithm is natural (nats); bits per character use log2: divide the "
         "cross-entropy in nats by ln 2.", {"log": np.log}),
        ("the log-probabilities are summed over the characters; bits per character are their "
         "mean.", {"total": True}),
        ("the logits are used as log-probabilities; normalise them first with a log-softmax, "
         "log p = z - log sum exp z.", {"raw": True}),
        ("the probability of the most likely character is scored; score the probability of "
         "the character that came, logits[t, targets[t]].", {"greedy": True}),
        ("the perplexity is e ** bits; with bits it is 2 ** bits (e ** nats).",
         {"base": math.e}),
        ("the perplexity is 1 / mean(p); it is 2 ** (mean of -log2 p), one over the geometric "
         "mean of the probabilities.", {"inverse": True}),
    ]
    return [(hint, lambda kw=kw: _quietly(_score_variant, logits, targets, **kw))
            for hint, kw in hints]


# Cases ------------------------------------------------------------------------------------


def _probability_case(rng, size, label) -> Case:
    batch, symbols, temperature, top_k, scale = size
    logits = rng.normal(0.0, scale, size=(batch, symbols))
    reference = next_char_probabilities(logits, temperature, top_k)
    dims = {"B": batch, "V": symbols, "temperature": temperature, "top_k": top_k}
    if scale > 100:
        dims["logits up to"] = f"{float(np.abs(logits).max()):.0f}"
    return Case(label(dims), 0, (logits, float(temperature)),
                {"the probabilities": (batch, symbols)}, {"the probabilities": reference},
                kwargs={} if top_k is None else {"top_k": int(top_k)},
                mistakes=lambda: _probability_mistakes(logits, temperature, top_k))


def _score_case(rng, size, label) -> Case:
    count, symbols, scale = size
    logits = rng.normal(0.0, scale, size=(count, symbols))
    targets = rng.integers(0, symbols, size=count)
    log_p = _log_softmax(logits)[np.arange(count), targets]
    bits = np.float64(-log_p.mean() / np.log(2))
    dims = {"N": count, "V": symbols}
    return Case(label(dims), 0, (logits, targets), {"bits": "number", "perplexity": "number"},
                {"bits": bits, "perplexity": np.float64(2.0 ** bits)},
                mistakes=lambda: _score_mistakes(logits, targets))


_SPECS: dict[str, _Spec] = {spec.check: spec for spec in (
    _Spec("check_next_char_probabilities", "next_char_probabilities",
          ("logits", "temperature"), ("the probabilities",),
          "the sampling distribution", _probability_case,
          ((3, 7, 1.0, None, 2.0), (2, 9, 0.5, None, 2.0), (4, 6, 2.0, None, 2.0),
           (4, 10, 0.8, 3, 2.0), (3, 6, 1.5, 1, 2.0), (2, 8, 0.05, None, 400.0),
           (2, 8, 1.0, 5, 400.0)),
          ("throughtime.text.next_char_probabilities",
           "throughtime.language_model.sampling_probabilities",
           "throughtime.language_model.sample_next"),
          allowed="numpy's exp, max, sort and sum are fine"),
    _Spec("check_bits_and_perplexity", "bits_and_perplexity", ("logits", "targets"),
          ("bits", "perplexity"), "bits per character and perplexity", _score_case,
          ((50, 7, 1.5), (200, 30, 3.0), (5, 4, 0.5), (40, 12, 300.0)),
          ("throughtime.text.bits_per_character", "throughtime.text.perplexity",
           "throughtime.language_model.evaluate_bits"),
          allowed="numpy is fine"),
)}

CHECKS = tuple(_SPECS)
"""The names of this module's checks, for graders."""


# The entry points are throughtime.checks' own, which know this module's checks too; only the
# public cases' seed is this module's.


def _run_check(check: str, fn: Any) -> str:
    return checks._run_check(check, fn, seed=_SEED)


@_public
def check_next_char_probabilities(next_char_probabilities: Callable) -> None:
    """Check ``next_char_probabilities(logits, temperature, top_k=None) -> p``.

    p = softmax(logits / temperature) along the last axis, over the ``top_k`` largest
    logits of each row when ``top_k`` is given (0 for the others); logits (B, V) float64, p
    (B, V) float64. Some hidden cases have logits in the hundreds: exp must not overflow.

    Raises
    ------
    throughtime.checks.CheckFailed
        When the probabilities are wrong (with the likely mistake), not finite, of the
        wrong shape or dtype, an input was changed in place, or the function fails.
    """
    return _run_check("check_next_char_probabilities", next_char_probabilities)


@_public
def check_bits_and_perplexity(bits_and_perplexity: Callable) -> None:
    """Check ``bits_and_perplexity(logits, targets) -> (bits, perplexity)``.

    bits = -mean over t of log2 softmax(logits[t])[targets[t]]; perplexity = 2 ** bits;
    logits (N, V) float64, targets (N,) int64. Some hidden cases have logits in the
    hundreds: the log-softmax must be computed stably.

    Raises
    ------
    throughtime.checks.CheckFailed
        When a number is wrong (with the likely mistake), not finite, an input was changed
        in place, or the function fails.
    """
    return _run_check("check_bits_and_perplexity", bits_and_perplexity)
