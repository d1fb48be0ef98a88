"""GRU conventions: three ways to write a GRU, PyTorch's, Cho et al.'s and Chung et al.'s.

"The GRU" names a family. The papers and the libraries agree on the two gates, a reset
gate r and an update gate z, and disagree on two details: which side of the interpolation
z weights, and whether r multiplies the previous state before or after the recurrent
matrix product. All three conventions here take the same parameters, in PyTorch's layout
(gate blocks r, z, n stacked in that order, H rows each)::

    weight_ih  (3H, I)    weight_hh  (3H, H)    bias_ih  (3H,)    bias_hh  (3H,)

and share the gates

.. math::

    r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \\qquad
    z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}).

and differ in the candidate n_t and the new state h_t (``*`` is the elementwise product):

``pytorch`` (``torch.nn.GRU``)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)),
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
``cho`` (Cho et al. 2014)
    n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn),
    h_t = z_t * h_{t-1} + (1 - z_t) * n_t
``chung`` (Chung et al. 2014)
    n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn),
    h_t = (1 - z_t) * h_{t-1} + z_t * n_t

PyTorch (``torch.nn.GRU``) applies the reset gate
*after* the product; Cho et al. 2014 and Chung et al. 2014 apply it *before*, and their
papers write no biases (the bias b_hn is added outside the reset gate here). In PyTorch's and
Cho's convention z_t keeps the old state; in Chung's it lets the candidate in.

Exact conversions: since sigma(-a) = 1 - sigma(a), negating the four z blocks (``W_iz``,
``W_hz``, ``b_iz``, ``b_hz``) turns z_t into 1 - z_t, which converts between two conventions
that differ only in the direction of z: Cho and Chung (``flip_update_gate``,
``convert_params``). The reset gate's placement cannot be converted in general: in PyTorch's
form unit j's candidate sees its own reset gate times a fixed row, r_j (W_hn h + b_hn)_j; in
Cho's it sees every unit's gate, sum_k (W_hn)_jk r_k h_k. ``best_fit`` measures how close the
best weights of one convention come to another.

Every step function has the signature of ``numpy_cells.gru_step``:
``step(x, h, params) -> (h_next, cache)`` with ``x`` (B, I), ``h`` (B, H), ``h_next`` (B, H);
the cache holds the gates ``"r"``, ``"z"`` and the candidate ``"n"`` (each (B, H)).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from . import numpy_cells
from ._validate import check_choice, check_int, describe
from .gates import GATE_ORDER, gate_rows

__all__ = [
    "CONVENTIONS",
    "RESET_PLACEMENT",
    "UPDATE_KEEPS_OLD_STATE",
    "gru_step_pytorch",
    "gru_step_cho",
    "gru_step_chung",
    "step_function",
    "gru_forward_convention",
    "flip_update_gate",
    "convert_params",
    "FitResult",
    "best_fit",
]

Params = Mapping[str, np.ndarray]

CONVENTIONS = ("pytorch", "cho", "chung")
"""The three GRU conventions (``torch.nn.GRU``, Cho et al. 2014, Chung et al. 2014)."""

RESET_PLACEMENT = {"pytorch": "after", "cho": "before", "chung": "before"}
"""Whether the reset gate multiplies the state before or after the product with W_hn."""

UPDATE_KEEPS_OLD_STATE = {"pytorch": True, "cho": True, "chung": False}
"""True where h_t = z_t * h_{t-1} + (1 - z_t) * n_t (z keeps the old state)."""


# --------------------------------------------------------------------------------------
# The three step functions
# --------------------------------------------------------------------------------------

gru_step_pytorch = numpy_cells.gru_step
"""PyTorch's convention is the library's GRU step, ``numpy_cells.gru_step``."""


def _gates(x: np.ndarray, h: np.ndarray, params: Params) -> tuple[np.ndarray, ...]:
    """r, z and the input part of the candidate, W_in x + b_in, each (B, H)."""
    hidden_size = h.shape[1]
    a_x = x @ params["weight_ih"].T + params["bias_ih"]
    a_h = h @ params["weight_hh"].T + params["bias_hh"]
    r_rows, z_rows, n_rows = (gate_rows("GRU", g, hidden_size) for g in GATE_ORDER["GRU"])
    r = numpy_cells.sigmoid(a_x[:, r_rows] + a_h[:, r_rows])
    z = numpy_cells.sigmoid(a_x[:, z_rows] + a_h[:, z_rows])
    return r, z, a_x[:, n_rows]


def _reset_before_step(x: np.ndarray, h: np.ndarray, params: Params,
                       convention: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Cho's and Chung's step: the reset gate multiplies h_{t-1} before W_hn."""
    numpy_cells._check_step_inputs("gru", x, {"h": h}, params)
    hidden_size = h.shape[1]
    r, z, ax_n = _gates(x, h, params)
    rows = gate_rows("GRU", "n", hidden_size)
    n = np.tanh(ax_n + (r * h) @ params["weight_hh"][rows].T + params["bias_hh"][rows])
    if UPDATE_KEEPS_OLD_STATE[convention]:
        h_next = z * h + (1 - z) * n
    else:
        h_next = (1 - z) * h + z * n
    cache = {"kind": f"gru_step_{convention}", "x": x, "h": h, "r": r, "z": z, "n": n,
             "h_next": h_next, "params": params}
    return h_next, cache


def gru_step_cho(x: np.ndarray, h: np.ndarray,
                 params: Params) -> tuple[np.ndarray, dict[str, Any]]:
    """One GRU step in the convention of Cho et al. 2014: reset before the product.

    .. math::

        n_t &= \\tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \\odot h_{t-1}) + b_{hn}) \\\\
        h_t &= z_t \\odot h_{t-1} + (1 - z_t) \\odot n_t

    with r_t and z_t as in ``torch.nn.GRU``. The paper writes no biases; b_hn is added
    outside the reset gate.

    Parameters
    ----------
    x : ndarray, shape (B, I)
    h : ndarray, shape (B, H)
        h_{t-1}.
    params : dict
        ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,), ``bias_hh`` (3H,),
        blocks r, z, n.

    Returns
    -------
    h_next : ndarray, shape (B, H)
    cache : dict
        ``x``, ``h``, ``r``, ``z``, ``n``, ``h_next``, ``params`` and ``kind`` =
        ``"gru_step_cho"``.
    """
    return _reset_before_step(x, h, params, "cho")


def gru_step_chung(x: np.ndarray, h: np.ndarray,
                   params: Params) -> tuple[np.ndarray, dict[str, Any]]:
    """One GRU step in the convention of Chung et al. 2014: z flipped, reset before.

    .. math::

        n_t &= \\tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \\odot h_{t-1}) + b_{hn}) \\\\
        h_t &= (1 - z_t) \\odot h_{t-1} + z_t \\odot n_t

    Chung et al. place the reset gate as Cho et al. do, before the product with W_hn; only
    the role of z is flipped (z_t lets the candidate in). So ``flip_update_gate`` converts
    between this convention and Cho's exactly, but not to PyTorch's.

    Parameters
    ----------
    x : ndarray, shape (B, I)
    h : ndarray, shape (B, H)
        h_{t-1}.
    params : dict
        As for ``gru_step_cho``.

    Returns
    -------
    h_next : ndarray, shape (B, H)
    cache : dict
        As for ``gru_step_cho``, with ``kind`` = ``"gru_step_chung"``.
    """
    return _reset_before_step(x, h, params, "chung")


_STEPS: dict[str, Callable] = {"pytorch": gru_step_pytorch, "cho": gru_step_cho,
                               "chung": gru_step_chung}


def step_function(convention: str) -> Callable:
    """The step function of ``convention``: ``gru_step_pytorch``, ``_cho`` or ``_chung``."""
    check_choice("convention", convention, CONVENTIONS)
    return _STEPS[convention]


def gru_forward_convention(xs: np.ndarray, h0: np.ndarray | None, params: Params,
                           convention: str = "pytorch") -> np.ndarray:
    """Run a GRU of the given convention over a sequence.

    Parameters
    ----------
    xs : ndarray, shape (T, B, I)
    h0 : ndarray, shape (B, H), or None
        Initial state; ``None`` means zeros.
    params : dict
        GRU parameters (blocks r, z, n).
    convention : {"pytorch", "cho", "chung"}

    Returns
    -------
    hs : ndarray, shape (T, B, H)
        ``hs[t]`` is the state after reading ``xs[t]``.
    """
    step = step_function(convention)
    batch, hidden_size, dtype = numpy_cells._check_sequence_inputs("gru", xs, params)
    h = numpy_cells._check_state("h0", h0, batch, hidden_size, dtype)
    hs = np.empty((xs.shape[0], batch, hidden_size), dtype=dtype)
    for t in range(xs.shape[0]):
        h, _ = step(xs[t], h, params)
        hs[t] = h
    return hs


# --------------------------------------------------------------------------------------
# Converting between conventions
# --------------------------------------------------------------------------------------


def _check_gru_params(params: Any) -> int:
    """Check GRU params; return H."""
    _, hidden_size, _ = numpy_cells._check_params(params, "gru")
    return hidden_size


def flip_update_gate(params: Params) -> dict[str, np.ndarray]:
    """New parameters whose update gate is 1 - z: the z blocks of all four arrays negated.

    .. math::

        \\sigma(-(W_{iz} x + b_{iz} + W_{hz} h + b_{hz})) = 1 - z

    because sigma(-a) = 1 - sigma(a) exactly. Applied twice it gives the parameters back.

    Parameters
    ----------
    params : dict
        GRU parameters (blocks r, z, n).

    Returns
    -------
    dict
        Copies of the four arrays, with rows H to 2H (the z block) negated.
    """
    rows = gate_rows("GRU", "z", _check_gru_params(params))
    flipped = {name: np.array(params[name]) for name in numpy_cells.PARAM_NAMES}
    for name in numpy_cells.PARAM_NAMES:
        flipped[name][rows] = -flipped[name][rows]
    return flipped


def convert_params(params: Params, source: str, target: str) -> dict[str, np.ndarray]:
    """Parameters for ``target`` that compute exactly the function ``params`` compute in ``source``.

    An exact conversion exists when the two conventions place the reset gate alike: then
    they differ at most in the direction of z, which ``flip_update_gate`` reverses. That is
    Cho <-> Chung (and any convention to itself, a copy).

    Parameters
    ----------
    params : dict
        GRU parameters, read in convention ``source``.
    source, target : {"pytorch", "cho", "chung"}

    Returns
    -------
    dict
        New arrays; ``step_function(target)`` with them equals ``step_function(source)`` with
        ``params`` for every input and state, up to rounding.

    Raises
    ------
    ValueError
        When the reset gate sits before the product in one convention and after it in the
        other (PyTorch <-> Cho or Chung): no weights make these equal in general.
        ``best_fit`` finds the closest ones.
    """
    check_choice("source", source, CONVENTIONS)
    check_choice("target", target, CONVENTIONS)
    _check_gru_params(params)
    if RESET_PLACEMENT[source] != RESET_PLACEMENT[target]:
        raise ValueError(
            f"no exact conversion from source={source!r} (reset {RESET_PLACEMENT[source]} the "
            f"product with W_hn) to target={target!r} (reset {RESET_PLACEMENT[target]} it): "
            "r * (W_hn h) and W_hn (r * h) differ for general weights; use best_fit for the "
            "closest approximation"
        )
    if UPDATE_KEEPS_OLD_STATE[source] != UPDATE_KEEPS_OLD_STATE[target]:
        return flip_update_gate(params)
    return {name: np.array(params[name]) for name in numpy_cells.PARAM_NAMES}


# --------------------------------------------------------------------------------------
# The closest weights when no exact conversion exists
# --------------------------------------------------------------------------------------


class FitResult(NamedTuple):
    """What ``best_fit`` found: the fitted weights and the errors before and after."""

    #: The fitted parameters for the target convention (float64 numpy arrays).
    params: dict[str, np.ndarray]
    #: Root-mean-square difference between the two steps on the held-out samples before
    #: fitting (the target convention with the starting weights).
    start_rms: float
    #: The same after fitting.
    rms: float
    #: Largest absolute difference on the held-out samples after fitting.
    max_error: float


def _torch_step(convention: str, x: Any, h: Any, weights: Mapping[str, Any]) -> Any:
    """The step of ``convention`` in torch (float64), for fitting by autograd."""
    import torch

    a_x = x @ weights["weight_ih"].T + weights["bias_ih"]
    w_r, w_z, w_n = weights["weight_hh"].chunk(3)
    b_r, b_z, b_n = weights["bias_hh"].chunk(3)
    ax_r, ax_z, ax_n = a_x.chunk(3, dim=1)
    r = torch.sigmoid(ax_r + h @ w_r.T + b_r)
    z = torch.sigmoid(ax_z + h @ w_z.T + b_z)
    if RESET_PLACEMENT[convention] == "after":
        n = torch.tanh(ax_n + r * (h @ w_n.T + b_n))
    else:
        n = torch.tanh(ax_n + (r * h) @ w_n.T + b_n)
    if UPDATE_KEEPS_OLD_STATE[convention]:
        return z * h + (1 - z) * n
    return (1 - z) * h + z * n


def _samples(rng: np.random.Generator, count: int, input_size: int,
             hidden_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs x ~ N(0, 1) and states h ~ U(-1, 1), the range of a GRU's states."""
    return (rng.normal(size=(count, input_size)),
            rng.uniform(-1.0, 1.0, size=(count, hidden_size)))


def best_fit(params: Params, source: str, target: str, rng: np.random.Generator, *,
             start: Params | None = None, samples: int = 300,
             iterations: int = 50) -> FitResult:
    """The weights of convention ``target`` that come closest to ``params`` in ``source``.

    Draws ``samples`` pairs (x, h) with x ~ N(0, 1) and h ~ U(-1, 1), computes the source
    step h' on them, and minimises the sum of squared differences
    sum ||step_target(x, h; theta) - h'||^2 over the target's parameters theta by
    Levenberg-Marquardt: each iteration solves (J^T J + lambda I) delta = -J^T e for the
    residuals e and their Jacobian J (from ``torch.func.jacfwd``, float64), keeps the step
    if it lowers the loss (and divides lambda by 3), else multiplies lambda by 3. Near an
    exact solution this converges quadratically, so when an exact conversion exists the
    error falls to rounding level; when none does it stalls well above it. The errors are
    measured on ``samples`` fresh pairs.

    Parameters
    ----------
    params : dict
        GRU parameters, read in convention ``source``.
    source, target : {"pytorch", "cho", "chung"}
    rng : numpy.random.Generator
        Draws the training and held-out samples.
    start : dict, optional
        Where the fit starts. By default the exact part of a conversion: ``params``, with z
        flipped (``flip_update_gate``) when the two conventions use z in opposite directions.
    samples : int
        Number of (x, h) pairs to fit on, and to test on.
    iterations : int
        Levenberg-Marquardt iterations (each one a Jacobian and a linear solve).

    Returns
    -------
    FitResult
        ``params`` (fitted), ``start_rms``, ``rms`` and ``max_error``.
    """
    import torch

    check_choice("source", source, CONVENTIONS)
    check_choice("target", target, CONVENTIONS)
    hidden_size = _check_gru_params(params)
    input_size = params["weight_ih"].shape[1]
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {describe(rng)}")
    samples = check_int("samples", samples, minimum=1)
    iterations = check_int("iterations", iterations, minimum=1)
    if start is None:
        start = params
        if UPDATE_KEEPS_OLD_STATE[source] != UPDATE_KEEPS_OLD_STATE[target]:
            start = flip_update_gate(params)
    elif (_check_gru_params(start) != hidden_size
          or start["weight_ih"].shape[1] != input_size):
        raise ValueError(
            f"start must have the shapes of params (H = {hidden_size}, I = {input_size}), got "
            f"weight_ih {start['weight_ih'].shape} and weight_hh {start['weight_hh'].shape}")
    as64 = {name: np.asarray(params[name], dtype=np.float64) for name in numpy_cells.PARAM_NAMES}
    source_step = step_function(source)

    def data() -> tuple[Any, Any, Any]:
        x, h = _samples(rng, samples, input_size, hidden_size)
        h_next, _ = source_step(x, h, as64)
        return torch.from_numpy(x), torch.from_numpy(h), torch.from_numpy(h_next)

    train, test = data(), data()
    names = numpy_cells.PARAM_NAMES
    shapes = [np.shape(start[name]) for name in names]
    sizes = [int(np.prod(shape)) for shape in shapes]

    def unflatten(theta: Any) -> dict[str, Any]:
        pieces = torch.split(theta, sizes)
        return {name: piece.reshape(shape)
                for name, piece, shape in zip(names, pieces, shapes, strict=True)}

    def residuals(theta: Any, batch: tuple[Any, Any, Any]) -> Any:
        x, h, h_next = batch
        return (_torch_step(target, x, h, unflatten(theta)) - h_next).reshape(-1)

    theta = torch.from_numpy(np.concatenate(
        [np.asarray(start[name], dtype=np.float64).ravel() for name in names]))
    start_errors = residuals(theta, test)
    error = residuals(theta, train)
    loss = float(error @ error)
    damping = 1e-3
    for _ in range(iterations):
        with warnings.catch_warnings():
            # torch's forward mode registers its decompositions with torch.jit.script on
            # first use, which torch itself reports as deprecated; nothing for us to change.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script",
                                    category=DeprecationWarning)
            jacobian = torch.func.jacfwd(lambda t: residuals(t, train))(theta)
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ error
        while damping < 1e12:
            step = torch.linalg.solve(normal + damping * torch.eye(len(theta),
                                                                   dtype=theta.dtype),
                                      -gradient)
            trial_error = residuals(theta + step, train)
            trial_loss = float(trial_error @ trial_error)
            if trial_loss < loss:
                theta, error, loss = theta + step, trial_error, trial_loss
                damping = max(damping / 3, 1e-12)
                break
            damping *= 3
        else:
            break  # no step lowers the loss: a minimum, to rounding
    test_errors = residuals(theta, test)
    fitted = {name: value.numpy().copy() for name, value in unflatten(theta).items()}
    return FitResult(params=fitted,
                     start_rms=float(start_errors.pow(2).mean().sqrt()),
                     rms=float(test_errors.pow(2).mean().sqrt()),
                     max_error=float(test_errors.abs().max()))
