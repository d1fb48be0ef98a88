"""Linear recurrences, three ways to compute them, and the minGRU and minLSTM built on them.

A *linear recurrence* updates its state with a decay and an increment that do not depend on
the state::

    h_t = lambda_t * h_{t-1} + u_t          (elementwise; lambda_t, u_t of shape (B, H))

Each step is an affine map h -> lambda h + u, and maps compose: applying (lambda_1, u_1)
and then (lambda_2, u_2) is the single map

    (lambda_1, u_1) o (lambda_2, u_2) = (lambda_1 lambda_2, lambda_2 u_1 + u_2),

which is ``combine``. Composition is associative, so the states h_1 .. h_T, the
compositions of every prefix of the maps applied to h_0, are a *prefix scan* and can be
computed in any grouping (Blelloch 1990):

- ``scan_sequential``: the loop, T dependent steps;
- ``scan_hillis_steele``: ceil(log2 T) rounds, each combining every position with the one
  2^j steps before it (Hillis & Steele 1986); more work (about T log2 T combines), far
  less depth;
- ``scan_blelloch``: an up-sweep and a down-sweep over a balanced tree, about 2T combines
  in about 2 log2 T rounds (Blelloch 1990);
- ``scan_log_space``: h_t = Lambda_t (h_0 + sum_{s <= t} u_s / Lambda_s) with
  Lambda_t = prod_{s <= t} lambda_s, computed with two prefix sums in log space, a
  cumulative sum of log lambda and a cumulative log-sum-exp (Heinsen 2023). Increments of
  either sign are split into their positive and negative parts.

``scan_cost`` gives the depth (rounds of combines that must wait for each other) and the
work (combines) of each algorithm, ``scan_schedule`` which positions each round combines
(the explorer draws it), and ``scan_backward`` the gradient: the backward pass of a linear
recurrence is the same recurrence run backwards in time, delta_t = g_t +
lambda_{t+1} delta_{t+1}. The torch function ``linear_scan`` uses it, so its forward and
backward passes are both scans (Martin & Cundy 2018).

minGRU and minLSTM (Feng et al. 2024) are the GRU and the LSTM with every gate and the
candidate computed from x_t alone, so that the state update is a linear recurrence. In
the book's (PyTorch's) GRU convention, z keeps the old state:

    minGRU:   z_t = sigma(W_iz x_t + b_iz),  n_t = W_in x_t + b_in,
              h_t = z_t * h_{t-1} + (1 - z_t) * n_t        (lambda = z, u = (1 - z) n)
    minLSTM:  i_t = sigma(W_ii x_t + b_ii),  f_t = sigma(W_if x_t + b_if),
              g_t = W_ig x_t + b_ig,
              h_t = f_t / (f_t + i_t) * h_{t-1} + i_t / (f_t + i_t) * g_t

Feng et al. write the minGRU with z flipped (z writes), as Chung et al. write the GRU: the
same model with W_z -> -W_z. Parameters follow PyTorch's layout without the recurrent
half: ``weight_ih`` (G H, I) and ``bias_ih`` (G H,), gate blocks in the orders of
``torch.nn`` with the missing gates left out: z, n for the minGRU (G = 2; the GRU's r, z,
n without r) and i, f, g for the minLSTM (G = 3; the LSTM's i, f, g, o without o).
Sequences are time-major, (T, B, I).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ._validate import check_choice, check_float_array, check_int, describe
from .numpy_cells import sigmoid

__all__ = [
    "ALGORITHMS",
    "MIN_KINDS",
    "MIN_GATES",
    "combine",
    "scan_sequential",
    "scan_hillis_steele",
    "scan_blelloch",
    "scan_log_space",
    "scan_cumulative_product",
    "ScanCost",
    "scan_cost",
    "scan_schedule",
    "scan_backward",
    "linear_scan",
    "log_space_scan",
    "min_gates",
    "min_forward",
    "min_parameter_count",
    "MinGRU",
    "MinLSTM",
]

ALGORITHMS = ("sequential", "hillis_steele", "blelloch")
"""The scan algorithms of ``scan_cost`` and ``scan_schedule``."""

MIN_KINDS = ("minGRU", "minLSTM")
"""The two minimal recurrent layers of Feng et al. (2024)."""

MIN_GATES = {"minGRU": 2, "minLSTM": 3}
"""G, the gate blocks stacked in ``weight_ih``: z, n (minGRU); i, f, g (minLSTM)."""


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------


def _check_scan_inputs(decay: Any, increment: Any, h0: Any, *, decay_name: str = "decay"
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """decay and increment (T, ...) of one shape and dtype; h0 of shape (...) or None."""
    decay = check_float_array(decay_name, decay)
    if decay.ndim < 1:
        raise ValueError(f"{decay_name} must have a time axis first, shape (T, ...), got a "
                         f"0-D array")
    increment = check_float_array("increment", increment, shape=decay.shape,
                                  dtype=decay.dtype)
    if h0 is None:
        h0 = np.zeros(decay.shape[1:], dtype=decay.dtype)
    else:
        h0 = check_float_array("h0", h0, shape=decay.shape[1:], dtype=decay.dtype)
    return decay, increment, h0


# --------------------------------------------------------------------------------------
# Scans in numpy
# --------------------------------------------------------------------------------------


def combine(decay_1: np.ndarray, increment_1: np.ndarray, decay_2: np.ndarray,
            increment_2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compose two steps: first h -> lambda_1 h + u_1, then h -> lambda_2 h + u_2.

    (lambda_1, u_1) o (lambda_2, u_2) = (lambda_1 lambda_2, lambda_2 u_1 + u_2), because
    lambda_2 (lambda_1 h + u_1) + u_2 = (lambda_1 lambda_2) h + (lambda_2 u_1 + u_2). The
    operation is associative but not commutative: the first pair is the earlier step.
    Works on numpy arrays and torch tensors of any (broadcastable) shapes.

    Returns
    -------
    decay, increment
        The composed step.
    """
    return decay_1 * decay_2, decay_2 * increment_1 + increment_2


def scan_sequential(decay: np.ndarray, increment: np.ndarray,
                    h0: np.ndarray | None = None) -> np.ndarray:
    """h_t = lambda_t h_{t-1} + u_t by a loop over time: T dependent steps.

    Parameters
    ----------
    decay, increment : ndarray, shape (T, ...)
        lambda_t and u_t (float32 or float64, one shape and dtype), time first.
    h0 : ndarray, shape (...), optional
        The initial state; zeros by default.

    Returns
    -------
    ndarray, shape (T, ...)
        ``states[t]`` is the state after step t (h_{t+1} in the book's 1-based notation).
    """
    decay, increment, h0 = _check_scan_inputs(decay, increment, h0)
    states = np.empty_like(increment)
    h = h0
    for t in range(decay.shape[0]):
        h = decay[t] * h + increment[t]
        states[t] = h
    return states


def _fold_initial_state(decay: np.ndarray, increment: np.ndarray,
                        h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies with h_0 folded into the first step, which becomes the constant map to h_1.

    The first map applied to h_0 gives h_1 = lambda_1 h_0 + u_1 whatever comes before, so
    it is replaced by (0, lambda_1 h_0 + u_1); then the increment of every prefix
    composition is the state itself.
    """
    decay, increment = decay.copy(), increment.copy()
    increment[0] = decay[0] * h0 + increment[0]
    decay[0] = 0.0
    return decay, increment


def _rounds(length: int) -> int:
    """ceil(log2 length), 0 for a length of 1."""
    return (length - 1).bit_length()


def scan_hillis_steele(decay: np.ndarray, increment: np.ndarray,
                       h0: np.ndarray | None = None) -> np.ndarray:
    """The states by Hillis and Steele's scan: ceil(log2 T) rounds over all positions.

    In round j = 0, 1, ..., every position t >= 2^j replaces its pair by the composition
    of the pair 2^j positions earlier with its own, all positions at once (from the values
    of the previous round). After round j position t holds the composition of the
    min(t + 1, 2^(j+1)) steps ending at t, so after ceil(log2 T) rounds it holds the whole
    prefix, and (with h_0 folded into the first step) its increment is the state.
    Work: T ceil(log2 T) - (2^ceil(log2 T) - 1) combines (``scan_cost``).

    Parameters and returns are those of ``scan_sequential``.
    """
    decay, increment, h0 = _check_scan_inputs(decay, increment, h0)
    decay, increment = _fold_initial_state(decay, increment, h0)
    length = decay.shape[0]
    for j in range(_rounds(length)):
        offset = 2 ** j
        decay[offset:], increment[offset:] = combine(decay[:-offset], increment[:-offset],
                                                     decay[offset:], increment[offset:])
    return increment


def scan_blelloch(decay: np.ndarray, increment: np.ndarray,
                  h0: np.ndarray | None = None) -> np.ndarray:
    """The states by Blelloch's work-efficient scan: an up-sweep, a down-sweep, a last round.

    The T steps are padded with identity maps (1, 0) to n = 2^ceil(log2 T). The up-sweep
    combines neighbours in a balanced binary tree (n - 1 combines in log2 n rounds), so
    that every node holds the composition of its subtree. The down-sweep walks back down
    (another n - 1 combines in log2 n rounds), handing every node the composition of
    everything before its subtree: the left child gets its parent's, the right child the
    parent's composed with the left sibling's subtree. That is the *exclusive* scan; one
    last round composes it with each step's own map (T combines) to give the states.

    Parameters and returns are those of ``scan_sequential``.
    """
    decay, increment, h0 = _check_scan_inputs(decay, increment, h0)
    length = decay.shape[0]
    width = 2 ** _rounds(length)
    own = _fold_initial_state(decay, increment, h0)
    tree_decay = np.ones((width, *decay.shape[1:]), dtype=decay.dtype)
    tree_increment = np.zeros((width, *decay.shape[1:]), dtype=decay.dtype)
    tree_decay[:length], tree_increment[:length] = own
    levels = _rounds(width)
    for level in range(levels):                       # up-sweep
        step = 2 ** (level + 1)
        left, right = slice(step // 2 - 1, width, step), slice(step - 1, width, step)
        tree_decay[right], tree_increment[right] = combine(
            tree_decay[left], tree_increment[left], tree_decay[right], tree_increment[right])
    tree_decay[width - 1], tree_increment[width - 1] = 1.0, 0.0
    for level in reversed(range(levels)):             # down-sweep
        step = 2 ** (level + 1)
        left, right = slice(step // 2 - 1, width, step), slice(step - 1, width, step)
        subtree = tree_decay[left].copy(), tree_increment[left].copy()
        before = tree_decay[right].copy(), tree_increment[right].copy()
        tree_decay[left], tree_increment[left] = before
        tree_decay[right], tree_increment[right] = combine(*before, *subtree)
    _, states = combine(tree_decay[:length], tree_increment[:length], *own)
    return states


def _log_cumulative_sum_exp(values: np.ndarray) -> np.ndarray:
    """log(cumsum(exp(values))) along axis 0, without overflow (-inf entries allowed)."""
    with np.errstate(invalid="ignore"):
        return np.logaddexp.accumulate(values, axis=0)


def scan_log_space(log_decay: np.ndarray, increment: np.ndarray,
                   h0: np.ndarray | None = None) -> np.ndarray:
    """The states from two prefix sums in log space (Heinsen 2023), for decays lambda > 0.

    With Lambda_t = prod_{s <= t} lambda_s, unrolling the recurrence gives
    h_t = Lambda_t (h_0 + sum_{s <= t} u_s / Lambda_s). In log space, with
    A_t = sum_{s <= t} log lambda_s (a cumulative sum),

        h_t = exp(A_t + logcumsumexp_{s <= t}(log u_s - A_s)),

    where h_0 enters as the first term with A = 0. Logarithms need positive numbers, so the
    positive and the negative parts of the increments (and of h_0) go through separately
    and are subtracted at the end. Both prefix sums are scans themselves, computed here by
    numpy's sequential accumulate; on parallel hardware they take log-depth too. Nothing
    overflows however long the sequence: the terms stay in log space until the end.

    Parameters
    ----------
    log_decay : ndarray, shape (T, ...)
        log lambda_t (finite, so lambda_t > 0).
    increment : ndarray, shape (T, ...)
        u_t, of either sign.
    h0 : ndarray, shape (...), optional

    Returns
    -------
    ndarray, shape (T, ...)
    """
    log_decay, increment, h0 = _check_scan_inputs(log_decay, increment, h0,
                                                  decay_name="log_decay")
    total_log_decay = np.cumsum(log_decay, axis=0)                    # A_t
    states = np.zeros_like(increment)
    with np.errstate(divide="ignore"):
        for sign in (1.0, -1.0):
            terms = np.log(np.maximum(sign * increment, 0.0)) - total_log_decay
            first = np.log(np.maximum(sign * h0, 0.0))[None]
            summed = _log_cumulative_sum_exp(np.concatenate([first, terms]))[1:]
            states += sign * np.exp(total_log_decay + summed)
    return states


def scan_cumulative_product(decay: np.ndarray, increment: np.ndarray,
                            h0: np.ndarray | None = None) -> np.ndarray:
    """The closed form h_t = Lambda_t (h_0 + sum_{s <= t} u_s / Lambda_s), computed directly.

    Exact in exact arithmetic, and the reason ``scan_log_space`` exists: Lambda_t, a product
    of numbers below 1, underflows to 0 on long sequences, and u_s / Lambda_s then
    overflows to infinity, so the result becomes NaN (no warning is printed). Kept to show
    that failure.
    """
    decay, increment, h0 = _check_scan_inputs(decay, increment, h0)
    with np.errstate(all="ignore"):
        total_decay = np.cumprod(decay, axis=0)
        return total_decay * (h0 + np.cumsum(increment / total_decay, axis=0))


class ScanCost(NamedTuple):
    """Cost of a scan over T steps: ``depth`` rounds that must wait for each other, and
    ``work``, the number of combines (for the loop, the T steps themselves)."""

    depth: int
    work: int


def scan_cost(length: int, algorithm: str) -> ScanCost:
    """Depth and work of computing T states with ``algorithm``, from the algorithms' shape.

    - ``"sequential"``: depth T, work T (each step waits for the previous one);
    - ``"hillis_steele"``: depth ceil(log2 T); round j combines the T - 2^j positions
      t >= 2^j, so the work is T ceil(log2 T) - (2^ceil(log2 T) - 1);
    - ``"blelloch"``: with n = 2^ceil(log2 T), log2 n up-sweep rounds (n - 1 combines),
      log2 n down-sweep rounds (n - 1 combines) and a last round of T: depth
      2 log2 n + 1, work 2 (n - 1) + T.

    A nonzero h_0 is folded into the first step beforehand (``_fold_initial_state``), one
    multiply-add not counted here; with h_0 = 0 there is nothing to fold.

    Parameters
    ----------
    length : int
        T, at least 1.
    algorithm : {"sequential", "hillis_steele", "blelloch"}
    """
    length = check_int("length", length, minimum=1)
    check_choice("algorithm", algorithm, ALGORITHMS)
    rounds = _rounds(length)
    if algorithm == "sequential":
        return ScanCost(length, length)
    if algorithm == "hillis_steele":
        return ScanCost(rounds, length * rounds - (2 ** rounds - 1))
    width = 2 ** rounds
    return ScanCost(2 * rounds + 1, 2 * (width - 1) + length)


def scan_schedule(length: int, algorithm: str) -> list[list[tuple[int, int]]]:
    """Which positions each round combines: a list of rounds, each a list of (source, target).

    An edge (s, t) says that in this round position t combines its value with the value
    of position s (s < t: the earlier map comes first). For ``"sequential"`` every round
    has the one edge (t - 1, t). For ``"hillis_steele"`` round j has (t - 2^j, t) for
    every t >= 2^j. For ``"blelloch"`` positions are those of the padded tree
    (0 .. 2^ceil(log2 T) - 1): the up-sweep rounds (left child -> right child), then the
    down-sweep rounds, whose edges go both ways (the right child gets the left's subtree,
    the left child the right's prefix), then the last round (t, t) of T edges, drawn as a
    position combining with its own map. The number of rounds is ``scan_cost``'s depth
    (the loop's first step reads h_0, drawn as the edge (-1, 0)). The number of edges is
    its work, except in Blelloch's down-sweep, where each pair of nodes has two edges, one
    combine (left -> right) and one move (right -> left).
    """
    length = check_int("length", length, minimum=1)
    check_choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "sequential":
        return [[(t - 1, t)] if t else [(-1, 0)] for t in range(length)]
    if algorithm == "hillis_steele":
        return [[(t - 2 ** j, t) for t in range(2 ** j, length)]
                for j in range(_rounds(length))]
    width = 2 ** _rounds(length)
    levels = _rounds(width)
    up = [[(k + 2 ** level - 1, k + 2 ** (level + 1) - 1)
           for k in range(0, width, 2 ** (level + 1))] for level in range(levels)]
    down = []
    for level in reversed(range(levels)):
        pairs = []
        for k in range(0, width, 2 ** (level + 1)):
            left, right = k + 2 ** level - 1, k + 2 ** (level + 1) - 1
            pairs += [(left, right), (right, left)]
        down.append(pairs)
    return [*up, *down, [(t, t) for t in range(length)]]


def scan_backward(decay: np.ndarray, states: np.ndarray, grad_states: np.ndarray,
                  h0: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss L through h_t = lambda_t h_{t-1} + u_t, by a scan backwards in time.

    With g_t = dL/dh_t from the loss directly (``grad_states``), the total gradient at the
    state, delta_t, collects g_t and what h_t contributes through h_{t+1}:

        delta_t = g_t + lambda_{t+1} delta_{t+1},   delta_T = g_T,

    the same kind of linear recurrence, run from t = T down to 1 (decay lambda_{t+1},
    increment g_t). Then dL/du_t = delta_t, dL/dlambda_t = delta_t h_{t-1} and
    dL/dh_0 = lambda_1 delta_1.

    Parameters
    ----------
    decay : ndarray, shape (T, ...)
    states : ndarray, shape (T, ...)
        The forward states.
    grad_states : ndarray, shape (T, ...)
        g_t.
    h0 : ndarray, shape (...), optional
        The initial state of the forward pass (zeros by default).

    Returns
    -------
    grad_decay, grad_increment : ndarray, shape (T, ...)
    grad_h0 : ndarray, shape (...)
    """
    decay, states, h0 = _check_scan_inputs(decay, states, h0)
    grad_states = check_float_array("grad_states", grad_states, shape=decay.shape,
                                    dtype=decay.dtype)
    following = np.concatenate([decay[1:], np.zeros_like(decay[:1])])  # lambda_{t+1}
    delta = scan_sequential(following[::-1], grad_states[::-1])[::-1]
    previous = np.concatenate([h0[None], states[:-1]])
    return delta * previous, delta.copy(), decay[0] * delta[0]


# --------------------------------------------------------------------------------------
# Scans in torch: forward and backward both scans
# --------------------------------------------------------------------------------------

TORCH_ALGORITHMS = ("sequential", "hillis_steele")


def _torch_sequential(decay: Tensor, increment: Tensor, h0: Tensor,
                      reverse: bool = False) -> Tensor:
    """The loop, one fused multiply-add per step, written into one preallocated tensor."""
    states = torch.empty_like(increment)
    h = h0
    steps = range(decay.shape[0] - 1, -1, -1) if reverse else range(decay.shape[0])
    for t in steps:
        h = torch.addcmul(increment[t], decay[t], h, out=states[t])
    return states


def _torch_hillis_steele(decay: Tensor, increment: Tensor, h0: Tensor,
                         reverse: bool = False) -> Tensor:
    if reverse:
        return _torch_hillis_steele(decay.flip(0), increment.flip(0), h0).flip(0)
    decay, increment = decay.clone(), increment.clone()
    increment[0] = torch.addcmul(increment[0], decay[0], h0)
    decay[0] = 0.0
    length, offset = decay.shape[0], 1
    while offset < length:
        new_increment = torch.addcmul(increment[offset:], decay[offset:], increment[:-offset])
        new_decay = decay[offset:] * decay[:-offset]
        increment[offset:], decay[offset:] = new_increment, new_decay
        offset *= 2
    return increment


_TORCH_SCANS = {"sequential": _torch_sequential, "hillis_steele": _torch_hillis_steele}


class _LinearScan(torch.autograd.Function):
    """h = scan(lambda, u, h0), backward by ``scan_backward``: both one algorithm."""

    @staticmethod
    def forward(ctx: Any, decay: Tensor, increment: Tensor, h0: Tensor,
                algorithm: str) -> Tensor:
        scan = _TORCH_SCANS[algorithm]
        states = scan(decay, increment, h0)
        ctx.save_for_backward(decay, h0, states)
        ctx.algorithm = algorithm
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_states: Tensor) -> tuple[Tensor | None, ...]:
        decay, h0, states = ctx.saved_tensors
        following = torch.cat([decay[1:], torch.zeros_like(decay[:1])])   # lambda_{t+1}
        delta = _TORCH_SCANS[ctx.algorithm](following, grad_states.contiguous(),
                                            torch.zeros_like(h0), reverse=True)
        grad_decay = torch.empty_like(decay)
        torch.mul(delta[1:], states[:-1], out=grad_decay[1:])
        torch.mul(delta[0], h0, out=grad_decay[0])
        return grad_decay, delta, decay[0] * delta[0], None


def _check_torch_scan(decay: Any, increment: Any, h0: Any, name: str = "decay"
                      ) -> tuple[Tensor, Tensor, Tensor]:
    for label, value in ((name, decay), ("increment", increment)):
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"{label} must be a floating-point torch tensor, got "
                            f"{describe(value)}")
    if decay.ndim < 1 or decay.shape[0] < 1:
        raise ValueError(f"{name} must have a time axis first, shape (T, ...), got "
                         f"{tuple(decay.shape)}")
    if increment.shape != decay.shape or increment.dtype != decay.dtype:
        raise ValueError(f"increment must have the shape and dtype of {name}, "
                         f"{tuple(decay.shape)} {decay.dtype}, got {tuple(increment.shape)} "
                         f"{increment.dtype}")
    if h0 is None:
        h0 = decay.new_zeros(decay.shape[1:])
    elif not isinstance(h0, Tensor) or h0.shape != decay.shape[1:] or h0.dtype != decay.dtype:
        raise ValueError(f"h0 must be a tensor of shape {tuple(decay.shape[1:])} and dtype "
                         f"{decay.dtype} (one state per sequence), got {describe(h0)}")
    return decay, increment, h0


def linear_scan(decay: Tensor, increment: Tensor, h0: Tensor | None = None, *,
                algorithm: str = "sequential") -> Tensor:
    """h_t = lambda_t h_{t-1} + u_t in torch, differentiable, forward and backward by scans.

    The forward pass runs ``algorithm`` without recording a graph; the backward pass runs
    the same algorithm backwards in time (``scan_backward``): delta_t = g_t +
    lambda_{t+1} delta_{t+1}, then dL/du_t = delta_t, dL/dlambda_t = delta_t h_{t-1},
    dL/dh_0 = lambda_1 delta_1. Autograd would instead record every step of the loop (or
    every round of the scan) and replay it; here the graph holds one node. Second
    derivatives are not supported.

    Parameters
    ----------
    decay, increment : Tensor, shape (T, ...)
    h0 : Tensor, shape (...), optional
        Zeros by default.
    algorithm : {"sequential", "hillis_steele"}
        The loop (T steps of one fused multiply-add) or Hillis and Steele's scan
        (ceil(log2 T) rounds over all positions).

    Returns
    -------
    Tensor, shape (T, ...)
    """
    check_choice("algorithm", algorithm, TORCH_ALGORITHMS)
    decay, increment, h0 = _check_torch_scan(decay, increment, h0)
    return _LinearScan.apply(decay, increment, h0, algorithm)


def log_space_scan(log_decay: Tensor, increment: Tensor, h0: Tensor | None = None) -> Tensor:
    """``scan_log_space`` in torch: a cumulative sum and two ``torch.logcumsumexp``.

    Differentiable by autograd. ``log_decay`` is log lambda_t (finite); increments of
    either sign are split into their positive and negative parts.
    """
    log_decay, increment, h0 = _check_torch_scan(log_decay, increment, h0, name="log_decay")
    total_log_decay = torch.cumsum(log_decay, dim=0)
    states = torch.zeros_like(increment)
    for sign in (1.0, -1.0):
        terms = _safe_log(sign * increment) - total_log_decay
        first = _safe_log(sign * h0)[None]
        summed = torch.logcumsumexp(torch.cat([first, terms]), dim=0)[1:]
        states = states + sign * torch.exp(total_log_decay + summed)
    return states


_LOG_OF_NOTHING = -1.0e4
"""Stands for log 0 in ``log_space_scan``: exp of it is 0 in float32 and float64, and it
keeps ``torch.logcumsumexp``'s gradient finite where a whole prefix would be log 0 (-inf),
which would make it NaN. No float is small enough for its log to come near it."""


def _safe_log(values: Tensor) -> Tensor:
    """log of the positive entries, ``_LOG_OF_NOTHING`` elsewhere, with finite gradients."""
    positive = values > 0
    return torch.where(positive, torch.log(torch.where(positive, values, 1.0)),
                       _LOG_OF_NOTHING)


# --------------------------------------------------------------------------------------
# minGRU and minLSTM in numpy
# --------------------------------------------------------------------------------------


def _check_min_kind(kind: Any) -> str:
    return check_choice("kind", kind, MIN_KINDS)


def min_parameter_count(kind: str, input_size: int, hidden_size: int, *,
                        num_layers: int = 1) -> int:
    """Parameters of a minGRU (G = 2) or minLSTM (G = 3) layer stack: G H (I + 1) per layer.

    There is no recurrent matrix, so nothing grows as H^2 within a layer; a layer after the
    first reads the H outputs below it, so its I is H.
    """
    gates = MIN_GATES[_check_min_kind(kind)]
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    num_layers = check_int("num_layers", num_layers, minimum=1)
    return gates * hidden_size * (input_size + 1) + (num_layers - 1) * gates * hidden_size * (
        hidden_size + 1)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log sigma(x) = -log(1 + e^{-x}), without overflow."""
    return -np.logaddexp(0.0, -x)


def min_gates(kind: str, xs: np.ndarray, params: dict[str, np.ndarray], *,
              tanh_candidate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decay, its logarithm and the increment of a minGRU or minLSTM, for every step at once.

    Nothing here depends on the state, so all T steps are one matrix product
    a_t = W_ih x_t + b_ih (the pre-activations, (T, B, G H)) and elementwise functions:

    - minGRU (blocks z, n): lambda_t = z_t = sigma(a_z), u_t = (1 - z_t) n_t with
      n_t = a_n (or tanh(a_n) when ``tanh_candidate``, the GRU's candidate);
    - minLSTM (blocks i, f, g): lambda_t = f_t / (f_t + i_t), u_t = i_t / (f_t + i_t) g_t
      with i_t = sigma(a_i), f_t = sigma(a_f), g_t = a_g.

    log lambda_t is computed from the pre-activations (log sigma(a) = -log(1 + e^{-a})), so
    it stays finite where lambda_t itself rounds to 0.

    Parameters
    ----------
    kind : {"minGRU", "minLSTM"}
    xs : ndarray, shape (T, B, I)
    params : dict
        ``weight_ih`` (G H, I) and ``bias_ih`` (G H,).
    tanh_candidate : bool
        minGRU only: squash the candidate with tanh, as the GRU does.

    Returns
    -------
    decay, log_decay, increment : ndarray, shape (T, B, H)
    """
    gates = MIN_GATES[_check_min_kind(kind)]
    if not isinstance(params, dict) or set(params) != {"weight_ih", "bias_ih"}:
        raise ValueError(f"params must be a dict with the keys 'weight_ih' and 'bias_ih', got "
                         f"{describe(params) if not isinstance(params, dict) else sorted(params)}")
    weight = check_float_array("params['weight_ih']", params["weight_ih"], ndim=2)
    if weight.shape[0] % gates:
        raise ValueError(f"params['weight_ih'] must have G H rows with G = {gates} for a "
                         f"{kind}, got {weight.shape[0]} rows")
    hidden, inputs = weight.shape[0] // gates, weight.shape[1]
    bias = check_float_array("params['bias_ih']", params["bias_ih"], shape=(gates * hidden,),
                             dtype=weight.dtype)
    xs = check_float_array("xs", xs, shape=(None, None, inputs), dims=("T", "B", "I"),
                           dtype=weight.dtype)
    if tanh_candidate and kind != "minGRU":
        raise ValueError("tanh_candidate applies to the minGRU only")
    pre = xs @ weight.T + bias
    if kind == "minGRU":
        z_pre, n = pre[..., :hidden], pre[..., hidden:]
        n = np.tanh(n) if tanh_candidate else n
        z = sigmoid(z_pre)
        return z, _log_sigmoid(z_pre), (1 - z) * n
    i_pre, f_pre, g = pre[..., :hidden], pre[..., hidden:2 * hidden], pre[..., 2 * hidden:]
    log_i, log_f = _log_sigmoid(i_pre), _log_sigmoid(f_pre)
    log_total = np.logaddexp(log_i, log_f)
    return np.exp(log_f - log_total), log_f - log_total, np.exp(log_i - log_total) * g


def min_forward(kind: str, xs: np.ndarray, h0: np.ndarray | None,
                params: dict[str, np.ndarray], *, method: str = "sequential",
                tanh_candidate: bool = False) -> np.ndarray:
    """States of a minGRU or minLSTM layer over a sequence, by one of the four scans.

    Parameters
    ----------
    kind : {"minGRU", "minLSTM"}
    xs : ndarray, shape (T, B, I)
    h0 : ndarray, shape (B, H), or None for zeros
    params : dict
        ``weight_ih`` (G H, I), ``bias_ih`` (G H,).
    method : {"sequential", "hillis_steele", "blelloch", "log_space"}
    tanh_candidate : bool
        See ``min_gates``.

    Returns
    -------
    ndarray, shape (T, B, H)
    """
    check_choice("method", method, (*ALGORITHMS, "log_space"))
    decay, log_decay, increment = min_gates(kind, xs, params, tanh_candidate=tanh_candidate)
    if method == "log_space":
        return scan_log_space(log_decay, increment, h0)
    scan = {"sequential": scan_sequential, "hillis_steele": scan_hillis_steele,
            "blelloch": scan_blelloch}[method]
    return scan(decay, increment, h0)


# --------------------------------------------------------------------------------------
# minGRU and minLSTM as torch modules
# --------------------------------------------------------------------------------------

TORCH_METHODS = ("sequential", "hillis_steele", "log_space", "autograd_loop")


def _torch_log_sigmoid(x: Tensor) -> Tensor:
    return nn.functional.logsigmoid(x)


def min_decay_increment(kind: str, pre: Tensor, *, tanh_candidate: bool = False,
                        log: bool = False) -> tuple[Tensor, Tensor]:
    """(lambda_t, u_t) of a minGRU or minLSTM from its pre-activations (..., G H) in torch.

    With ``log=True`` the first tensor is log lambda_t instead. The equations are those of
    ``min_gates``.
    """
    hidden = pre.shape[-1] // MIN_GATES[kind]
    if kind == "minGRU":
        z_pre, n = pre.split(hidden, dim=-1)
        n = torch.tanh(n) if tanh_candidate else n
        z = torch.sigmoid(z_pre)
        increment = torch.addcmul(n, z, n, value=-1.0)                       # (1 - z) n
        return (_torch_log_sigmoid(z_pre) if log else z), increment
    i_pre, f_pre, g = pre.split(hidden, dim=-1)
    if log:
        log_i, log_f = _torch_log_sigmoid(i_pre), _torch_log_sigmoid(f_pre)
        log_total = torch.logaddexp(log_i, log_f)
        return log_f - log_total, torch.exp(log_i - log_total) * g
    i, f = torch.sigmoid(i_pre), torch.sigmoid(f_pre)
    share = torch.reciprocal(i + f)
    return f * share, i * share * g


class _MinLayer(nn.Module):
    """A minGRU or minLSTM layer: ``weight_ih`` (G H, I), ``bias_ih`` (G H,); no recurrence."""

    kind = "minGRU"

    def __init__(self, input_size: int, hidden_size: int, *, method: str = "sequential",
                 tanh_candidate: bool = False, dtype: torch.dtype | None = None,
                 device: Any = None) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.method = check_choice("method", method, TORCH_METHODS)
        if tanh_candidate and self.kind != "minGRU":
            raise ValueError("tanh_candidate applies to the minGRU only")
        self.tanh_candidate = bool(tanh_candidate)
        gates = MIN_GATES[self.kind]
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size, dtype=dtype,
                                                  device=device))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size, dtype=dtype,
                                                device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(I), 1/sqrt(I)) for every weight and bias, as ``nn.Linear(I, G H)``."""
        bound = 1 / math.sqrt(self.input_size)
        with torch.no_grad():
            for parameter in (self.weight_ih, self.bias_ih):
                parameter.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        extra = ", tanh_candidate=True" if self.tanh_candidate else ""
        return f"{self.input_size}, {self.hidden_size}, method={self.method!r}{extra}"

    def _check_input(self, xs: Any, h0: Any) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        if not isinstance(xs, Tensor) or xs.ndim != 3 or xs.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input must be a tensor of shape (T, B, I) with "
                             f"I = {self.input_size}, got {describe(xs)}")
        if xs.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name}: input has dtype {xs.dtype} but the parameters are "
                            f"{self.weight_ih.dtype}")
        shape = (1, xs.shape[1], self.hidden_size)
        if h0 is None:
            return xs, xs.new_zeros(shape[1:])
        if not isinstance(h0, Tensor) or tuple(h0.shape) != shape:
            raise ValueError(f"{name}: h0 must have shape (1, B, H) = {shape}, got "
                             f"{describe(h0)}")
        return xs, h0[0]

    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(T, B, I) -> (outputs (T, B, H), h_n (1, B, H)), like ``torch.nn.GRU``."""
        xs, h = self._check_input(input, h0)
        pre = nn.functional.linear(xs, self.weight_ih, self.bias_ih)      # (T, B, G H)
        if self.method == "log_space":
            log_decay, increment = min_decay_increment(self.kind, pre, log=True,
                                                       tanh_candidate=self.tanh_candidate)
            states = log_space_scan(log_decay, increment, h)
        else:
            decay, increment = min_decay_increment(self.kind, pre,
                                                   tanh_candidate=self.tanh_candidate)
            if self.method == "autograd_loop":
                outputs = []
                for t in range(xs.shape[0]):
                    h = decay[t] * h + increment[t]
                    outputs.append(h)
                states = torch.stack(outputs)
            else:
                states = linear_scan(decay, increment, h, algorithm=self.method)
        return states, states[-1:]

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        """One step for inference, (B, I) and (B, H) -> (B, H): constant cost per token."""
        pre = nn.functional.linear(x, self.weight_ih, self.bias_ih)
        decay, increment = min_decay_increment(self.kind, pre,
                                               tanh_candidate=self.tanh_candidate)
        return torch.addcmul(increment, decay, h)


class MinGRU(_MinLayer):
    """The minGRU of Feng et al. (2024) in the book's GRU convention (z keeps the state).

    .. math::

        z_t = \\sigma(W_{iz} x_t + b_{iz}), \\quad n_t = W_{in} x_t + b_{in}, \\quad
        h_t = z_t \\odot h_{t-1} + (1 - z_t) \\odot n_t

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    method : {"sequential", "hillis_steele", "log_space", "autograd_loop"}
        How the recurrence is computed: ``linear_scan`` with the loop or Hillis and
        Steele's scan (forward and backward), ``log_space_scan``, or a plain Python loop
        that autograd records step by step (the slow reference). All give the same
        function.
    tanh_candidate : bool
        n_t = tanh(W_in x_t + b_in), the GRU's candidate: the layer is then exactly a
        ``torch.nn.GRU`` whose ``weight_hh`` and ``bias_hh`` are zero.

    Attributes: ``weight_ih`` (2H, I), blocks z, n; ``bias_ih`` (2H,). Inputs are
    time-major (T, B, I); ``forward`` returns (outputs (T, B, H), h_n (1, B, H)).
    """

    kind = "minGRU"


class MinLSTM(_MinLayer):
    """The minLSTM of Feng et al. (2024).

    .. math::

        i_t = \\sigma(W_{ii} x_t + b_{ii}), \\quad f_t = \\sigma(W_{if} x_t + b_{if}), \\quad
        g_t = W_{ig} x_t + b_{ig}, \\quad
        h_t = \\frac{f_t}{f_t + i_t} \\odot h_{t-1} + \\frac{i_t}{f_t + i_t} \\odot g_t

    The normalisation makes the two weights sum to 1, so the state is a weighted average of
    h_0 and the candidates. Parameters as for ``MinGRU`` (without ``tanh_candidate``);
    ``weight_ih`` (3H, I), blocks i, f, g; ``bias_ih`` (3H,).
    """

    kind = "minLSTM"
