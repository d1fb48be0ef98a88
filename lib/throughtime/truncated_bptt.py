"""Truncated backpropagation through time for the tanh RNN, in numpy.

Full BPTT (``numpy_cells.rnn_backward``) carries the gradient from the last step back to
the first. Truncated BPTT cuts it: ``rnn_backward_truncated`` carries each step's gradient
back at most k2 steps, ``truncated_bptt_segments`` lays out Williams & Peng's k1/k2 schedule
(every k1 steps, backpropagate k2 steps), and
``rnn_backward_segment`` backpropagates one such segment. The caches and gradients are
``numpy_cells``'.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_int, describe
from .numpy_cells import (
    Cache,
    Grads,
    _add_grads,
    _check_cache,
    _check_sequence_gradient,
    _rnn_step_backward,
    _zero_grads,
)

__all__ = [
    "rnn_backward_truncated",
    "TruncatedSegment",
    "truncated_bptt_segments",
    "rnn_backward_segment",
]


# --------------------------------------------------------------------------------------
# Truncated backpropagation through time (vanilla RNN)
# --------------------------------------------------------------------------------------


def rnn_backward_truncated(dhs: np.ndarray, cache: Cache,
                           k2: int) -> tuple[np.ndarray, np.ndarray, Grads]:
    """BPTT where each loss term's gradient flows back through at most ``k2`` steps.

    The loss term at step t (gradient ``dhs[t]`` at h_t) is backpropagated through steps
    t, t-1, ..., t-k2+1 and then dropped, so it reaches the parameters of those k2 steps,
    the inputs ``xs[t-k2+1 .. t]`` and ``h0`` only when t - k2 + 1 <= 0. All terms use the
    same forward pass (the weights of ``cache``). This is the truncated gradient the
    book compares with the full one:

    - ``k2 >= T`` gives exactly the full gradient of ``rnn_backward``;
    - ``k2 = 1`` keeps only the direct effect of each step: with
      da_t = dhs[t] * f'(a_t), dW_hh = sum_t da_t^T h_{t-1}, and so on.

    It equals the sum, over the updates of Williams & Peng's scheme with k1 = 1, of
    ``rnn_backward_segment`` (see ``truncated_bptt_segments``). Cost: O(T * k2) steps.

    Parameters
    ----------
    dhs : ndarray, shape (T, B, H)
    cache : dict
        From ``rnn_forward``.
    k2 : int
        Truncation length, at least 1.

    Returns
    -------
    dxs : ndarray, shape (T, B, I)
    dh0 : ndarray, shape (B, H)
    grads : dict
    """
    _check_cache(cache, "rnn", "rnn_forward")
    _check_sequence_gradient("dhs", dhs, cache)
    k2 = check_int("k2", k2, minimum=1)
    steps = cache["steps"]
    grads = _zero_grads(steps[0]["params"])
    dxs = np.zeros((len(steps), *steps[0]["x"].shape), dtype=dhs.dtype)
    dh0 = np.zeros_like(dhs[0])
    for t in range(len(steps)):  # one loss term at a time
        dh = dhs[t]
        for s in range(t, max(t - k2, -1), -1):  # steps t, t-1, ..., t-k2+1
            dx, dh, step_grads = _rnn_step_backward(dh, steps[s])
            dxs[s] += dx
            _add_grads(grads, step_grads)
        if t - k2 + 1 <= 0:  # the window reached the initial state
            dh0 += dh
    return dxs, dh0, grads


class TruncatedSegment(NamedTuple):
    """One parameter update of truncated BPTT (Williams & Peng's BPTT(k2; k1))."""

    #: The step (0-based) after which the update happens.
    update_at: int
    #: The steps whose loss terms enter this update (the block of k1 steps).
    loss_steps: range
    #: The steps the gradient flows through, the block and the k2 - k1 steps before it
    #: (never before step 0).
    backprop_steps: range


def truncated_bptt_segments(T: int, k1: int, k2: int) -> list[TruncatedSegment]:
    """The schedule of Williams & Peng's truncated BPTT: every k1 steps, backprop k2 steps.

    The network reads the sequence forward without resetting its state. The steps are cut
    into blocks of k1 (the last block may be shorter). After each block it updates its
    parameters with the gradient of that block's loss terms, backpropagated through the
    block and the k2 - k1 steps before it (never before step 0), and no further: a window
    of k2 steps for a full block. A loss term therefore flows back between k2 - k1 + 1
    and k2 steps (itself included), the latest terms of a block the furthest.

    - k1 = k2 = k is the usual segment training, "detach the state every k steps": each
      segment's loss flows back to the segment's start and no further.
    - k1 = 1 updates after every step; summed over a fixed forward pass, these updates
      equal ``rnn_backward_truncated(dhs, cache, k2)``.
    - k1 = k2 = T is full BPTT, one update.

    Parameters
    ----------
    T : int
        Sequence length.
    k1 : int
        Steps between updates (1 <= k1 <= k2).
    k2 : int
        Steps of backpropagation per full block.

    Returns
    -------
    list of TruncatedSegment
        One per update, in time order.
    """
    T = check_int("T", T, minimum=1)
    k1 = check_int("k1", k1, minimum=1)
    k2 = check_int("k2", k2, minimum=1)
    if k2 < k1:
        raise ValueError(
            f"k2 must be >= k1 (every loss term of a block must be backpropagated at least "
            f"one step), got k1={k1}, k2={k2}"
        )
    segments = []
    for start in range(0, T, k1):
        end = min(start + k1, T) - 1
        segments.append(TruncatedSegment(update_at=end, loss_steps=range(start, end + 1),
                                         backprop_steps=range(max(0, start - (k2 - k1)),
                                                              end + 1)))
    return segments


def rnn_backward_segment(dhs: np.ndarray, cache: Cache,
                         segment: TruncatedSegment) -> tuple[np.ndarray, np.ndarray, Grads]:
    """The gradient one update of truncated BPTT uses, on a fixed forward pass.

    Only the loss terms of ``segment.loss_steps`` enter (``dhs`` elsewhere is ignored),
    and their gradient flows through ``segment.backprop_steps`` only: the hidden state
    entering the window is treated as a constant (``detach()`` in PyTorch).

    Parameters
    ----------
    dhs : ndarray, shape (T, B, H)
    cache : dict
        From ``rnn_forward`` over the whole sequence.
    segment : TruncatedSegment
        From ``truncated_bptt_segments``.

    Returns
    -------
    dxs : ndarray, shape (T, B, I)
        Zero outside ``segment.backprop_steps``.
    dh_start : ndarray, shape (B, H)
        Gradient at the state entering the window (h0 when the window starts at step 0);
        truncated BPTT throws it away.
    grads : dict
    """
    _check_cache(cache, "rnn", "rnn_forward")
    _check_sequence_gradient("dhs", dhs, cache)
    steps = cache["steps"]
    if not isinstance(segment, TruncatedSegment):
        raise TypeError(f"segment must be a TruncatedSegment, got {describe(segment)}")
    window, losses = segment.backprop_steps, segment.loss_steps
    if (window.stop > len(steps) or window.start < 0 or window.step != 1
            or not set(losses) <= set(window)):
        raise ValueError(f"segment {segment} does not fit a sequence of length {len(steps)}")
    grads = _zero_grads(steps[0]["params"])
    dxs = np.zeros((len(steps), *steps[0]["x"].shape), dtype=dhs.dtype)
    dh = np.zeros_like(dhs[0])
    for t in reversed(window):
        dh_total = dh + dhs[t] if t in losses else dh
        dxs[t], dh, step_grads = _rnn_step_backward(dh_total, steps[t])
        _add_grads(grads, step_grads)
    return dxs, dh, grads
