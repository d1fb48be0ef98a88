"""Gradients: checking them, measuring them through time, and clipping them.

- ``numeric_gradient`` and ``rel_error``: the two tools of a gradient check.
- ``hidden_gradient_norms``: how large dL/dh_t is at every step t when the loss looks only
  at the last state, the curve of the vanishing-gradient chapter.
- ``rnn_jacobians`` and ``jacobian_product_norms``: the recurrent Jacobians
  dh_t/dh_{t-1} = diag(f'(a_t)) W_hh of the vanilla RNN and the spectral norm of their
  products, the quantity behind vanishing and exploding gradients (Pascanu et al. 2013).
- ``gradient_norm_problem``, ``gradient_log_norms`` and ``gradient_norm_curve``: how the
  norm of dL/dh_t changes with the distance T - t for a vanilla RNN whose recurrent
  matrix is a scaled orthogonal matrix (``scaled_orthogonal``), next to Pascanu et al.'s
  bound (gamma * ||W_hh||_2)^(T - t), where gamma is ``derivative_bound(activation)`` and
  ||W_hh||_2 the spectral norm (the largest singular value; the book keeps the letter
  sigma for the sigmoid). ``plotting.draw_gradient_norm_curve`` draws such a curve and
  ``explorers.gradient_norm_explorer`` puts sliders on it.
- ``clip_by_norm`` and ``clip_by_value``: the two clipping rules, equal to
  ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_`` but returning new arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import numpy_cells as cells
from ._validate import (
    check_choice,
    check_float_array,
    check_int,
    check_real,
    check_same_dtype,
    describe,
)

__all__ = [
    "numeric_gradient",
    "rel_error",
    "hidden_gradient_norms",
    "rnn_jacobians",
    "jacobian_product_norms",
    "DERIVATIVE_BOUNDS",
    "derivative_bound",
    "scaled_orthogonal",
    "GradientNormCurve",
    "gradient_norm_problem",
    "gradient_log_norms",
    "gradient_norm_curve",
    "clip_by_norm",
    "clip_by_value",
]


# --------------------------------------------------------------------------------------
# Gradient checking
# --------------------------------------------------------------------------------------


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                     eps: float = 1e-6) -> np.ndarray:
    """Centred finite differences of a scalar function ``f`` at the array ``x``.

    .. math::

        \\frac{\\partial f}{\\partial x_j} \\approx
        \\frac{f(x + \\Delta e_j) - f(x - \\Delta e_j)}{2 \\Delta}

    Each entry of ``x`` is perturbed in place, ``f(x)`` is evaluated, and the entry is
    restored, so ``f`` may read ``x`` through a closure (for example a parameter dict that
    holds ``x``). The step Delta is the argument ``eps``. The error is O(eps^2) plus rounding
    of order (machine epsilon) / eps:
    use float64 (with float32 the result is accurate to about 1e-3 at best).

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns a real scalar (a float or a 0-d/size-1 array).
    x : ndarray, any shape, float32 or float64
        Modified during the call and restored bit for bit before it returns.
    eps : float
        The step.

    Returns
    -------
    ndarray, same shape and dtype as ``x``
    """
    if not callable(f):
        raise TypeError(f"f must be a callable returning a scalar, got {describe(f)}")
    check_float_array("x", x, ndim=None)
    if not x.flags.writeable:
        raise ValueError("x must be writeable: numeric_gradient perturbs it in place")
    eps = check_real("eps", eps, positive=True)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        try:
            x[index] = old + eps
            f_plus = _scalar(f(x))
            x[index] = old - eps
            f_minus = _scalar(f(x))
        finally:
            x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def _scalar(value: Any) -> float:
    array = np.asarray(value)
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"f must return a real scalar, got {describe(value)}")
    return float(array.reshape(()))


def rel_error(a: Any, b: Any, floor: float = 1e-8) -> float:
    """Largest elementwise relative error between ``a`` and ``b``.

    .. math::

        \\max_j \\frac{|a_j - b_j|}{\\max(|a_j| + |b_j|, \\mathrm{floor})}

    Entries that are equal (zeros included) count as 0, so two zero arrays have error 0.
    The ``floor`` (1e-8, as in CS231n's gradient checks) stops entries that are both tiny,
    for example 1e-17 against 0 from rounding, from counting as a 100 % error; entries
    far below the floor are therefore compared in absolute terms. Pass ``floor=0`` for a
    purely relative error. The result lies in [0, 1]; about 1e-7 or less is the usual
    sign of a correct float64 gradient against finite differences.

    Parameters
    ----------
    a, b : array_like, or dicts of arrays with the same keys
        Same shapes (dicts: the maximum over the keys). Torch tensors are accepted.
    floor : float
        Smallest denominator, >= 0.

    Returns
    -------
    float
    """
    floor = check_real("floor", floor)
    if floor < 0:
        raise ValueError(f"floor must be >= 0, got {floor}")
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            keys_a = sorted(a) if isinstance(a, Mapping) else describe(a)
            keys_b = sorted(b) if isinstance(b, Mapping) else describe(b)
            raise ValueError(f"a and b must be dicts with the same keys, got {keys_a} and {keys_b}")
        return max((rel_error(a[key], b[key], floor) for key in a), default=0.0)
    a, b = _as_numpy("a", a), _as_numpy("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got a {a.shape} and b {b.shape}")
    if a.size == 0:
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    difference = np.abs(a - b)
    scale = np.maximum(np.abs(a) + np.abs(b), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(difference == 0, 0.0, difference / scale)
    return float(np.max(ratio))


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got {describe(value)}")
    return array


# --------------------------------------------------------------------------------------
# Gradients through time
# --------------------------------------------------------------------------------------


def hidden_gradient_norms(kind: str, params: Mapping[str, np.ndarray], xs: np.ndarray,
                          h0: np.ndarray | None = None, c0: np.ndarray | None = None,
                          dh_last: np.ndarray | None = None, *, nonlinearity: str = "tanh",
                          state: str = "h") -> np.ndarray:
    """The norm of dL/dh_t at every step, for a loss that looks only at the last state.

    The loss is L = sum(dh_last * h_T), so dL/dh_T = ``dh_last`` (ones by default), and the
    gradient is carried back by the hand-written backward steps of ``numpy_cells``:
    dL/dh_{t-1} = (dL/dh_t) dh_t/dh_{t-1}. The curve shows how much of the final loss
    reaches each earlier state: it decays geometrically when gradients vanish.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
    params : dict
        Parameters of that kind (see ``numpy_cells``).
    xs : ndarray, shape (T, B, I)
    h0, c0 : ndarray, shape (B, H), or None
        Initial states (zeros by default); ``c0`` for the LSTM only.
    dh_last : ndarray, shape (B, H), or None
        dL/dh_T; ``None`` means ones.
    nonlinearity : {"tanh", "relu", "sigmoid", "linear"}
        Activation of the vanilla RNN (``kind="rnn"`` only).
    state : {"h", "c"}
        ``"c"`` (LSTM only) measures the cell state instead: dL/dc_t, the total gradient
        reaching c_t (through c_{t+1} and through h_t).

    Returns
    -------
    ndarray, shape (T,), float64
        Entry t is the Frobenius norm, over the batch and the hidden units, of the gradient
        at ``hs[t]`` (or ``cs[t]``); the last entry is the norm of ``dh_last`` (for
        ``state="h"``). With B = 1 it is the Euclidean norm of the vector dL/dh_t.
    """
    check_choice("kind", kind, cells.GATES)
    check_choice("state", state, ("h", "c"))
    if kind != "rnn" and nonlinearity != "tanh":
        raise ValueError(f"nonlinearity applies to kind='rnn' only, got kind={kind!r} "
                         f"and nonlinearity={nonlinearity!r}")
    if kind != "lstm" and (c0 is not None or state == "c"):
        raise ValueError(f"c0 and state='c' apply to kind='lstm' only, got kind={kind!r}")
    if kind == "rnn":
        hs, cache = cells.rnn_forward(xs, h0, params, nonlinearity=nonlinearity)
    elif kind == "lstm":
        hs, _, cache = cells.lstm_forward(xs, h0, c0, params)
    else:
        hs, cache = cells.gru_forward(xs, h0, params)
    if dh_last is None:
        dh_last = np.ones_like(hs[-1])
    check_float_array("dh_last", dh_last, shape=hs[-1].shape, dims=("B", "H"), dtype=hs.dtype)

    steps = cache["steps"]
    norms = np.empty(len(steps))
    dh = dh_last
    dc = np.zeros_like(dh_last)  # gradient reaching c_t from c_{t+1} (LSTM)
    for t in reversed(range(len(steps))):
        step = steps[t]
        if kind == "lstm":
            if state == "c":  # total gradient at c_t: from c_{t+1} and through h_t
                total = dc + dh * step["o"] * (1 - step["tanh_c"] ** 2)
                norms[t] = np.linalg.norm(total)
            else:
                norms[t] = np.linalg.norm(dh)
            _, dh, dc, _ = cells._lstm_step_backward(dh, dc, step)
        else:
            norms[t] = np.linalg.norm(dh)
            backward = cells._rnn_step_backward if kind == "rnn" else cells._gru_step_backward
            _, dh, _ = backward(dh, step)
    return norms


def rnn_jacobians(params: Mapping[str, np.ndarray], xs: np.ndarray,
                  h0: np.ndarray | None = None, nonlinearity: str = "tanh") -> np.ndarray:
    """The recurrent Jacobians of the vanilla RNN along a sequence.

    .. math::

        J_t = \\frac{\\partial h_t}{\\partial h_{t-1}} = \\mathrm{diag}(f'(a_t))\\, W_{hh}

    Parameters
    ----------
    params : dict
        Vanilla RNN parameters.
    xs : ndarray, shape (T, B, I)
    h0 : ndarray, shape (B, H), or None
    nonlinearity : {"tanh", "relu", "sigmoid", "linear"}

    Returns
    -------
    ndarray, shape (T, B, H, H)
        Entry [t, b] is the Jacobian of ``hs[t]`` with respect to the state before it
        (``hs[t-1]``, or ``h0`` for t = 0), for sequence b of the batch.
    """
    _, cache = cells.rnn_forward(xs, h0, params, nonlinearity=nonlinearity)
    _, f_prime = cells.NONLINEARITIES[nonlinearity]
    weight_hh = params["weight_hh"]
    slopes = np.stack([f_prime(step["a"], step["h_next"]) for step in cache["steps"]])
    return slopes[..., :, None] * weight_hh  # diag(f'(a)) W_hh, per step and example


def jacobian_product_norms(params: Mapping[str, np.ndarray], xs: np.ndarray,
                           h0: np.ndarray | None = None,
                           nonlinearity: str = "tanh") -> np.ndarray:
    """Spectral norm of the product of the last k recurrent Jacobians, for k = 0..T.

    .. math::

        s_k = \\left\\| \\frac{\\partial h_T}{\\partial h_{T-k}} \\right\\|_2
            = \\left\\| J_T J_{T-1} \\cdots J_{T-k+1} \\right\\|_2

    (1-based steps, h_0 = ``h0``; s_0 = 1). It bounds how much a gradient at h_T can grow
    or shrink on its way back k steps:
    :math:`\\|\\partial L / \\partial h_{T-k}\\| \\le s_k \\|\\partial L / \\partial h_T\\|`.
    Since :math:`\\|J_t\\| \\le \\|\\mathrm{diag} f'(a_t)\\| \\, \\|W_{hh}\\|`,
    :math:`s_k \\le (\\gamma \\, \\sigma_{max}(W_{hh}))^k` with gamma = 1 for tanh and 1/4 for
    the sigmoid (Pascanu et al. 2013).

    Parameters
    ----------
    params, xs, h0, nonlinearity
        As for ``rnn_jacobians``.

    Returns
    -------
    ndarray, shape (T + 1, B)
        Entry [k, b] is s_k for sequence b.
    """
    jacobians = rnn_jacobians(params, xs, h0, nonlinearity)
    steps, batch, hidden, _ = jacobians.shape
    product = np.broadcast_to(np.eye(hidden, dtype=jacobians.dtype), (batch, hidden, hidden))
    norms = np.empty((steps + 1, batch))
    norms[0] = 1.0
    for k in range(1, steps + 1):
        product = product @ jacobians[steps - k]  # dh_T/dh_{T-k}
        norms[k] = np.linalg.norm(product, ord=2, axis=(1, 2))
    return norms


# --------------------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------------------


def _unpack(grads: Any) -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], Any]]:
    """Turn a dict, list, tuple or single array of gradients into a list, and back."""
    if isinstance(grads, Mapping):
        keys = list(grads)
        arrays = [_gradient_array(f"grads[{key!r}]", grads[key]) for key in keys]
        return [a for a, _ in arrays], lambda new: {
            key: back(value) for key, value, (_, back) in zip(keys, new, arrays, strict=True)
        }
    if isinstance(grads, Sequence) and not isinstance(grads, str):
        arrays = [_gradient_array(f"grads[{i}]", g) for i, g in enumerate(grads)]
        container = tuple if isinstance(grads, tuple) else list
        return [a for a, _ in arrays], lambda new: container(
            back(value) for value, (_, back) in zip(new, arrays, strict=True)
        )
    array, back = _gradient_array("grads", grads)
    return [array], lambda new: back(new[0])


def _gradient_array(name: str, value: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """A numpy view of one gradient and a function that turns a result back into its type."""
    if type(value).__module__.startswith("torch"):
        import torch

        if isinstance(value, torch.Tensor):
            device = value.device
            array = value.detach().cpu().numpy()
            check_float_array(name, array, finite=False)
            return array, lambda new: torch.from_numpy(new).to(device)
    check_float_array(name, value, finite=False)
    return value, lambda new: new


def clip_by_norm(grads: Any, max_norm: float,
                 norm_type: float = 2.0) -> tuple[Any, float]:
    """Clip gradients by their global norm (Pascanu et al. 2013, Algorithm 1).

    One norm is taken over all the arrays together, as if they were one long vector:
    :math:`\\|g\\| = \\|(\\|g_1\\|, \\|g_2\\|, \\ldots)\\|`. Every array is then multiplied by

    .. math::

        \\min\\left(1, \\frac{\\theta}{\\|g\\| + 10^{-6}}\\right)

    which is exactly ``torch.nn.utils.clip_grad_norm_`` (its 1e-6 included). Scaling all
    arrays by one number keeps the direction of the gradient. The inputs are not
    modified: new arrays are returned.

    Parameters
    ----------
    grads : dict, list or tuple of arrays, or one array
        numpy arrays (float32/float64) or torch tensors; the result has the same container
        and element types.
    max_norm : float
        The threshold theta, > 0.
    norm_type : float
        p of the p-norm (> 0), or ``float("inf")`` / ``np.inf`` for the largest absolute
        entry.

    Returns
    -------
    clipped : same type as ``grads``
    total_norm : float
        The global norm before clipping (what ``clip_grad_norm_`` returns).
    """
    max_norm = check_real("max_norm", max_norm, positive=True)
    norm_type = _check_norm_type(norm_type)
    arrays, pack = _unpack(grads)
    if not arrays:
        return pack([]), 0.0
    dtype = check_same_dtype({f"grads[{i}]": a for i, a in enumerate(arrays)})
    norms = np.array([np.linalg.norm(a.ravel(), ord=norm_type) for a in arrays], dtype=dtype)
    total_norm = np.linalg.norm(norms, ord=norm_type).astype(dtype)
    coefficient = np.minimum(dtype.type(max_norm) / (total_norm + dtype.type(1e-6)), 1)
    return pack([a * coefficient.astype(dtype) for a in arrays]), float(total_norm)


def clip_by_value(grads: Any, clip_value: float) -> tuple[Any, float]:
    """Clip every gradient entry to [-clip_value, clip_value] (``clip_grad_value_``).

    Elementwise clipping (as in Mikolov's RNN language models) changes the direction of
    the gradient: (3, 4) with clip_value 1 becomes (1, 1), while ``clip_by_norm`` gives
    (0.6, 0.8). The inputs are not modified: new arrays are returned.

    Parameters
    ----------
    grads : dict, list or tuple of arrays, or one array
        numpy arrays or torch tensors, as for ``clip_by_norm``.
    clip_value : float
        > 0.

    Returns
    -------
    clipped : same type as ``grads``
    total_norm : float
        The global 2-norm before clipping (as ``clip_by_norm`` reports it), for logging.
    """
    clip_value = check_real("clip_value", clip_value, positive=True)
    arrays, pack = _unpack(grads)
    if not arrays:
        return pack([]), 0.0
    dtype = check_same_dtype({f"grads[{i}]": a for i, a in enumerate(arrays)})
    norms = np.array([np.linalg.norm(a.ravel()) for a in arrays], dtype=dtype)
    total_norm = float(np.linalg.norm(norms))
    return pack([np.clip(a, -clip_value, clip_value) for a in arrays]), total_norm


def _check_norm_type(norm_type: Any) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, int | float | np.number):
        raise TypeError(f"norm_type must be a number or inf, got {describe(norm_type)}")
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    return norm_type


# --------------------------------------------------------------------------------------
# The gradient-norm curve of a vanilla RNN with a scaled orthogonal recurrent matrix
# --------------------------------------------------------------------------------------

DERIVATIVE_BOUNDS = {"tanh": 1.0, "sigmoid": 0.25, "linear": 1.0}
"""gamma, the largest value of f' for each activation: tanh'(0) = 1, sigma'(0) = 1/4."""

MAX_LOG = 700.0  # exp(700) ~ 1e304: the largest log-ratio turned back into a float


def derivative_bound(activation: str) -> float:
    """gamma = max f'(a) over all a: 1 for tanh and linear, 1/4 for the sigmoid."""
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    return DERIVATIVE_BOUNDS[activation]


def scaled_orthogonal(hidden_size: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix times ``scale``: every singular value equals ``scale``.

    Q comes from the QR decomposition of a standard Gaussian matrix, with the signs of R's
    diagonal moved into Q so that Q is uniformly distributed (Haar). For W = scale * Q the
    largest singular value and the spectral radius are both ``scale``, so Pascanu et
    al.'s bound is as tight as it can be for the linear part.

    Parameters
    ----------
    hidden_size : int
        H.
    scale : float
        ||W||_2, the largest singular value, >= 0.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (H, H), float64
    """
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    scale = check_real("scale", scale)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 (it is a singular value), got {scale}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {describe(rng)}")
    q, r = np.linalg.qr(rng.standard_normal((hidden_size, hidden_size)))
    return scale * q * np.sign(np.diag(r))


@dataclass(frozen=True)
class GradientNormCurve:
    """The measured ratio ||dL/dh_{T-k}|| / ||dL/dh_T|| for k = 0 .. T - 1, and its bound.

    Attributes
    ----------
    distance : ndarray, shape (T,)
        k = T - t, the number of steps the gradient has travelled back.
    log_ratio : ndarray, shape (T,)
        ln(||dL/dh_{T-k}|| / ||dL/dh_T||), exact even where the ratio itself would
        underflow or overflow a float.
    scale : float
        ||W_hh||_2, the spectral norm (largest singular value) of W_hh.
    activation : str
    gamma : float
        The bound on f' (``derivative_bound``).
    input_scale : float
        Standard deviation of the input drive of each unit.
    """

    distance: np.ndarray
    log_ratio: np.ndarray
    scale: float
    activation: str
    gamma: float
    input_scale: float

    @property
    def ratio(self) -> np.ndarray:
        """The ratio itself, exp(log_ratio), clipped to about [1e-304, 1e304]."""
        return np.exp(np.clip(self.log_ratio, -MAX_LOG, MAX_LOG))

    @property
    def bound_rate(self) -> float:
        """ln(gamma * ||W_hh||_2): the bound on the change of the log-norm per step."""
        product = self.gamma * self.scale
        return float(np.log(product)) if product > 0 else float("-inf")

    @property
    def log_bound(self) -> np.ndarray:
        """ln of the bound (gamma * ||W_hh||_2)^k at every distance k."""
        with np.errstate(invalid="ignore"):  # 0 * -inf at k = 0 when the scale is 0
            return np.where(self.distance == 0, 0.0, self.distance * self.bound_rate)

    @property
    def measured_rate(self) -> float:
        """The average change of the log-norm per step over the whole curve.

        log_ratio[-1] / (T - 1). Because every step multiplies the norm by at most
        gamma * ||W_hh||_2, this can never exceed ``bound_rate``.
        """
        return float(self.log_ratio[-1] / self.distance[-1])

    @property
    def step_rates(self) -> np.ndarray:
        """The change of the log-norm at each single step back, shape (T - 1,)."""
        return np.diff(self.log_ratio)


def gradient_norm_problem(scale: float, activation: str = "tanh", T: int = 60, *,
                          hidden_size: int = 32, input_scale: float = 1.0,
                          batch_size: int = 4,
                          seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """The network, inputs and final gradient that ``gradient_norm_curve`` measures.

    The network is h_t = f(W_ih x_t + W_hh h_{t-1}), h_0 = 0, no biases, with
    W_hh = scale * Q (``scaled_orthogonal``), W_ih Gaussian with variance 1/I (I = 4) and
    inputs x_t ~ N(0, input_scale^2), so each unit's input drive has standard deviation
    ``input_scale``. The loss looks only at the last state, L = <g, h_T>, with g a
    standard Gaussian (B, H) array, so dL/dh_T = g. All drawn from ``seed``.

    Parameters
    ----------
    scale, activation, T, hidden_size, input_scale, batch_size, seed
        As for ``gradient_norm_curve``.

    Returns
    -------
    params : dict
        ``weight_ih`` (H, 4), ``weight_hh`` (H, H), zero ``bias_ih`` and ``bias_hh`` (H,),
        float64.
    xs : ndarray, shape (T, B, 4)
    g : ndarray, shape (B, H)
        dL/dh_T.
    """
    scale = check_real("scale", scale)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 (it is a singular value), got {scale}")
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    T = check_int("T", T, minimum=2)
    if T > 1000:
        raise ValueError(f"T must be at most 1000, got {T}")
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    input_scale = check_real("input_scale", input_scale)
    if input_scale < 0:
        raise ValueError(f"input_scale must be >= 0, got {input_scale}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)

    rng = np.random.default_rng(seed)
    input_size = 4
    params = {
        "weight_ih": rng.standard_normal((hidden_size, input_size)) / np.sqrt(input_size),
        "weight_hh": scaled_orthogonal(hidden_size, scale, rng),
        "bias_ih": np.zeros(hidden_size),
        "bias_hh": np.zeros(hidden_size),
    }
    xs = input_scale * rng.standard_normal((T, batch_size, input_size))
    g = rng.standard_normal((batch_size, hidden_size))
    return params, xs, g


def gradient_log_norms(params: dict, xs: np.ndarray, g: np.ndarray,
                       activation: str = "tanh") -> np.ndarray:
    """ln(||dL/dh_{T-k}|| / ||dL/dh_T||) for k = 0 .. T - 1, for L = <g, h_T>.

    The gradient is carried back one step at a time by ``numpy_cells.rnn_step_backward``,

    .. math::

        \\frac{\\partial L}{\\partial h_{t-1}} = \\left(\\frac{\\partial L}{\\partial h_t}
        \\odot f'(a_t)\\right) W_{hh}

    and, to stay exact over hundreds of steps, renormalised after each step while the
    logarithms of the norms are summed: the result neither underflows nor overflows.

    Parameters
    ----------
    params : dict
        Vanilla RNN parameters (see ``numpy_cells``).
    xs : ndarray, shape (T, B, I)
    g : ndarray, shape (B, H)
        dL/dh_T, not all zero.
    activation : {"tanh", "sigmoid", "linear"}

    Returns
    -------
    ndarray, shape (T,)
        Entry k is the log-ratio at distance k (entry 0 is 0). The norm is taken over the
        whole (B, H) gradient. A gradient that becomes exactly 0 gives -inf from there on.
    """
    check_choice("activation", activation, DERIVATIVE_BOUNDS)
    # A linear network with a large scale may overflow in the forward pass; its
    # Jacobians do not depend on the states, so the gradient is still exact.
    with np.errstate(over="ignore", invalid="ignore"):
        hs, cache = cells.rnn_forward(xs, None, params, nonlinearity=activation)
    check_float_array("g", g, shape=hs[-1].shape, dims=("B", "H"), dtype=hs.dtype)
    if not np.any(g):
        raise ValueError("g must not be all zeros: the ratios would be undefined")
    T = xs.shape[0]
    log_ratio = np.zeros(T)
    dh = g / np.linalg.norm(g)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, T):  # carry dL/dh_{T-k+1} back through step T-k+1 to h_{T-k}
            _, dh, _ = cells.rnn_step_backward(dh, cache["steps"][T - k])
            norm = np.linalg.norm(dh)
            if norm == 0.0:
                log_ratio[k:] = -np.inf
                break
            log_ratio[k] = log_ratio[k - 1] + np.log(norm)
            dh = dh / norm
    return log_ratio


def gradient_norm_curve(scale: float, activation: str = "tanh", T: int = 60, *,
                        hidden_size: int = 32, input_scale: float = 1.0,
                        batch_size: int = 4, seed: int = 0) -> GradientNormCurve:
    """Measure how dL/dh_t shrinks or grows as it travels back through a vanilla RNN.

    A vanilla RNN with W_hh = scale * Q (all singular values equal to ``scale``) reads T
    random inputs; the loss looks only at the last state (``gradient_norm_problem``). The
    curve is ||dL/dh_{T-k}|| / ||dL/dh_T|| for k = 0 .. T - 1 (``gradient_log_norms``).
    Each step back multiplies the norm by at most gamma * scale (Pascanu et al. 2013),
    with gamma = max f' (``derivative_bound``).

    Parameters
    ----------
    scale : float
        ||W_hh||_2, the spectral norm of W_hh, >= 0.
    activation : {"tanh", "sigmoid", "linear"}
    T : int
        Sequence length, 2 .. 1000.
    hidden_size : int
        H.
    input_scale : float
        Standard deviation of each unit's input drive, >= 0 (large values saturate
        tanh and the sigmoid).
    batch_size : int
        B; the norm is taken over the whole (B, H) gradient.
    seed : int
        Seed of the weights, inputs and g: the same arguments give the same curve.

    Returns
    -------
    GradientNormCurve
    """
    params, xs, g = gradient_norm_problem(scale, activation, T, hidden_size=hidden_size,
                                          input_scale=input_scale, batch_size=batch_size,
                                          seed=seed)
    log_ratio = gradient_log_norms(params, xs, g, activation)
    return GradientNormCurve(distance=np.arange(T), log_ratio=log_ratio, scale=float(scale),
                             activation=activation, gamma=DERIVATIVE_BOUNDS[activation],
                             input_scale=float(input_scale))
