"""Recurrent cells in numpy, forward and backward, written by hand.

Parameters use PyTorch's names, layouts and gate orders, so weights move between these
functions and ``torch.nn`` without reordering. ``params`` is a dict with four arrays,
G = 1 for the tanh RNN, 4 for the LSTM (gates i, f, g, o) and 3 for the GRU (r, z, n)::

    weight_ih  (G*H, I)    weight_hh  (G*H, H)    bias_ih  (G*H,)    bias_hh  (G*H,)

``grads`` is a dict with the same keys and shapes. Every function works in float32 and in
float64 and keeps the dtype of its inputs. Sequences are time-major: ``xs`` has shape
(T, B, I) and the hidden states ``hs`` have shape (T, B, H). ``hs[t]`` is the state after
reading ``xs[t]``; in the book's 1-based notation ``xs[t]`` is x_{t+1}, ``hs[t]`` is
h_{t+1} and ``h0`` is h_0.

Each step function returns a ``cache`` (a dict of what its backward pass needs); each
backward function takes the gradient of the loss with respect to the step's outputs and
returns the gradients with respect to its inputs and to the parameters. The sequence
functions run the steps in a loop (forward) and backpropagate through time (backward):
a loop from t = T-1 down to 0 that carries the gradient of the hidden state and sums the
parameter gradients over time.

A cache holds references to the inputs and to ``params``, not copies: update the
parameters after the backward pass, not between forward and backward.

Input checks live in the public functions; the math lives in the private ``_..._step``
functions right below each one, which the sequence loops call directly.

Truncated BPTT (``rnn_backward_truncated``, ``truncated_bptt_segments``,
``rnn_backward_segment``) is ``throughtime.truncated_bptt``, and moving weights between
these dicts and ``torch.nn`` modules (``params_from_torch``, ``params_to_torch``,
``load_into_torch``) is ``throughtime.torch_weights``; both can be imported from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ._validate import check_choice, check_float_array, check_int, check_same_dtype, describe

__all__ = [
    "PARAM_NAMES",
    "GATES",
    "NONLINEARITIES",
    "sigmoid",
    "init_params",
    "rnn_step",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_step",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_step",
    "gru_step_backward",
    "gru_forward",
    "gru_backward",
]

Params = Mapping[str, np.ndarray]
Grads = dict[str, np.ndarray]
Cache = dict[str, Any]

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Number of stacked gate blocks G per kind: weight_ih has G*H rows."""


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, :math:`\\sigma(x) = 1 / (1 + e^{-x})`, without overflow.

    ``exp`` is only ever evaluated at :math:`-|x| \\le 0`, so it cannot overflow: for
    x >= 0 the result is :math:`1 / (1 + e^{-x})`, for x < 0 it is
    :math:`e^{x} / (1 + e^{x})`. Keeps a float32 or float64 dtype (other inputs become
    float64), so it is safe for ``|x|`` up to 1e4 and beyond in both precisions.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


# Each activation f is stored with its derivative f'(a), written in terms of the
# pre-activation a and the output h = f(a) (whichever is cheaper).
NONLINEARITIES: dict[str, tuple[Callable, Callable]] = {
    "tanh": (np.tanh, lambda a, h: 1 - h * h),
    "relu": (lambda a: np.maximum(a, 0), lambda a, h: (a > 0).astype(a.dtype)),
    "sigmoid": (sigmoid, lambda a, h: h * (1 - h)),
    "linear": (lambda a: a.copy(), lambda a, h: np.ones_like(a)),
}
"""Activations of the vanilla RNN: name -> (f, f') with f'(a, h) where h = f(a).

``torch.nn.RNN`` offers ``"tanh"`` and ``"relu"``; ``"sigmoid"`` and ``"linear"`` are here
for the vanishing-gradient experiments (Pascanu et al. 2013's conditions)."""


# --------------------------------------------------------------------------------------
# Input checks and initialisation
# --------------------------------------------------------------------------------------


def _check_params(params: Any, kind: str | None) -> tuple[int, int, np.dtype]:
    """Check ``params`` for a cell of ``kind``; return (input_size I, hidden_size H, dtype).

    ``kind=None`` accepts any of the three kinds (G = 1, 3 or 4).
    """
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict with keys {list(PARAM_NAMES)}, got {describe(params)}"
        )
    keys = set(params)
    if keys != set(PARAM_NAMES):
        missing = [k for k in PARAM_NAMES if k not in keys]
        extra = sorted(str(k) for k in keys - set(PARAM_NAMES))
        hint = ""
        if any(k.endswith("_l0") for k in extra):
            hint = " (a torch state dict: convert it with params_from_torch)"
        raise ValueError(
            f"params must have exactly the keys {list(PARAM_NAMES)}; missing {missing}, "
            f"unexpected {extra}{hint}"
        )
    for name in PARAM_NAMES:
        ndim = 1 if name.startswith("bias") else 2
        check_float_array(f"params['{name}']", params[name], ndim=ndim)
    dtype = check_same_dtype({f"params['{k}']": params[k] for k in PARAM_NAMES})
    rows, hidden_size = params["weight_hh"].shape
    if kind is None:
        kind = _kind_of(params)
    gates = GATES[kind]
    if rows != gates * hidden_size:
        guess = [k for k, g in GATES.items() if rows == g * hidden_size]
        looks = f"; it looks like parameters for kind {guess[0]!r}" if guess else ""
        raise ValueError(
            f"params['weight_hh'] must have shape (G*H, H) = ({gates * hidden_size}, "
            f"{hidden_size}) for kind {kind!r} (G = {gates}), got "
            f"{params['weight_hh'].shape}{looks}"
        )
    input_size = params["weight_ih"].shape[1]
    dims = ("G*H", "I")
    check_float_array("params['weight_ih']", params["weight_ih"],
                      shape=(gates * hidden_size, None), dims=dims)
    for name in ("bias_ih", "bias_hh"):
        check_float_array(f"params['{name}']", params[name], shape=(gates * hidden_size,),
                          dims=("G*H",))
    return input_size, hidden_size, dtype


def _check_state(name: str, value: Any, batch: int, hidden_size: int,
                 dtype: np.dtype) -> np.ndarray:
    """Check a hidden (or cell) state of shape (B, H); ``None`` means zeros."""
    if value is None:
        return np.zeros((batch, hidden_size), dtype=dtype)
    check_float_array(name, value, shape=(batch, hidden_size), dims=("B", "H"))
    check_same_dtype({name: value, "params": np.empty(0, dtype)})
    return value


def _check_step_inputs(kind: str, x: Any, states: dict[str, Any],
                       params: Any) -> tuple[int, int, np.dtype]:
    """Check a step's input x (B, I) and states (B, H) against ``params``."""
    input_size, hidden_size, dtype = _check_params(params, kind)
    check_float_array("x", x, shape=(None, input_size), dims=("B", "I"))
    for name, value in states.items():
        check_float_array(name, value, shape=(x.shape[0], hidden_size), dims=("B", "H"))
    check_same_dtype({"x": x, **states, "params": np.empty(0, dtype)})
    return input_size, hidden_size, dtype


def _check_sequence_inputs(kind: str, xs: Any, params: Any) -> tuple[int, int, np.dtype]:
    """Check a sequence xs (T, B, I) against ``params``; return (B, H, dtype)."""
    input_size, hidden_size, dtype = _check_params(params, kind)
    if isinstance(xs, np.ndarray) and xs.ndim == 3 and xs.shape[0] == 0:
        raise ValueError(f"xs must contain at least one time step, got shape {xs.shape}")
    check_float_array("xs", xs, shape=(None, None, input_size), dims=("T", "B", "I"))
    check_same_dtype({"xs": xs, "params": np.empty(0, dtype)})
    return xs.shape[1], hidden_size, dtype


def _check_cache(cache: Any, kind: str, where: str) -> None:
    if not isinstance(cache, dict) or cache.get("kind") != kind:
        got = cache.get("kind") if isinstance(cache, dict) else describe(cache)
        raise TypeError(f"cache must be the cache returned by {where}, got a cache of {got!r}")


def init_params(kind: str, input_size: int, hidden_size: int, rng: np.random.Generator,
                dtype: type | np.dtype = np.float64) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation: every entry drawn from U(-1/sqrt(H), 1/sqrt(H)).

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
    input_size, hidden_size : int
        I and H.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    dict
        ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,),
        drawn in that order.
    """
    check_choice("kind", kind, GATES)
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {describe(rng)}"
        )
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    rows = GATES[kind] * hidden_size
    bound = 1 / np.sqrt(hidden_size)
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size),
              "bias_ih": (rows,), "bias_hh": (rows,)}
    return {name: rng.uniform(-bound, bound, size=shape).astype(dtype)
            for name, shape in shapes.items()}


def _kind_of(params: Params) -> str:
    rows, hidden_size = params["weight_hh"].shape
    for kind, gates in GATES.items():
        if rows == gates * hidden_size:
            return kind
    raise ValueError(
        f"params['weight_hh'] must have shape (G*H, H) with G in {{1, 3, 4}}, "
        f"got {params['weight_hh'].shape}"
    )


def _zero_grads(params: Params) -> Grads:
    return {name: np.zeros_like(params[name]) for name in PARAM_NAMES}


def _add_grads(total: Grads, grads: Grads) -> None:
    for name in PARAM_NAMES:
        total[name] += grads[name]


# --------------------------------------------------------------------------------------
# Vanilla RNN
# --------------------------------------------------------------------------------------


def rnn_step(x: np.ndarray, h: np.ndarray, params: Params,
             nonlinearity: str = "tanh") -> tuple[np.ndarray, Cache]:
    """One step of the vanilla RNN (``torch.nn.RNNCell``).

    .. math::

        a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}, \\qquad h_t = f(a_t)

    with f = tanh by default (``nonlinearity`` may be ``"tanh"``, ``"relu"``, ``"sigmoid"``
    or ``"linear"``).

    Parameters
    ----------
    x : ndarray, shape (B, I)
        Input x_t.
    h : ndarray, shape (B, H)
        Previous hidden state h_{t-1}.
    params : dict
        ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,).
    nonlinearity : str

    Returns
    -------
    h_next : ndarray, shape (B, H)
        h_t.
    cache : dict
        What ``rnn_step_backward`` needs: ``x``, ``h``, ``a`` (a_t), ``h_next``,
        ``params``, ``nonlinearity`` and ``kind`` = ``"rnn_step"``.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    _check_step_inputs("rnn", x, {"h": h}, params)
    return _rnn_step(x, h, params, nonlinearity)


def _rnn_step(x, h, params, nonlinearity):
    f, _ = NONLINEARITIES[nonlinearity]
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \
        + params["bias_hh"]
    h_next = f(a)
    cache = {"kind": "rnn_step", "x": x, "h": h, "a": a, "h_next": h_next,
             "params": params, "nonlinearity": nonlinearity}
    return h_next, cache


def rnn_step_backward(dh_next: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, Grads]:
    """Backward pass of ``rnn_step``.

    With da_t = dh_t * f'(a_t) (elementwise; f' = 1 - h_t^2 for tanh):

    .. math::

        dx_t = da_t W_{ih}, \\quad dh_{t-1} = da_t W_{hh}, \\quad
        dW_{ih} = da_t^\\top x_t, \\quad dW_{hh} = da_t^\\top h_{t-1}, \\quad
        db_{ih} = db_{hh} = \\textstyle\\sum_{batch} da_t

    Parameters
    ----------
    dh_next : ndarray, shape (B, H)
        dL/dh_t, the gradient of the loss with respect to the step's output.
    cache : dict
        From ``rnn_step``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    dh : ndarray, shape (B, H)
        dL/dh_{t-1}.
    grads : dict
        Gradients of the four parameters.
    """
    _check_cache(cache, "rnn_step", "rnn_step")
    check_float_array("dh_next", dh_next, shape=cache["h_next"].shape, dims=("B", "H"),
                      dtype=cache["h_next"].dtype)
    return _rnn_step_backward(dh_next, cache)


def _rnn_step_backward(dh_next, cache):
    _, f_prime = NONLINEARITIES[cache["nonlinearity"]]
    params = cache["params"]
    da = dh_next * f_prime(cache["a"], cache["h_next"])
    dx = da @ params["weight_ih"]
    dh = da @ params["weight_hh"]
    grads = {
        "weight_ih": da.T @ cache["x"],
        "weight_hh": da.T @ cache["h"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return dx, dh, grads


def rnn_forward(xs: np.ndarray, h0: np.ndarray | None, params: Params,
                nonlinearity: str = "tanh") -> tuple[np.ndarray, Cache]:
    """Run the vanilla RNN over a sequence (``torch.nn.RNN``, one layer).

    h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) for t = 1..T, starting from h_0.

    Parameters
    ----------
    xs : ndarray, shape (T, B, I)
    h0 : ndarray, shape (B, H), or None
        Initial state h_0; ``None`` means zeros.
    params : dict
        As for ``rnn_step``.
    nonlinearity : {"tanh", "relu", "sigmoid", "linear"}

    Returns
    -------
    hs : ndarray, shape (T, B, H)
        ``hs[t]`` is the state after reading ``xs[t]``; ``hs[-1]`` is the final state.
    cache : dict
        What ``rnn_backward`` needs: ``{"kind": "rnn", "steps": [...]}``, one
        ``rnn_step`` cache per step.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    batch, hidden_size, dtype = _check_sequence_inputs("rnn", xs, params)
    h = _check_state("h0", h0, batch, hidden_size, dtype)
    hs = np.empty((xs.shape[0], batch, hidden_size), dtype=dtype)
    steps = []
    for t in range(xs.shape[0]):
        h, step_cache = _rnn_step(xs[t], h, params, nonlinearity)
        hs[t] = h
        steps.append(step_cache)
    return hs, {"kind": "rnn", "steps": steps}


def rnn_backward(dhs: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, Grads]:
    """Backpropagation through time for ``rnn_forward``.

    The hidden state h_t receives gradient from the loss directly (``dhs[t]``) and from
    the next step (dh carried back): dL/dh_t = dhs[t] + (dL/dh_{t+1} through step t+1).
    The loop runs t = T-1 down to 0, and the parameter gradients are summed over time.

    Parameters
    ----------
    dhs : ndarray, shape (T, B, H)
        The gradient of the loss arriving at every hidden state directly (zeros where
        the loss does not look at a state).
    cache : dict
        From ``rnn_forward``.

    Returns
    -------
    dxs : ndarray, shape (T, B, I)
    dh0 : ndarray, shape (B, H)
    grads : dict
        Parameter gradients summed over time.
    """
    _check_cache(cache, "rnn", "rnn_forward")
    _check_sequence_gradient("dhs", dhs, cache)
    steps = cache["steps"]
    grads = _zero_grads(steps[0]["params"])
    dxs = np.empty((len(steps), *steps[0]["x"].shape), dtype=dhs.dtype)
    dh = np.zeros_like(dhs[0])  # gradient flowing back from the future
    for t in reversed(range(len(steps))):
        dxs[t], dh, step_grads = _rnn_step_backward(dhs[t] + dh, steps[t])
        _add_grads(grads, step_grads)
    return dxs, dh, grads


def _check_sequence_gradient(name: str, dhs: Any, cache: Cache) -> None:
    steps = cache["steps"]
    h_shape = steps[0]["h"].shape
    check_float_array(name, dhs, shape=(len(steps), *h_shape), dims=("T", "B", "H"),
                      dtype=steps[0]["h"].dtype)


# --------------------------------------------------------------------------------------
# LSTM (PyTorch's nn.LSTM: gate order i, f, g, o; no peepholes)
# --------------------------------------------------------------------------------------


def lstm_step(x: np.ndarray, h: np.ndarray, c: np.ndarray,
              params: Params) -> tuple[np.ndarray, np.ndarray, Cache]:
    """One step of the LSTM (``torch.nn.LSTMCell``).

    The four gate blocks are stacked in the order i, f, g, o (rows k*H to (k+1)*H of the
    weights and biases):

    .. math::

        i_t &= \\sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\\\
        f_t &= \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\\\
        g_t &= \\tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\\\
        o_t &= \\sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\\\
        c_t &= f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
        h_t &= o_t \\odot \\tanh(c_t)

    Parameters
    ----------
    x : ndarray, shape (B, I)
    h : ndarray, shape (B, H)
        h_{t-1}.
    c : ndarray, shape (B, H)
        c_{t-1}, the previous cell state.
    params : dict
        ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,).

    Returns
    -------
    h_next, c_next : ndarray, shape (B, H)
        h_t and c_t.
    cache : dict
        ``x``, ``h``, ``c``, the gates ``i``, ``f``, ``g``, ``o``, ``tanh_c``
        (tanh c_t), ``h_next``, ``params`` and ``kind`` = ``"lstm_step"``.
    """
    _check_step_inputs("lstm", x, {"h": h, "c": c}, params)
    return _lstm_step(x, h, c, params)


def _lstm_step(x, h, c, params):
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \
        + params["bias_hh"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_next = f * c + i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    cache = {"kind": "lstm_step", "x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o,
             "tanh_c": tanh_c, "h_next": h_next, "params": params}
    return h_next, c_next, cache


def lstm_step_backward(dh_next: np.ndarray, dc_next: np.ndarray,
                       cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray, Grads]:
    """Backward pass of ``lstm_step``.

    The cell state gets gradient from the next step (dc_next) and through h_t:

    .. math::

        dc &= dc_t + dh_t \\odot o_t \\odot (1 - \\tanh^2 c_t) \\\\
        do &= dh_t \\odot \\tanh c_t, \\quad di = dc \\odot g_t, \\quad
        dg = dc \\odot i_t, \\quad df = dc \\odot c_{t-1} \\\\
        dc_{t-1} &= dc \\odot f_t

    then through the activations (sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2) to the
    stacked pre-activations da = [da_i, da_f, da_g, da_o], and as in the RNN:
    dx = da W_ih, dh_{t-1} = da W_hh, dW_ih = da^T x, dW_hh = da^T h_{t-1},
    db_ih = db_hh = sum over the batch of da.

    Parameters
    ----------
    dh_next, dc_next : ndarray, shape (B, H)
        dL/dh_t and the gradient reaching c_t from later steps.
    cache : dict
        From ``lstm_step``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    dh, dc : ndarray, shape (B, H)
        Gradients for h_{t-1} and c_{t-1}.
    grads : dict
    """
    _check_cache(cache, "lstm_step", "lstm_step")
    for name, value in (("dh_next", dh_next), ("dc_next", dc_next)):
        check_float_array(name, value, shape=cache["h_next"].shape, dims=("B", "H"),
                          dtype=cache["h_next"].dtype)
    return _lstm_step_backward(dh_next, dc_next, cache)


def _lstm_step_backward(dh_next, dc_next, cache):
    i, f, g, o, tanh_c = (cache[k] for k in ("i", "f", "g", "o", "tanh_c"))
    params = cache["params"]
    dc = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
    do = dh_next * tanh_c
    di, dg, df = dc * g, dc * i, dc * cache["c"]
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),
                         do * o * (1 - o)], axis=1)
    dx = da @ params["weight_ih"]
    dh = da @ params["weight_hh"]
    grads = {
        "weight_ih": da.T @ cache["x"],
        "weight_hh": da.T @ cache["h"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return dx, dh, dc * f, grads


def lstm_forward(xs: np.ndarray, h0: np.ndarray | None, c0: np.ndarray | None,
                 params: Params) -> tuple[np.ndarray, np.ndarray, Cache]:
    """Run the LSTM over a sequence (``torch.nn.LSTM``, one layer).

    Parameters
    ----------
    xs : ndarray, shape (T, B, I)
    h0, c0 : ndarray, shape (B, H), or None
        Initial hidden and cell states; ``None`` means zeros.
    params : dict
        As for ``lstm_step``.

    Returns
    -------
    hs, cs : ndarray, shape (T, B, H)
        Hidden and cell states after every step.
    cache : dict
        ``{"kind": "lstm", "steps": [...]}``, one ``lstm_step`` cache per step.
    """
    batch, hidden_size, dtype = _check_sequence_inputs("lstm", xs, params)
    h = _check_state("h0", h0, batch, hidden_size, dtype)
    c = _check_state("c0", c0, batch, hidden_size, dtype)
    hs = np.empty((xs.shape[0], batch, hidden_size), dtype=dtype)
    cs = np.empty_like(hs)
    steps = []
    for t in range(xs.shape[0]):
        h, c, step_cache = _lstm_step(xs[t], h, c, params)
        hs[t], cs[t] = h, c
        steps.append(step_cache)
    return hs, cs, {"kind": "lstm", "steps": steps}


def lstm_backward(dhs: np.ndarray,
                  cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray, Grads]:
    """Backpropagation through time for ``lstm_forward``.

    Two gradients travel back: dh (to h_{t-1}) and dc (to c_{t-1}). The loss looks at the
    hidden states only, so ``dhs[t]`` is added to dh at every step and dc starts at zero.

    Parameters
    ----------
    dhs : ndarray, shape (T, B, H)
    cache : dict
        From ``lstm_forward``.

    Returns
    -------
    dxs : ndarray, shape (T, B, I)
    dh0, dc0 : ndarray, shape (B, H)
    grads : dict
    """
    _check_cache(cache, "lstm", "lstm_forward")
    _check_sequence_gradient("dhs", dhs, cache)
    steps = cache["steps"]
    grads = _zero_grads(steps[0]["params"])
    dxs = np.empty((len(steps), *steps[0]["x"].shape), dtype=dhs.dtype)
    dh = np.zeros_like(dhs[0])
    dc = np.zeros_like(dhs[0])
    for t in reversed(range(len(steps))):
        dxs[t], dh, dc, step_grads = _lstm_step_backward(dhs[t] + dh, dc, steps[t])
        _add_grads(grads, step_grads)
    return dxs, dh, dc, grads


# --------------------------------------------------------------------------------------
# GRU (PyTorch's nn.GRU: gate order r, z, n; reset applied after the matrix product)
# --------------------------------------------------------------------------------------


def gru_step(x: np.ndarray, h: np.ndarray, params: Params) -> tuple[np.ndarray, Cache]:
    """One step of the GRU (``torch.nn.GRUCell``), gate blocks stacked as r, z, n:

    .. math::

        r_t &= \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
        z_t &= \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\\\
        n_t &= \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn})) \\\\
        h_t &= (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}

    This is PyTorch's convention: the reset gate multiplies W_hn h_{t-1} + b_hn after the
    matrix product (Cho et al. 2014 apply it before), and z_t keeps the old state.

    Parameters
    ----------
    x : ndarray, shape (B, I)
    h : ndarray, shape (B, H)
        h_{t-1}.
    params : dict
        ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,), ``bias_hh`` (3H,).

    Returns
    -------
    h_next : ndarray, shape (B, H)
    cache : dict
        ``x``, ``h``, the gates ``r``, ``z``, ``n``, ``ah_n`` (W_hn h_{t-1} + b_hn),
        ``h_next``, ``params`` and ``kind`` = ``"gru_step"``.
    """
    _check_step_inputs("gru", x, {"h": h}, params)
    return _gru_step(x, h, params)


def _gru_step(x, h, params):
    a_x = x @ params["weight_ih"].T + params["bias_ih"]  # (B, 3H): input parts
    a_h = h @ params["weight_hh"].T + params["bias_hh"]  # (B, 3H): recurrent parts
    ax_r, ax_z, ax_n = np.split(a_x, 3, axis=1)
    ah_r, ah_z, ah_n = np.split(a_h, 3, axis=1)
    r = sigmoid(ax_r + ah_r)
    z = sigmoid(ax_z + ah_z)
    n = np.tanh(ax_n + r * ah_n)
    h_next = (1 - z) * n + z * h
    cache = {"kind": "gru_step", "x": x, "h": h, "r": r, "z": z, "n": n, "ah_n": ah_n,
             "h_next": h_next, "params": params}
    return h_next, cache


def gru_step_backward(dh_next: np.ndarray,
                      cache: Cache) -> tuple[np.ndarray, np.ndarray, Grads]:
    """Backward pass of ``gru_step``.

    .. math::

        dn &= dh_t \\odot (1 - z_t), \\quad dz = dh_t \\odot (h_{t-1} - n_t) \\\\
        da_n &= dn \\odot (1 - n_t^2), \\quad
        dr = da_n \\odot (W_{hn} h_{t-1} + b_{hn}) \\\\
        da_r &= dr \\odot r_t (1 - r_t), \\quad da_z = dz \\odot z_t (1 - z_t)

    The input part gets [da_r, da_z, da_n] and the recurrent part [da_r, da_z, r_t da_n];
    dh_{t-1} = dh_t z_t + (recurrent part) W_hh.

    Parameters
    ----------
    dh_next : ndarray, shape (B, H)
    cache : dict
        From ``gru_step``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    dh : ndarray, shape (B, H)
    grads : dict
    """
    _check_cache(cache, "gru_step", "gru_step")
    check_float_array("dh_next", dh_next, shape=cache["h_next"].shape, dims=("B", "H"),
                      dtype=cache["h_next"].dtype)
    return _gru_step_backward(dh_next, cache)


def _gru_step_backward(dh_next, cache):
    r, z, n, h = cache["r"], cache["z"], cache["n"], cache["h"]
    params = cache["params"]
    dn = dh_next * (1 - z)
    dz = dh_next * (h - n)
    da_n = dn * (1 - n * n)
    da_r = da_n * cache["ah_n"] * r * (1 - r)
    da_z = dz * z * (1 - z)
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)      # gradient of a_x
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # gradient of a_h
    dx = da_x @ params["weight_ih"]
    dh = dh_next * z + da_h @ params["weight_hh"]
    grads = {
        "weight_ih": da_x.T @ cache["x"],
        "weight_hh": da_h.T @ h,
        "bias_ih": da_x.sum(axis=0),
        "bias_hh": da_h.sum(axis=0),
    }
    return dx, dh, grads


def gru_forward(xs: np.ndarray, h0: np.ndarray | None,
                params: Params) -> tuple[np.ndarray, Cache]:
    """Run the GRU over a sequence (``torch.nn.GRU``, one layer).

    Parameters
    ----------
    xs : ndarray, shape (T, B, I)
    h0 : ndarray, shape (B, H), or None
        Initial state; ``None`` means zeros.
    params : dict
        As for ``gru_step``.

    Returns
    -------
    hs : ndarray, shape (T, B, H)
    cache : dict
        ``{"kind": "gru", "steps": [...]}``, one ``gru_step`` cache per step.
    """
    batch, hidden_size, dtype = _check_sequence_inputs("gru", xs, params)
    h = _check_state("h0", h0, batch, hidden_size, dtype)
    hs = np.empty((xs.shape[0], batch, hidden_size), dtype=dtype)
    steps = []
    for t in range(xs.shape[0]):
        h, step_cache = _gru_step(xs[t], h, params)
        hs[t] = h
        steps.append(step_cache)
    return hs, {"kind": "gru", "steps": steps}


def gru_backward(dhs: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, Grads]:
    """Backpropagation through time for ``gru_forward`` (same loop as ``rnn_backward``).

    Parameters
    ----------
    dhs : ndarray, shape (T, B, H)
    cache : dict
        From ``gru_forward``.

    Returns
    -------
    dxs : ndarray, shape (T, B, I)
    dh0 : ndarray, shape (B, H)
    grads : dict
    """
    _check_cache(cache, "gru", "gru_forward")
    _check_sequence_gradient("dhs", dhs, cache)
    steps = cache["steps"]
    grads = _zero_grads(steps[0]["params"])
    dxs = np.empty((len(steps), *steps[0]["x"].shape), dtype=dhs.dtype)
    dh = np.zeros_like(dhs[0])
    for t in reversed(range(len(steps))):
        dxs[t], dh, step_grads = _gru_step_backward(dhs[t] + dh, steps[t])
        _add_grads(grads, step_grads)
    return dxs, dh, grads


_ELSEWHERE = {**dict.fromkeys(("rnn_backward_truncated", "TruncatedSegment",
                                "truncated_bptt_segments", "rnn_backward_segment"),
                               "truncated_bptt"),
              **dict.fromkeys(("params_from_torch", "params_to_torch", "load_into_torch"),
                              "torch_weights")}


def __getattr__(name: str) -> Any:
    """Truncated BPTT and the weight conversions under this module's name too.

    Looked up when first asked for, because those modules build on this one.
    """
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
