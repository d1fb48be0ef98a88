"""Assignment checks: run a student's function on hidden inputs and explain what is wrong.

Each ``check_...`` function takes the student's implementation, calls it on inputs it
generates from a private seed (so the student never sees them), and compares every output
with the book's reference in float64 (``numpy_cells``, ``gradients``, ``timeseries``).
Backward passes are also compared with centred finite differences of the forward pass.

- On success a check prints one line saying what was verified and returns ``None``.
- On a wrong answer it raises ``CheckFailed`` (an ``AssertionError``) whose message names
  the output that is wrong (``h_next``, ``c_next``, ``dx``, ``grads['weight_hh']``, ...),
  says how it is wrong (how many entries differ and by how much, which gate blocks or time
  steps, a sign or a constant factor), and, when the student's numbers are exactly what a
  known mistake produces (gates in the wrong order, the 1997 cell without a forget gate,
  tanh' taken from the pre-activation, clipping each array separately, ...), says which
  mistake that is.
- When the function returns ``None``, the wrong number of values, arrays of the wrong
  shape or dtype, or raises (``NotImplementedError`` from an unfinished stub included), the
  message says so and points at the last line of the student's own code that ran.
- A function that changes its inputs in place fails, and so does one that is the library's
  own reference, calls it, or is a copy of its code: the check names the function.
- Where the exercise asks for a ``cache`` with particular contents (the tanh RNN step, the
  LSTM step), the check looks for those arrays in it.

The relative error is ``gradients.rel_error``, the largest elementwise
``abs(a - b) / max(abs(a) + abs(b), 1e-8)``.

What the student's functions receive
------------------------------------
The functions have the signatures of the reference implementations in ``numpy_cells``:
arrays in float64, ``params`` and ``grads`` dicts with the keys ``weight_ih``,
``weight_hh``, ``bias_ih`` and ``bias_hh`` in PyTorch's layout (LSTM gates i, f, g, o; GRU
r, z, n). Backward checks call the student's backward function with a cache made by the
**reference** forward function, unless ``forward=`` names the student's own forward
function (whose outputs are then checked first, and whose cache is passed on). The
reference caches are dicts with these keys (every array has batch size B and hidden size
H; ``params`` is the parameter dict):

- ``rnn_step``: ``x`` (B, I), ``h`` (B, H) the previous state h_{t-1}, ``a`` (B, H) the
  pre-activation, ``h_next`` (B, H), ``params``, ``nonlinearity`` (``"tanh"``).
- ``lstm_step``: ``x``, ``h``, ``c`` (the previous cell state c_{t-1}); the gate
  activations ``i``, ``f``, ``g``, ``o`` (B, H) each; ``tanh_c`` = tanh(c_t); ``h_next``;
  ``params``.
- ``gru_step``: ``x``, ``h``; the activations ``r``, ``z``, ``n``; ``ah_n`` =
  W_hn h_{t-1} + b_hn (B, H), the term the reset gate multiplies; ``h_next``; ``params``.
- ``rnn_forward``: ``{"kind": "rnn", "steps": [step_0, ..., step_{T-1}]}``, one
  ``rnn_step`` cache per time step, so ``rnn_backward`` can loop over
  ``reversed(cache["steps"])`` and call ``rnn_step_backward`` on each.

Every cache also holds ``kind``, the name of the function that made it.

How a check runs (the skeleton every check shares: calling the student's code, reading
what it returns, comparing and explaining, the graders' entry points) is
``throughtime.checking``; this module holds what each check checks: how its cases are
drawn, the known mistakes it recognises, and the public ``check_...`` functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from itertools import permutations
from typing import Any

import numpy as np

from . import numpy_cells as cells
from ._validate import check_float_array
from .checking import (  # noqa: F401  (the graders' entry points and the skeleton, re-exported)
    _SEED,
    CACHE_KEYS,
    FD_TOLERANCE,
    HINT_TOLERANCE,
    TOLERANCE,
    Case,
    CheckFailed,
    Verdict,
    _Forward,
    _join,
    _judge_one,
    _library_function,
    _passed_line,
    _public,
    _refuse_library,
    _require_callable,
    _run_check,
    _run_one,
    _Spec,
    _spec,
    copied_from_library,
    graded_checks,
    hidden_cases,
    hidden_check,
    judge_cases,
    run_cases,
)
from .gradients import clip_by_norm, numeric_gradient
from .numpy_cells import PARAM_NAMES, sigmoid

__all__ = [
    "CheckFailed",
    "CACHE_KEYS",
    "CHECKS",
    "graded_checks",
    "PEEPHOLE_NAMES",
    "Case",
    "Verdict",
    "check_rnn_step",
    "check_rnn_step_backward",
    "check_rnn_backward",
    "check_lstm_step",
    "check_lstm_step_backward",
    "check_lstm_peephole_step",
    "check_gru_step",
    "check_gru_step_backward",
    "check_clip_by_norm",
    "check_mase",
    "check_param_count",
    "hidden_cases",
    "run_cases",
    "judge_cases",
    "hidden_check",
    "copied_from_library",
]

_FD_STEP = 1e-5

PEEPHOLE_NAMES = ("peephole_i", "peephole_f", "peephole_o")
"""The extra parameters of the peephole LSTM, each of shape (H,)."""


# --------------------------------------------------------------------------------------
# Drawing cases
# --------------------------------------------------------------------------------------


def _params(rng: np.random.Generator, gates: int, input_size: int,
            hidden: int) -> dict[str, np.ndarray]:
    """Parameters drawn from U(-1, 1): pre-activations of order 1, far from saturation."""
    shapes = {"weight_ih": (gates * hidden, input_size), "weight_hh": (gates * hidden, hidden),
              "bias_ih": (gates * hidden,), "bias_hh": (gates * hidden,)}
    return {name: rng.uniform(-1, 1, size=shape) for name, shape in shapes.items()}


def _shapes(arrays: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(value.shape) for name, value in arrays.items()}


def _step_draw(rng: np.random.Generator, size: Sequence[int], gates: int) -> dict[str, Any]:
    """The inputs of a step case of sizes (B, I, H), and the gradients arriving at it."""
    batch, input_size, hidden = (int(s) for s in size)
    return {"params": _params(rng, gates, input_size, hidden),
            "x": rng.standard_normal((batch, input_size)),
            "h": rng.uniform(-0.9, 0.9, size=(batch, hidden)),
            "c": rng.standard_normal((batch, hidden)),
            "dh_next": rng.standard_normal((batch, hidden)),
            "dc_next": rng.standard_normal((batch, hidden)),
            "dims": {"B": batch, "I": input_size, "H": hidden}, "H": hidden}


def _numeric_grads(loss: Callable[[], float], arrays: Mapping[str, np.ndarray]) -> dict:
    """Centred finite differences of ``loss()`` with respect to each array (read by closure)."""
    return {name: numeric_gradient(lambda _: loss(), array, eps=_FD_STEP)
            for name, array in arrays.items()}


# --------------------------------------------------------------------------------------
# Known mistakes: each function below computes what a particular wrong version returns
# --------------------------------------------------------------------------------------


def _order_text(order: tuple[int, ...], gates: str) -> str:
    """Describe a reading of the stacked blocks: order[k] is the block read as gate k."""
    read = [""] * len(order)
    for gate, block in zip(gates, order, strict=True):
        read[block] = gate
    return ", ".join(read)


def _block_order_hints(gates: str, what: str) -> list[tuple[tuple[int, ...], str]]:
    correct = ", ".join(gates)
    found = []
    for order in permutations(range(len(gates))):
        if order == tuple(range(len(gates))):
            continue
        text = _order_text(order, gates)
        known = " (CS231n's order)" if gates == "ifgo" and text == "i, f, o, g" else ""
        found.append((order, f"your {what} in the order {text}{known}, but PyTorch stacks "
                             f"them {correct}: rows 0:H are {gates[0]}, H:2H {gates[1]}, "
                             "and so on."))
    return found


def _tanh_prime(value: np.ndarray, mode: str) -> np.ndarray:
    """tanh' written from the activation t = tanh(a) (``ok``) and common mistakes."""
    return {"ok": lambda t: 1 - t * t, "double": lambda t: 1 - np.tanh(t) ** 2,
            "nosquare": lambda t: 1 - t, "sigmoid": lambda t: t * (1 - t)}[mode](value)


def _sigmoid_prime(value: np.ndarray, mode: str) -> np.ndarray:
    """sigma' written from the activation s = sigma(a) (``ok``) and common mistakes."""
    return {"ok": lambda s: s * (1 - s), "double": lambda s: sigmoid(s) * (1 - sigmoid(s)),
            "tanh": lambda s: 1 - s * s}[mode](value)


_TANH_PRIME_HINTS = {
    "double": "tanh' is computed as 1 - tanh(v)^2 of a value v that is already tanh(a): "
              "with t = tanh(a) stored in the cache, tanh'(a) should be 1 - t^2.",
    "nosquare": "tanh' is computed as 1 - t; it should be 1 - t^2 (with t = tanh(a)).",
    "sigmoid": "tanh' is computed with the sigmoid's formula t (1 - t); it should be "
               "1 - t^2.",
}
_SIGMOID_PRIME_HINTS = {
    "double": "sigma' is computed as sigma(s)(1 - sigma(s)) of a gate value s that is already "
              "sigma(a): sigma'(a) should be s (1 - s).",
    "tanh": "sigma' is computed with tanh's formula 1 - s^2; it should be s (1 - s).",
}


def _drop(params: Mapping[str, np.ndarray], *names: str) -> dict[str, np.ndarray]:
    return {k: (np.zeros_like(v) if k in names else v) for k, v in params.items()}


_BIAS_HINTS = {
    ("bias_hh",): "bias_hh is missing: PyTorch adds two biases, "
                  "W_ih x + b_ih + W_hh h + b_hh.",
    ("bias_ih",): "bias_ih is missing: PyTorch adds two biases, "
                  "W_ih x + b_ih + W_hh h + b_hh.",
    ("bias_ih", "bias_hh"): "both biases are missing: the pre-activation should be "
                            "W_ih x + b_ih + W_hh h + b_hh.",
}


# Vanilla RNN ---------------------------------------------------------------------------


def _rnn_variant(x, h, p, *, act=np.tanh, transpose_hh=True):
    w_hh = p["weight_hh"].T if transpose_hh else p["weight_hh"]
    return {"h_next": act(x @ p["weight_ih"].T + p["bias_ih"] + h @ w_hh + p["bias_hh"])}


def _rnn_step_mistakes(x, h, p):
    out = [
        ("the nonlinearity is the sigmoid; it should be tanh, as in torch.nn.RNNCell.",
         lambda: _rnn_variant(x, h, p, act=sigmoid)),
        ("the nonlinearity is ReLU; the book's RNN should use tanh.",
         lambda: _rnn_variant(x, h, p, act=lambda a: np.maximum(a, 0))),
        ("the nonlinearity is missing: h_next = tanh(W_ih x + b_ih + W_hh h + b_hh).",
         lambda: _rnn_variant(x, h, p, act=lambda a: a)),
        ("weight_hh is used untransposed: with row vectors, W_hh h is h @ weight_hh.T "
         "(weights have shape (H, H) = (out, in), as in torch.nn).",
         lambda: _rnn_variant(x, h, p, transpose_hh=False)),
    ]
    out += [(hint, lambda names=names: _rnn_variant(x, h, _drop(p, *names)))
            for names, hint in _BIAS_HINTS.items()]
    return out


def _rnn_backward_variant(dh_next, cache, *, prime="ok", transpose_dw=False, dh_transposed=False):
    p, a, h_next = cache["params"], cache["a"], cache["h_next"]
    slope = 1 - a * a if prime == "pre" else (
        np.ones_like(a) if prime == "none" else _tanh_prime(h_next, prime))
    da = dh_next * slope
    d_w_hh = da.T @ cache["h"]
    return {"dx": da @ p["weight_ih"],
            "dh": da @ (p["weight_hh"].T if dh_transposed else p["weight_hh"]),
            "grads": {"weight_ih": da.T @ cache["x"],
                      "weight_hh": d_w_hh.T if transpose_dw else d_w_hh,
                      "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}}


def _rnn_step_backward_mistakes(dh_next, cache):
    def variant(**kw):
        return lambda: _rnn_backward_variant(dh_next, cache, **kw)

    out = [("tanh' is computed from the pre-activation a as 1 - a^2; it should be "
            "1 - tanh(a)^2 = 1 - h_next^2 (cache['h_next']).", variant(prime="pre")),
           ("the derivative of tanh is missing: da = dh_next * (1 - h_next^2).",
            variant(prime="none"))]
    out += [(hint, variant(prime=mode)) for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [("grads['weight_hh'] is transposed: dW_hh = da.T @ h has the shape and layout "
             "of weight_hh (out, in).", variant(transpose_dw=True)),
            ("dh uses weight_hh transposed: the gradient flows back through W_hh, so "
             "dh = da @ weight_hh.", variant(dh_transposed=True))]
    return out


# LSTM ----------------------------------------------------------------------------------


def _lstm_variant(x, h, c, p, *, order=(0, 1, 2, 3), forget="ok", gate=sigmoid, cand=np.tanh,
                  out=np.tanh, old_cell=False, squash_after=False, swap=False, peephole=None,
                  peep_old_o=False):
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    blocks = np.split(a, 4, axis=1)
    a_i, a_f, a_g, a_o = (blocks[k] for k in order)
    if peephole is not None:
        a_i, a_f = a_i + peephole["peephole_i"] * c, a_f + peephole["peephole_f"] * c
    i, f, g = gate(a_i), gate(a_f), cand(a_g)
    kept = {"ok": f * c, "dropped": 0, "carousel": c}[forget]
    c_next = kept + i * g
    if peephole is not None:
        a_o = a_o + peephole["peephole_o"] * (c if peep_old_o else c_next)
    o = gate(a_o)
    cell = c if old_cell else c_next
    h_next = out(o * cell) if squash_after else o * out(cell)
    return {"h_next": c_next, "c_next": h_next} if swap else {"h_next": h_next,
                                                               "c_next": c_next}


def _lstm_forward_mistakes(x, h, c, p, peephole=None):
    def variant(params=p, **kw):
        return lambda: _lstm_variant(x, h, c, params, peephole=peephole, **kw)

    out = [(hint, variant(order=order))
           for order, hint in _block_order_hints("ifgo", "code reads the four gate blocks")]
    out += [
        ("this is the 1997 LSTM, c_next = c + i * g: its cell kept its old content unchanged "
         "(the constant error carousel). The forget gate (Gers et al. 2000) multiplies the old "
         "state: c_next = f * c + i * g.", variant(forget="carousel")),
        ("the old cell state is missing from c_next: it should be f * c + i * g (without "
         "f * c the cell forgets everything at every step).", variant(forget="dropped")),
        ("h_next and c_next are returned in swapped order: return h_next, c_next, cache.",
         variant(swap=True)),
        ("sigmoid and tanh are swapped: the gates i, f, o should use the sigmoid and the "
         "candidate g tanh.", variant(gate=np.tanh, cand=sigmoid)),
        ("the candidate g uses the sigmoid; it should use tanh, so that it can be negative.",
         variant(cand=sigmoid)),
        ("the gates i, f, o use tanh; they should use the sigmoid, so that they lie in "
         "(0, 1).", variant(gate=np.tanh)),
        ("h_next uses sigmoid(c_next); it should be o * tanh(c_next).",
         variant(out=sigmoid)),
        ("h_next = o * c_next is missing the tanh: it should be o * tanh(c_next).",
         variant(out=lambda v: v)),
        ("h_next = tanh(o * c_next) squashes after the output gate; the gate should scale the "
         "squashed state: h_next = o * tanh(c_next).", variant(squash_after=True)),
        ("h_next uses the old cell state c; it should use the new one: "
         "h_next = o * tanh(c_next).", variant(old_cell=True)),
    ]
    out += [(hint, variant(params=_drop(p, *names))) for names, hint in _BIAS_HINTS.items()]
    return out


def _lstm_backward_variant(dh_next, dc_next, cache, *, order=(0, 1, 2, 3), use_dc_next=True,
                           h_path=True, g_prime="ok", c_prime="ok", s_prime="ok", times_f=True):
    i, f, g, o, tanh_c = (cache[k] for k in ("i", "f", "g", "o", "tanh_c"))
    p = cache["params"]
    dc = (dc_next if use_dc_next else 0) + (
        dh_next * o * _tanh_prime(tanh_c, c_prime) if h_path else 0)
    by_gate = [dc * g * _sigmoid_prime(i, s_prime), dc * cache["c"] * _sigmoid_prime(f, s_prime),
               dc * i * _tanh_prime(g, g_prime), dh_next * tanh_c * _sigmoid_prime(o, s_prime)]
    stacked: list = [None] * 4
    for gate, block in enumerate(order):
        stacked[block] = by_gate[gate]
    da = np.concatenate(stacked, axis=1)
    return {"dx": da @ p["weight_ih"], "dh": da @ p["weight_hh"],
            "dc": dc * f if times_f else dc,
            "grads": {"weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h"],
                      "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}}


def _lstm_backward_mistakes(dh_next, dc_next, cache):
    def variant(**kw):
        return lambda: _lstm_backward_variant(dh_next, dc_next, cache, **kw)

    out = [(hint, variant(order=order))
           for order, hint in _block_order_hints("ifgo", "code stacks the gate gradients")]
    out += [
        ("dc_next is ignored: the cell state gets gradient from the next step (dc_next) as "
         "well as through h_next, dc = dc_next + dh_next * o * (1 - tanh(c_next)^2).",
         variant(use_dc_next=False)),
        ("the path through h_next is missing from dc: it should be dc = dc_next + dh_next * o "
         "* (1 - tanh(c_next)^2).", variant(h_path=False)),
        ("the returned dc is missing the forget gate: the gradient for the old cell state c is "
         "dc * f.", variant(times_f=False)),
    ]
    out += [(f"for the candidate g, {hint}", variant(g_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for tanh(c_next), {hint}", variant(c_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for the gates, {hint}", variant(s_prime=mode))
            for mode, hint in _SIGMOID_PRIME_HINTS.items()]
    return out


# The peephole LSTM (Gers and Schmidhuber 2000) ------------------------------------------


def _peephole_reference(x: np.ndarray, h: np.ndarray, c: np.ndarray,
                        params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One step of the LSTM with peephole connections (the exercise's reference).

    i and f look at the old cell state c_{t-1}, o at the new one c_t, through diagonal
    weights p_i, p_f, p_o of shape (H,); otherwise as ``numpy_cells.lstm_step``. Private:
    a student who calls it is told so.
    """
    missing = [name for name in (*PARAM_NAMES, *PEEPHOLE_NAMES) if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; a peephole LSTM needs "
                         f"{list(PARAM_NAMES) + list(PEEPHOLE_NAMES)}")
    lstm_params = {name: params[name] for name in PARAM_NAMES}
    cells.lstm_step(x, h, c, lstm_params)  # checks x, h, c and the LSTM's parameters
    for name in PEEPHOLE_NAMES:
        check_float_array(f"params['{name}']", params[name], shape=(h.shape[1],), dims=("H",),
                          dtype=h.dtype)
    out = _lstm_variant(x, h, c, lstm_params, peephole=params)
    return out["h_next"], out["c_next"]


def _peephole_mistakes(x, h, c, p, peepholes):
    def variant(**kw):
        return lambda: _lstm_variant(x, h, c, p, **kw)

    def without(*names):
        return {k: (np.zeros_like(v) if k in names else v) for k, v in peepholes.items()}

    gates = ("input", "forget", "output")
    out = [
        ("the output gate looks at the old cell state; it should look at the new one: "
         "o = sigma(... + p_o * c_next), computed after c_next.",
         variant(peephole=peepholes, peep_old_o=True)),
        ("the peepholes are missing: this is the plain LSTM. Add p_i * c and p_f * c to the "
         "input and forget gates and p_o * c_next to the output gate.", variant()),
    ]
    for index, name in enumerate(PEEPHOLE_NAMES):
        out.append((f"the {gates[index]} gate's peephole is missing: {name} should add "
                    f"{name} * {'c_next' if index == 2 else 'c'} to its pre-activation.",
                    variant(peephole=without(name))))
    for order in permutations(range(3)):
        if order == (0, 1, 2):
            continue
        used = {PEEPHOLE_NAMES[gate]: peepholes[PEEPHOLE_NAMES[order[gate]]] for gate in range(3)}
        wrong = [f"{PEEPHOLE_NAMES[order[gate]]} for the {gates[gate]} gate"
                 for gate in range(3) if order[gate] != gate]
        out.append((f"the peepholes are swapped: your code uses {_join(wrong)}; peephole_i "
                    "belongs to the input gate, peephole_f to the forget gate and peephole_o "
                    "to the output gate.", variant(peephole=used)))
    return out + _lstm_forward_mistakes(x, h, c, p, peephole=peepholes)


# GRU -----------------------------------------------------------------------------------


def _gru_variant(x, h, p, *, order=(0, 1, 2), z_flipped=False, reset_before=False,
                 gate=sigmoid, cand=np.tanh):
    a_x = np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1)
    w_hh, b_hh = np.split(p["weight_hh"], 3, axis=0), np.split(p["bias_hh"], 3)
    ax_r, ax_z, ax_n = (a_x[k] for k in order)
    (w_r, w_z, w_n), (b_r, b_z, b_n) = ([w_hh[k] for k in order], [b_hh[k] for k in order])
    r = gate(ax_r + h @ w_r.T + b_r)
    z = gate(ax_z + h @ w_z.T + b_z)
    if reset_before:
        n = cand(ax_n + (r * h) @ w_n.T + b_n)
    else:
        n = cand(ax_n + r * (h @ w_n.T + b_n))
    return {"h_next": z * n + (1 - z) * h if z_flipped else (1 - z) * n + z * h}


_Z_HINT = ("the update gate is used the other way round: PyTorch's GRU keeps the old state "
           "with z, h_next = (1 - z) * n + z * h (you computed z * n + (1 - z) * h, the "
           "interpolation written by Chung et al. 2014, who also apply the reset gate before "
           "the matrix product).")
_RESET_HINT = ("the reset gate is applied before the matrix product, W_hn (r * h) (Cho et al. "
               "2014); PyTorch applies it after: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).")


def _gru_forward_mistakes(x, h, p):
    def variant(params=p, **kw):
        return lambda: _gru_variant(x, h, params, **kw)

    out = [(hint, variant(order=order))
           for order, hint in _block_order_hints("rzn", "code reads the three gate blocks")]
    out += [
        (_Z_HINT, variant(z_flipped=True)),
        (_RESET_HINT, variant(reset_before=True)),
        (f"two conventions differ from PyTorch's. First, {_Z_HINT} Second, {_RESET_HINT}",
         variant(z_flipped=True, reset_before=True)),
        ("sigmoid and tanh are swapped: r and z should use the sigmoid, the candidate n tanh.",
         variant(gate=np.tanh, cand=sigmoid)),
        ("the candidate n uses the sigmoid; it should use tanh.", variant(cand=sigmoid)),
        ("the gates r and z use tanh; they should use the sigmoid.", variant(gate=np.tanh)),
    ]
    out += [(hint, variant(params=_drop(p, *names))) for names, hint in _BIAS_HINTS.items()]
    return out


def _gru_backward_variant(dh_next, cache, *, order=(0, 1, 2), z_flipped=False,
                          reset_before=False, n_prime="ok", s_prime="ok", direct=True):
    r, z, n, h = cache["r"], cache["z"], cache["n"], cache["h"]
    p = cache["params"]
    blocks = np.split(p["weight_hh"], 3, axis=0)
    w_r, w_z, w_n = (blocks[k] for k in order)
    if z_flipped:
        dn, dz, dh_direct = dh_next * z, dh_next * (n - h), dh_next * (1 - z)
    else:
        dn, dz, dh_direct = dh_next * (1 - z), dh_next * (h - n), dh_next * z
    da_n = dn * _tanh_prime(n, n_prime)
    da_z = dz * _sigmoid_prime(z, s_prime)
    if reset_before:  # n = tanh(a_xn + W_hn (r * h) + b_hn)
        d_rh = da_n @ w_n
        da_r = d_rh * h * _sigmoid_prime(r, s_prime)
        dw_n, db_n, dh_n = da_n.T @ (r * h), da_n.sum(axis=0), d_rh * r
    else:  # n = tanh(a_xn + r * (W_hn h + b_hn))
        da_r = da_n * cache["ah_n"] * _sigmoid_prime(r, s_prime)
        dw_n, db_n, dh_n = (da_n * r).T @ h, (da_n * r).sum(axis=0), (da_n * r) @ w_n
    dh = (dh_direct if direct else 0) + da_r @ w_r + da_z @ w_z + dh_n

    def stack(by_gate, axis):
        out: list = [None] * 3
        for gate, block in enumerate(order):
            out[block] = by_gate[gate]
        return np.concatenate(out, axis=axis)

    da_x = stack([da_r, da_z, da_n], axis=1)
    return {"dx": da_x @ p["weight_ih"], "dh": dh,
            "grads": {"weight_ih": da_x.T @ cache["x"],
                      "weight_hh": stack([da_r.T @ h, da_z.T @ h, dw_n], axis=0),
                      "bias_ih": da_x.sum(axis=0),
                      "bias_hh": stack([da_r.sum(axis=0), da_z.sum(axis=0), db_n], axis=0)}}


def _gru_backward_mistakes(dh_next, cache):
    def variant(**kw):
        return lambda: _gru_backward_variant(dh_next, cache, **kw)

    out = [(hint, variant(order=order))
           for order, hint in _block_order_hints("rzn", "code stacks the gate gradients")]
    out += [
        (f"your backward pass differentiates the wrong GRU: {_Z_HINT}", variant(z_flipped=True)),
        (f"your backward pass differentiates the wrong GRU: {_RESET_HINT}",
         variant(reset_before=True)),
        ("dh is missing the direct path: h_next = (1 - z) * n + z * h depends on h directly, "
         "so dh should include dh_next * z.", variant(direct=False)),
    ]
    out += [(f"for the candidate n, {hint}", variant(n_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for the gates, {hint}", variant(s_prime=mode))
            for mode, hint in _SIGMOID_PRIME_HINTS.items()]
    return out


# Backpropagation through time ------------------------------------------------------------


def _bptt_mistakes(dhs: np.ndarray, cache: dict) -> list[tuple[str, Callable]]:
    steps = cache["steps"]
    last = len(steps) - 1

    def outputs(result: tuple) -> dict[str, Any]:
        return dict(zip(("dxs", "dh0", "grads"), result, strict=True))

    def full() -> dict[str, Any]:
        return outputs(cells.rnn_backward(dhs, cache))

    def only(t: int) -> Callable:
        def produce():
            dh, kept = np.zeros_like(dhs[0]), None
            for s in reversed(range(len(steps))):
                _, dh, grads = cells.rnn_step_backward(dhs[s] + dh, steps[s])
                kept = grads if s == t else kept
            return {**full(), "grads": kept}
        return produce

    def reversed_dxs():
        result = full()
        return {**result, "dxs": result["dxs"][::-1]}

    only_last = np.zeros_like(dhs)
    only_last[last] = dhs[last]
    return [
        ("the parameter gradients are not summed over time: only the contribution of step 0 "
         "is left (each step overwrote the one before). Add every step's gradients: "
         "grads[k] += step_grads[k].", only(0)),
        (f"the parameter gradients are not summed over time: only the contribution of the "
         f"last step (t = {last}) is there. Add every step's gradients.", only(last)),
        ("the gradient flowing back from later steps is not added: at step t the hidden "
         "state should get dhs[t] + dh, where dh comes back from step t + 1.",
         lambda: outputs(cells.rnn_backward_truncated(dhs, cache, 1))),
        ("dhs[t] is only used at the last step: every state h_t receives its own loss "
         "gradient dhs[t] in addition to the dh carried back from step t + 1.",
         lambda: outputs(cells.rnn_backward(only_last, cache))),
        ("dxs is reversed in time: dxs[t] is the gradient for xs[t].", reversed_dxs),
    ]


# Clipping ----------------------------------------------------------------------------------


def _clip_variant(grads: Mapping[str, np.ndarray], max_norm: float, p: float, *,
                  per_tensor=False, by_value=False, norm_after=False, squared=False,
                  always=False, two_norm=False) -> dict:
    p = 2.0 if two_norm else p

    def norm(a):
        return np.linalg.norm(np.ravel(a), ord=p)

    total = norm([norm(g) for g in grads.values()])
    if squared:
        total = total**2
    if by_value:
        clipped = {k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()}
    elif per_tensor:
        clipped = {k: g * min(1.0, max_norm / (norm(g) + 1e-6)) for k, g in grads.items()}
    else:
        scale = max_norm / (total + 1e-6)
        clipped = {k: g * (scale if always else min(1.0, scale)) for k, g in grads.items()}
    if norm_after:
        total = norm([norm(g) for g in clipped.values()])
    return {"clipped": clipped, "total_norm": np.float64(total)}


def _clip_mistakes(grads, max_norm, p):
    hints = [
        ("each array is clipped by its own norm; clip by the global norm of all arrays "
         "together (one scale for all), which keeps the gradient's direction.",
         {"per_tensor": True}),
        ("this is clipping by value (each entry to [-max_norm, max_norm]); clipping by norm "
         "scales the whole gradient by one number.", {"by_value": True}),
        ("total_norm is the norm after clipping; it should be the norm before clipping.",
         {"norm_after": True}),
        ("total_norm is the squared norm: take the square root of the sum of squares.",
         {"squared": True}),
        ("gradients whose norm is already below max_norm are scaled up; the scale should be "
         "min(1, max_norm / total_norm).", {"always": True}),
        ("norm_type is ignored: the p-norm is (sum |g|^p)^(1/p), and the largest |g| for "
         "p = inf.", {"two_norm": True}),
    ]
    return [(hint, lambda kw=kw: _clip_variant(grads, max_norm, p, **kw)) for hint, kw in hints]


# MASE ------------------------------------------------------------------------------------


def _mase_variant(y_true, y_pred, y_train, season, *, scale_on="train", lag=None,
                  absolute=True, squared=False, divide_by_n=False, inverted=False):
    lag = season if lag is None else lag
    base = y_true if scale_on == "test" else y_train
    differences = np.abs(base[lag:] - base[:-lag])
    scale = differences.sum() / len(base) if divide_by_n else differences.mean()
    errors = y_true - y_pred
    if squared:
        numerator = np.sqrt(np.mean(errors**2))
    else:
        numerator = np.mean(np.abs(errors) if absolute else errors)
    return {"the MASE": np.float64(scale / numerator if inverted else numerator / scale)}


def _mase_mistakes(y_true, y_pred, y_train, season):
    hints = [
        ("the scale Q is computed on y_true (the test part); MASE scales by the seasonal "
         "naive error on the training part y_train.", {"scale_on": "test"}),
        ("the scale uses lag 1; the seasonal naive forecast repeats the value one season "
         "earlier, y_{t-m}.", {"lag": 1}),
        ("the numerator is the mean error; it should be the mean absolute error, "
         "mean |y - y_hat|.", {"absolute": False}),
        ("the numerator is the RMSE; MASE uses the mean absolute error.", {"squared": True}),
        ("the scale is divided by n; it should be a mean over the n - m seasonal differences.",
         {"divide_by_n": True}),
        ("the ratio is upside down: MASE = MAE / Q.", {"inverted": True}),
    ]
    return [(hint, lambda kw=kw: _mase_variant(y_true, y_pred, y_train, season, **kw))
            for hint, kw in hints]


# Parameter counts ----------------------------------------------------------------------------

_GATE_BLOCKS = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _count_mistakes(kind: str, input_size: int, hidden: int, biases: int):
    g, i, h, k = _GATE_BLOCKS[kind], input_size, hidden, biases  # G, I, H and k
    hints = [
        ("that is one bias vector per gate block; torch.nn keeps two, bias_ih and bias_hh "
         "(biases=2).", g * h * (i + h + 1) if k == 2 else None),
        ("the bias vectors are missing: each gate block adds k vectors of length H.",
         g * h * (i + h)),
        ("that is one gate block; an LSTM stacks G = 4 blocks and a GRU G = 3.",
         h * (i + h + k) if g > 1 else None),
        ("W_hh is an H x H matrix per gate block: H * H entries, not H.", g * h * (i + 1 + k)),
        ("the recurrent matrices W_hh are missing.", g * h * (i + k)),
        ("biases is ignored: with one bias vector per gate block the count drops by G * H.",
         g * h * (i + h + 2) if k == 1 else None),
    ]
    return [(hint, lambda value=value: {"the count": np.float64(value)})
            for hint, value in hints if value is not None]


# --------------------------------------------------------------------------------------
# The cases of each check
# --------------------------------------------------------------------------------------

_STEP_SIZES = ((2, 3, 4), (3, 5, 2), (1, 4, 3))  # (B, I, H) of the public step cases
_STEP_ARGS = {"rnn": ("x", "h", "params"), "lstm": ("x", "h", "c", "params")}


def _rnn_step_case(rng, size, label) -> Case:
    d = _step_draw(rng, size, 1)
    x, h, p = d["x"], d["h"], d["params"]
    h_next, cache = cells.rnn_step(x, h, p)
    return Case(label(d["dims"]), d["H"], (x, h, p), {"h_next": h.shape, "cache": None},
                {"h_next": h_next}, mistakes=lambda: _rnn_step_mistakes(x, h, p),
                cache_holds=(("x", x), ("h", h), ("a", cache["a"]), ("h_next", h_next)))


def _lstm_step_case(rng, size, label) -> Case:
    d = _step_draw(rng, size, 4)
    x, h, c, p = d["x"], d["h"], d["c"], d["params"]
    h_next, c_next, cache = cells.lstm_step(x, h, c, p)
    return Case(label(d["dims"]), d["H"], (x, h, c, p),
                {"h_next": h.shape, "c_next": h.shape, "cache": None},
                {"h_next": h_next, "c_next": c_next},
                mistakes=lambda: _lstm_forward_mistakes(x, h, c, p),
                cache_holds=tuple((name, cache[name]) for name in "xhcifgo"))


def _gru_step_case(rng, size, label) -> Case:
    d = _step_draw(rng, size, 3)
    x, h, p = d["x"], d["h"], d["params"]
    return Case(label(d["dims"]), d["H"], (x, h, p), {"h_next": h.shape, "cache": None},
                {"h_next": cells.gru_step(x, h, p)[0]},
                mistakes=lambda: _gru_forward_mistakes(x, h, p))


def _peephole_case(rng, size, label) -> Case:
    d = _step_draw(rng, size, 4)
    x, h, c, p = d["x"], d["h"], d["c"], d["params"]
    peepholes = {name: rng.uniform(-1, 1, size=h.shape[1]) for name in PEEPHOLE_NAMES}
    full = {**p, **peepholes}
    h_next, c_next = _peephole_reference(x, h, c, full)
    return Case(label(d["dims"]), d["H"], (x, h, c, full),
                {"h_next": h.shape, "c_next": h.shape, "cache": None},
                {"h_next": h_next, "c_next": c_next},
                mistakes=lambda: _peephole_mistakes(x, h, c, p, peepholes))


def _one_state_step_backward_case(rng, size, label, *, gates: int, step: Callable,
                                  step_backward: Callable, mistakes: Callable) -> Case:
    """A backward case of a cell with one state h (the tanh RNN, G = 1; the GRU, G = 3)."""
    d = _step_draw(rng, size, gates)
    x, h, p, dh_next = d["x"], d["h"], d["params"], d["dh_next"]
    h_next, cache = step(x, h, p)
    dx, dh, grads = step_backward(dh_next, cache)

    def numeric():
        def loss():
            return float(np.sum(dh_next * step(x, h, p)[0]))
        found = _numeric_grads(loss, {"dx": x, "dh": h})
        return {**found, "grads": _numeric_grads(loss, p)}

    return Case(label(d["dims"]), d["H"], (dh_next, cache),
                {"dx": x.shape, "dh": h.shape, "grads": _shapes(p)},
                {"dx": dx, "dh": dh, "grads": grads},
                mistakes=lambda: mistakes(dh_next, cache), numeric=numeric,
                forward_args=(x, h, p), forward_shapes={"h_next": h.shape, "cache": None},
                forward_reference={"h_next": h_next}, cache_position=1)


_rnn_step_backward_case = functools.partial(
    _one_state_step_backward_case, gates=1, step=cells.rnn_step,
    step_backward=cells.rnn_step_backward, mistakes=_rnn_step_backward_mistakes)
_gru_step_backward_case = functools.partial(
    _one_state_step_backward_case, gates=3, step=cells.gru_step,
    step_backward=cells.gru_step_backward, mistakes=_gru_backward_mistakes)


def _lstm_step_backward_case(rng, size, label) -> Case:
    d = _step_draw(rng, size, 4)
    x, h, c, p = d["x"], d["h"], d["c"], d["params"]
    dh_next, dc_next = d["dh_next"], d["dc_next"]
    h_next, c_next, cache = cells.lstm_step(x, h, c, p)
    dx, dh, dc, grads = cells.lstm_step_backward(dh_next, dc_next, cache)

    def numeric():
        def loss():
            h_out, c_out, _ = cells.lstm_step(x, h, c, p)
            return float(np.sum(dh_next * h_out) + np.sum(dc_next * c_out))
        found = _numeric_grads(loss, {"dx": x, "dh": h, "dc": c})
        return {**found, "grads": _numeric_grads(loss, p)}

    return Case(label(d["dims"]), d["H"], (dh_next, dc_next, cache),
                {"dx": x.shape, "dh": h.shape, "dc": h.shape, "grads": _shapes(p)},
                {"dx": dx, "dh": dh, "dc": dc, "grads": grads},
                mistakes=lambda: _lstm_backward_mistakes(dh_next, dc_next, cache),
                numeric=numeric, forward_args=(x, h, c, p),
                forward_shapes={"h_next": h.shape, "c_next": h.shape, "cache": None},
                forward_reference={"h_next": h_next, "c_next": c_next}, cache_position=2)


def _rnn_backward_case(rng, size, label) -> Case:
    steps, batch, input_size, hidden = (int(s) for s in size)
    p = _params(rng, 1, input_size, hidden)
    xs = rng.standard_normal((steps, batch, input_size))
    h0 = rng.uniform(-0.9, 0.9, size=(batch, hidden))
    dhs = rng.standard_normal((steps, batch, hidden))
    hs, cache = cells.rnn_forward(xs, h0, p)
    dxs, dh0, grads = cells.rnn_backward(dhs, cache)

    def numeric():
        def loss():
            return float(np.sum(dhs * cells.rnn_forward(xs, h0, p)[0]))
        found = _numeric_grads(loss, {"dxs": xs, "dh0": h0})
        return {**found, "grads": _numeric_grads(loss, p)}

    dims = {"T": steps, "B": batch, "I": input_size, "H": hidden}
    return Case(label(dims), hidden, (dhs, cache),
                {"dxs": xs.shape, "dh0": h0.shape, "grads": _shapes(p)},
                {"dxs": dxs, "dh0": dh0, "grads": grads},
                mistakes=lambda: _bptt_mistakes(dhs, cache), numeric=numeric,
                forward_args=(xs, h0, p), forward_shapes={"hs": hs.shape, "cache": None},
                forward_reference={"hs": hs}, cache_position=1)


def _clip_case(rng, size, label) -> Case:
    scale, max_norm, p = size
    if scale is None:  # SCIENCE: (3, 4) clipped to norm 1 is (0.6, 0.8)
        grads = {"g": np.array([3.0, 4.0])}
    else:
        grads = {"weight_ih": scale * rng.standard_normal((6, 3)),
                 "weight_hh": scale * rng.standard_normal((6, 2)),
                 "bias_ih": 4 * scale * rng.standard_normal(6),
                 "bias_hh": 0.1 * scale * rng.standard_normal(6)}
    clipped, total_norm = clip_by_norm(grads, max_norm, norm_type=p)
    arrays = ", ".join(f"{k} {v.shape}" for k, v in grads.items())
    dims = {"max_norm": f"{max_norm:g}", "norm_type": f"{p:g}", "arrays": arrays}
    return Case(label(dims), 1, (grads, float(max_norm)),
                {"clipped": _shapes(grads), "total_norm": "number"},
                {"clipped": clipped, "total_norm": np.float64(total_norm)},
                kwargs={} if p == 2.0 else {"norm_type": p}, tolerance=1e-6,
                mistakes=lambda: _clip_mistakes(grads, max_norm, p))


def _select_norms(sizes: tuple, norm_types: Sequence[float] = (2.0,)) -> tuple:
    kept = tuple(size for size in sizes if size[2] in tuple(norm_types))
    if not kept:
        raise ValueError(f"norm_types must include 2.0, 1.0 or inf, got {norm_types!r}")
    return kept


def _mase_case(rng, size, label) -> Case:
    from .timeseries import mase as mase_reference  # pandas is imported only when needed

    n_train, horizon, season = (int(s) for s in size)
    t = np.arange(n_train + horizon, dtype=np.float64)
    series = (np.sin(2 * np.pi * t / season) * 3 + 0.05 * t
              + rng.standard_normal(n_train + horizon))
    y_train, y_true = series[:n_train], series[n_train:]
    y_pred = y_true + rng.normal(0.2, 0.8, size=horizon)
    reference = np.float64(mase_reference(y_true, y_pred, y_train, season))
    dims = {"len(y_train)": n_train, "len(y_true)": horizon, "season": season}
    return Case(label(dims), 0, (y_true, y_pred, y_train, season), {"the MASE": "number"},
                {"the MASE": reference},
                mistakes=lambda: _mase_mistakes(y_true, y_pred, y_train, season))


def _count_case(rng, size, label) -> Case:
    kind, input_size, hidden, biases = size
    count = _GATE_BLOCKS[kind] * hidden * (input_size + hidden + biases)
    dims = {"kind": repr(kind), "I": input_size, "H": hidden, "biases": biases}
    return Case(label(dims), 0, (kind, int(input_size), int(hidden)), {"the count": "count"},
                {"the count": np.float64(count)},
                kwargs={} if biases == 2 else {"biases": int(biases)},
                mistakes=lambda: _count_mistakes(kind, input_size, hidden, biases))


_LSTM_STEP = ("throughtime.numpy_cells.lstm_step", "throughtime.numpy_cells._lstm_step",
              "throughtime.numpy_cells.lstm_forward", "throughtime.gates.record_gates")
_SPECS: dict[str, _Spec] = {spec.check: spec for spec in (
    _Spec("check_rnn_step", "rnn_step", _STEP_ARGS["rnn"], ("h_next", "cache"), "h_next",
          _rnn_step_case, _STEP_SIZES,
          ("throughtime.numpy_cells.rnn_step", "throughtime.numpy_cells._rnn_step",
           "throughtime.numpy_cells.rnn_forward"),
          holds="the inputs, the pre-activation and the new state"),
    _Spec("check_lstm_step", "lstm_step", _STEP_ARGS["lstm"], ("h_next", "c_next", "cache"),
          "h_next and c_next", _lstm_step_case, _STEP_SIZES, _LSTM_STEP, gates="ifgo",
          allowed="numpy_cells.sigmoid is fine", holds="the inputs and the four gates"),
    _Spec("check_lstm_peephole_step", "lstm_peephole_step", _STEP_ARGS["lstm"],
          ("h_next", "c_next", "cache"), "h_next and c_next", _peephole_case, _STEP_SIZES,
          (f"{__name__}._peephole_reference", *_LSTM_STEP), gates="ifgo", optional_last=True,
          allowed="numpy_cells.sigmoid is fine"),
    _Spec("check_gru_step", "gru_step", _STEP_ARGS["rnn"], ("h_next", "cache"), "h_next",
          _gru_step_case, _STEP_SIZES,
          ("throughtime.numpy_cells.gru_step", "throughtime.numpy_cells._gru_step",
           "throughtime.numpy_cells.gru_forward", "throughtime.gru_conventions.gru_step_pytorch",
           "throughtime.gru_conventions.gru_forward_convention"),
          gates="rzn", allowed="numpy_cells.sigmoid is fine"),
    _Spec("check_rnn_step_backward", "rnn_step_backward", ("dh_next", "cache"),
          ("dx", "dh", "grads"), "dx, dh and the four parameter gradients",
          _rnn_step_backward_case, _STEP_SIZES,
          ("throughtime.numpy_cells.rnn_step_backward",
           "throughtime.numpy_cells._rnn_step_backward", "throughtime.numpy_cells.rnn_backward",
           "throughtime.numpy_cells.rnn_backward_truncated",
           "throughtime.numpy_cells.rnn_backward_segment"),
          forward=_Forward("rnn_step", ("h_next", "cache"))),
    _Spec("check_lstm_step_backward", "lstm_step_backward", ("dh_next", "dc_next", "cache"),
          ("dx", "dh", "dc", "grads"), "dx, dh, dc and the four parameter gradients",
          _lstm_step_backward_case, _STEP_SIZES,
          ("throughtime.numpy_cells.lstm_step_backward",
           "throughtime.numpy_cells._lstm_step_backward",
           "throughtime.numpy_cells.lstm_backward"),
          gates="ifgo", forward=_Forward("lstm_step", ("h_next", "c_next", "cache"))),
    _Spec("check_gru_step_backward", "gru_step_backward", ("dh_next", "cache"),
          ("dx", "dh", "grads"), "dx, dh and the four parameter gradients",
          _gru_step_backward_case, _STEP_SIZES,
          ("throughtime.numpy_cells.gru_step_backward",
           "throughtime.numpy_cells._gru_step_backward",
           "throughtime.numpy_cells.gru_backward"),
          gates="rzn", forward=_Forward("gru_step", ("h_next", "cache"))),
    _Spec("check_rnn_backward", "rnn_backward", ("dhs", "cache"), ("dxs", "dh0", "grads"),
          "dxs, dh0 and the parameter gradients summed over time", _rnn_backward_case,
          ((4, 2, 3, 4), (3, 3, 5, 2), (5, 1, 4, 3)),
          ("throughtime.numpy_cells.rnn_backward", "throughtime.numpy_cells.rnn_backward_truncated",
           "throughtime.numpy_cells.rnn_backward_segment"),
          forward=_Forward("rnn_forward", ("hs", "cache")),
          allowed="calling an rnn_step_backward at each step is fine"),
    _Spec("check_clip_by_norm", "clip_by_norm", ("grads", "max_norm"),
          ("clipped", "total_norm"), "the clipped gradients and total_norm", _clip_case,
          ((None, 1.0, 2.0), (3.0, 5.0, 2.0), (0.1, 5.0, 2.0), (2.0, 3.0, 1.0),
           (2.0, 1.5, float("inf"))),
          ("throughtime.gradients.clip_by_norm",), select=_select_norms),
    _Spec("check_mase", "mase", ("y_true", "y_pred", "y_train", "season"), ("the MASE",),
          "MASE", _mase_case, ((48, 18, 12), (30, 10, 7), (40, 9, 4)),
          ("throughtime.timeseries.mase", "throughtime.timeseries.seasonal_naive_mae")),
    _Spec("check_param_count", "param_count", ("kind", "input_size", "hidden_size"),
          ("the count",), "the parameter count", _count_case,
          tuple((kind, i, h, 2) for kind in ("RNN", "LSTM", "GRU")
                for i, h in ((1, 2), (3, 5), (32, 128)))
          + tuple((kind, 3, 5, 1) for kind in ("RNN", "LSTM", "GRU")),
          ("throughtime.measure.parameter_count",
           "throughtime.measure.model_parameter_count")),
)}

CHECKS = tuple(_SPECS)
"""The names of every check, for graders (``hidden_cases``, ``run_cases``, ...)."""


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------


@_public
def check_rnn_step(rnn_step: Callable) -> None:
    """Check ``rnn_step(x, h, params) -> (h_next, cache)``, the tanh RNN step.

    h_next = tanh(W_ih x + b_ih + W_hh h + b_hh), with x (B, I), h (B, H), ``params`` as
    in ``numpy_cells.rnn_step``. The cache must be a dict (or tuple) that keeps x, h, the
    pre-activation a and h_next, which a backward pass needs; its keys are free.

    Raises
    ------
    CheckFailed
        When ``h_next`` is wrong, the cache lacks one of those arrays, an input was changed
        in place, or the function fails or returns the wrong things.
    """
    return _run_check("check_rnn_step", rnn_step)


@_public
def check_lstm_step(lstm_step: Callable) -> None:
    """Check ``lstm_step(x, h, c, params) -> (h_next, c_next, cache)``.

    The LSTM of ``numpy_cells.lstm_step`` (``torch.nn.LSTMCell``): gate blocks stacked
    i, f, g, o; c_next = f * c + i * g; h_next = o * tanh(c_next). The cache must keep the
    inputs x, h, c and the four gates i, f, g, o (under any keys).

    Raises
    ------
    CheckFailed
        When ``h_next`` or ``c_next`` is wrong, the cache lacks one of those arrays, an
        input was changed in place, or the function fails or returns the wrong things.
    """
    return _run_check("check_lstm_step", lstm_step)


@_public
def check_gru_step(gru_step: Callable) -> None:
    """Check ``gru_step(x, h, params) -> (h_next, cache)`` in PyTorch's convention.

    Gate blocks r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (reset after the
    matrix product); h_next = (1 - z) * n + z * h. The cache is not inspected.

    Raises
    ------
    CheckFailed
        When ``h_next`` is wrong, an input was changed in place, or the function fails or
        returns the wrong things.
    """
    return _run_check("check_gru_step", gru_step)


@_public
def check_lstm_peephole_step(peephole_step: Callable) -> None:
    """Check ``lstm_peephole_step(x, h, c, params)``, the LSTM with peepholes.

    Gers and Schmidhuber's peephole connections: ``params`` holds the LSTM's four arrays
    plus ``peephole_i``, ``peephole_f``, ``peephole_o`` of shape (H,); i and f add
    p_i * c_{t-1} and p_f * c_{t-1} to their pre-activations, o adds p_o * c_t. The
    function returns ``(h_next, c_next)`` or ``(h_next, c_next, cache)`` (a cache is not
    inspected).

    Raises
    ------
    CheckFailed
        When ``h_next`` or ``c_next`` is wrong, an input was changed in place, or the
        function fails or returns the wrong things.
    """
    return _run_check("check_lstm_peephole_step", peephole_step)


@_public
def check_rnn_step_backward(rnn_step_backward: Callable, *,
                            forward: Callable | None = None) -> None:
    """Check ``rnn_step_backward(dh_next, cache) -> (dx, dh, grads)`` for the tanh RNN.

    ``cache`` comes from the reference ``numpy_cells.rnn_step`` (keys ``x``, ``h``, ``a``,
    ``h_next``, ``params``, ``nonlinearity``, ``kind``), or from ``forward`` when given
    (the student's own ``rnn_step(x, h, params) -> (h_next, cache)``, checked first).
    ``grads`` is a dict with the keys ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``. The outputs are compared with the reference backward pass and with
    centred finite differences of the loss sum(dh_next * h_next).

    Raises
    ------
    CheckFailed
        When an output is wrong, an input was changed in place, or the function fails or
        returns the wrong things.
    """
    return _run_check("check_rnn_step_backward", rnn_step_backward, forward=forward)


@_public
def check_lstm_step_backward(lstm_step_backward: Callable, *,
                             forward: Callable | None = None) -> None:
    """Check ``lstm_step_backward(dh_next, dc_next, cache) -> (dx, dh, dc, grads)``.

    ``cache`` comes from the reference ``numpy_cells.lstm_step`` (keys ``x``, ``h``, ``c``,
    ``i``, ``f``, ``g``, ``o``, ``tanh_c``, ``h_next``, ``params``, ``kind``), or from
    ``forward`` when given (the student's own
    ``lstm_step(x, h, c, params) -> (h_next, c_next, cache)``, checked first). The outputs
    are compared with the reference and with centred finite differences of the loss
    sum(dh_next * h_next) + sum(dc_next * c_next).

    Raises
    ------
    CheckFailed
        When an output is wrong, an input was changed in place, or the function fails or
        returns the wrong things.
    """
    return _run_check("check_lstm_step_backward", lstm_step_backward, forward=forward)


@_public
def check_gru_step_backward(gru_step_backward: Callable, *,
                            forward: Callable | None = None) -> None:
    """Check ``gru_step_backward(dh_next, cache) -> (dx, dh, grads)`` (PyTorch's GRU).

    ``cache`` comes from the reference ``numpy_cells.gru_step`` (keys ``x``, ``h``, ``r``,
    ``z``, ``n``, ``ah_n`` = W_hn h + b_hn, ``h_next``, ``params``, ``kind``), or from
    ``forward`` when given (the student's own ``gru_step(x, h, params) -> (h_next, cache)``,
    checked first). The outputs are compared with the reference and with centred finite
    differences of the loss sum(dh_next * h_next).

    Raises
    ------
    CheckFailed
        When an output is wrong, an input was changed in place, or the function fails or
        returns the wrong things.
    """
    return _run_check("check_gru_step_backward", gru_step_backward, forward=forward)


@_public
def check_rnn_backward(rnn_backward: Callable, *, forward: Callable | None = None) -> None:
    """Check ``rnn_backward(dhs, cache) -> (dxs, dh0, grads)``: BPTT for the tanh RNN.

    ``dhs`` (T, B, H) is the gradient of the loss arriving at every hidden state directly.
    ``cache`` comes from the reference ``numpy_cells.rnn_forward(xs, h0, params)``:
    ``{"kind": "rnn", "steps": [...]}`` with one ``rnn_step`` cache per step, so the
    student's function can loop over ``reversed(cache["steps"])`` and call an
    ``rnn_step_backward`` on each (``dxs`` (T, B, I), ``dh0`` (B, H), ``grads`` summed over
    time). With ``forward`` (the student's own ``rnn_forward(xs, h0, params) -> (hs,
    cache)``, checked first), its cache is used instead. The outputs are compared with
    ``numpy_cells.rnn_backward`` and with centred finite differences of sum(dhs * hs).

    Raises
    ------
    CheckFailed
        When an output is wrong, an input was changed in place, or the function fails or
        returns the wrong things.
    """
    return _run_check("check_rnn_backward", rnn_backward, forward=forward)


@_public
def check_clip_by_norm(clip_by_norm_fn: Callable, *,
                       norm_types: tuple[float, ...] = (2.0,)) -> None:
    """Check ``clip_by_norm(grads, max_norm, norm_type=2.0) -> (clipped, total_norm)``.

    ``grads`` is a dict name -> array. One norm is taken over all arrays together, and
    every array is scaled by min(1, max_norm / (total_norm + 1e-6)) (with or without the
    1e-6); ``total_norm`` is the norm before clipping; the inputs must not be modified.
    The reference is ``gradients.clip_by_norm`` (equal to
    ``torch.nn.utils.clip_grad_norm_``).

    Parameters
    ----------
    clip_by_norm_fn : callable
        The student's function.
    norm_types : tuple of float
        The p-norms to test. With the default (2.0,) the function is called as
        ``fn(grads, max_norm)``; other values (1.0, ``float("inf")``) are passed as
        ``norm_type=``.

    Raises
    ------
    CheckFailed
        When the clipped arrays or the norm are wrong, the input was modified, or the
        function fails or returns the wrong things.
    """
    return _run_check("check_clip_by_norm", clip_by_norm_fn, norm_types=norm_types)


@_public
def check_mase(mase: Callable) -> None:
    """Check ``mase(y_true, y_pred, y_train, season) -> float``.

    MASE = ``mean(abs(y_true - y_pred)) / Q``, where Q is the mean over t >= m of
    ``abs(y_train[t] - y_train[t - m])``: the in-sample error of the seasonal naive forecast
    on the training series (m = ``season``). The arrays are 1-D float64; the reference is
    ``timeseries.mase``.

    Raises
    ------
    CheckFailed
        When the value is wrong, an input was changed in place, or the function fails or
        returns the wrong thing.
    """
    return _run_check("check_mase", mase)


@_public
def check_param_count(param_count: Callable) -> None:
    """Check ``param_count(kind, input_size, hidden_size, biases=2) -> int``.

    The number of parameters of a one-layer ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (``kind``
    is the class name) with ``biases`` bias vectors per gate block: G H (I + H + k), with
    G = 1, 4, 3 gate blocks. Called as ``param_count(kind, I, H)`` and, for one bias per
    block, ``param_count(kind, I, H, biases=1)``.

    Raises
    ------
    CheckFailed
        When a count is wrong, or the function fails or returns something other than a
        whole number.
    """
    return _run_check("check_param_count", param_count)
