"""Assignment checks: run a student's function on hidden inputs and explain what is wrong.

Each ``check_...`` function takes the student's implementation, calls it on inputs it
generates from a private seed (so the student never sees them), and compares every output
with the book's reference in float64 (``numpy_cells``, ``gradients``, ``timeseries``).
Backward passes are also compared with centred finite differences of the forward pass.

- On success a check prints one line saying what was verified and returns ``None``.
- On a wrong answer it raises ``CheckFailed`` (an ``AssertionError``) whose message names
  the output that is wrong (``h_next``, ``c_next``, ``dx``, ``grads['weight_hh']``, ...),
  gives its relative error, and, when the student's numbers are exactly what a known
  mistake produces (gates in the wrong order, a missing forget gate, tanh' taken from the
  pre-activation, clipping each array separately, ...), says which mistake that is.
- When the function returns ``None``, the wrong number of values, arrays of the wrong
  shape or dtype, or raises (``NotImplementedError`` from an unfinished stub included), the
  message says so and points at the last line of the student's own code that ran.

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

The checks run on the student's machine: they are feedback, not proctoring.
"""

from __future__ import annotations

import copy
import functools
import sysconfig
import traceback
from collections.abc import Callable, Mapping
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np

from . import numpy_cells as cells
from ._validate import check_float_array, describe
from .gradients import clip_by_norm, numeric_gradient, rel_error
from .numpy_cells import PARAM_NAMES, sigmoid

__all__ = [
    "CheckFailed",
    "CACHE_KEYS",
    "PEEPHOLE_NAMES",
    "lstm_peephole_step",
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
]

TOLERANCE = 1e-7
"""Largest relative error accepted against the float64 reference."""

FD_TOLERANCE = 1e-5
"""Largest relative error accepted against centred finite differences (step 1e-5)."""

HINT_TOLERANCE = 1e-6
"""A known mistake explains a wrong answer when it reproduces it to this relative error."""

_SEED = 8_271_946  # private: the hidden cases depend on it
_CASES = ((2, 3, 4), (3, 5, 2), (1, 4, 3))  # (B, I, H) of the hidden cases
_FD_STEP = 1e-5

CACHE_KEYS = {
    "rnn_step": ("kind", "x", "h", "a", "h_next", "params", "nonlinearity"),
    "lstm_step": ("kind", "x", "h", "c", "i", "f", "g", "o", "tanh_c", "h_next", "params"),
    "gru_step": ("kind", "x", "h", "r", "z", "n", "ah_n", "h_next", "params"),
    "rnn_forward": ("kind", "steps"),
}
"""The keys of the reference caches that backward functions receive (see above)."""

PEEPHOLE_NAMES = ("peephole_i", "peephole_f", "peephole_o")
"""The extra parameters of the peephole LSTM, each of shape (H,)."""

_GRAD_SYMBOLS = {"weight_ih": "dL/dW_ih", "weight_hh": "dL/dW_hh", "bias_ih": "dL/db_ih",
                 "bias_hh": "dL/db_hh"}


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says which output and, if known, why."""


# --------------------------------------------------------------------------------------
# Calling the student's code and reading what it returns
# --------------------------------------------------------------------------------------


def _public(check: Callable) -> Callable:
    """Re-raise a failure from the check's own frame, without the checker's internals."""

    @functools.wraps(check)
    def run_check(*args: Any, **kwargs: Any) -> None:
        try:
            check(*args, **kwargs)
        except CheckFailed as failure:
            message = str(failure)
        else:
            return None
        raise CheckFailed(message) from None

    return run_check


def _require_callable(check: str, fn: Any, role: str) -> None:
    if not callable(fn):
        raise TypeError(f"{check} needs your function {role} (the function itself, not its "
                        f"result), got {describe(fn)}")


def _library_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                      "platlib")}
    paths.add(str(Path(__file__).resolve().parent))
    return tuple(str(Path(p).resolve()) for p in paths)


def _where(error: BaseException) -> str:
    """The last frame of the traceback that lies in the student's code, as one line."""
    frames = traceback.extract_tb(error.__traceback__)[1:]  # drop the checker's own call
    libraries = _library_paths()
    own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(libraries)]
    frame = (own or frames or [None])[-1]
    if frame is None:
        return ""
    if "ipykernel_" in frame.filename or frame.filename.startswith("<"):
        place = "your notebook cell"
    else:
        place = Path(frame.filename).name
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"\n  at line {frame.lineno} of {place}, in {frame.name}{code}"


def _call(check: str, role: str, fn: Callable, *args: Any) -> Any:
    """Call the student's ``fn``; turn any exception into a ``CheckFailed`` that explains it."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        detail = f" ({error})" if str(error) else ""
        raise CheckFailed(
            f"{check}: {role} is not implemented yet: it raised NotImplementedError{detail}. "
            f"Replace the stub with your code, run that cell, then run this check again."
        ) from None
    except Exception as error:  # noqa: BLE001  (any error in the student's code is reported)
        raise CheckFailed(
            f"{check}: your {role} raised {type(error).__name__}: {error}{_where(error)}"
        ) from None


def _describe(value: Any) -> str:
    """What a returned value is, without printing its (hidden) numbers."""
    if isinstance(value, Mapping):
        return f"a dict with the keys {list(value)}"
    if isinstance(value, (np.ndarray, list, tuple)) or hasattr(value, "shape"):
        return describe(value)
    return f"a value of type {type(value).__name__}"


def _unpack(check: str, role: str, result: Any, names: tuple[str, ...],
            optional_last: bool = False) -> tuple:
    """Check that ``result`` is a tuple of ``len(names)`` values and return it."""
    signature = ", ".join(names)
    counts = (len(names) - 1, len(names)) if optional_last else (len(names),)
    if result is None:
        raise CheckFailed(f"{check}: your {role} returned None; it must return ({signature}). "
                          "Is the return statement missing?")
    if len(names) == 1:
        return (result,)
    if not isinstance(result, (tuple, list)):
        raise CheckFailed(f"{check}: your {role} returned {_describe(result)}; it must return "
                          f"a tuple ({signature})")
    if len(result) not in counts:
        raise CheckFailed(f"{check}: your {role} returned {len(result)} values; it must return "
                          f"{len(names)}: ({signature})")
    return tuple(result)


def _shape_hint(shape: tuple[int, ...], expected: tuple[int, ...], hidden: int) -> str:
    if len(shape) == 2 and shape == expected[::-1]:
        return " (it looks transposed)"
    if len(expected) == 1 and len(shape) == 2 and shape[1] == expected[0]:
        return " (sum over the batch axis: a bias gradient has one entry per row of the weights)"
    if len(expected) == 1 and len(shape) == 2 and shape == (1, expected[0]):
        return " (drop the batch axis: use .sum(axis=0) without keepdims)"
    if (len(shape) == 2 and len(expected) == 2 and shape[0] == expected[0]
            and shape[1] % hidden == 0 and shape[1] // hidden in (3, 4)
            and expected[1] == hidden):
        return (f" (it has {shape[1] // hidden} blocks of H = {hidden} columns: the stacked gate "
                "pre-activations rather than one state)")
    return ""


def _array(check: str, role: str, name: str, value: Any, expected: np.ndarray,
           hidden: int) -> np.ndarray:
    """Check that an output is a finite float64 array shaped like ``expected``."""
    where = f"{check}: {name} returned by your {role}"
    if value is None:
        raise CheckFailed(f"{where} is None; it must be a numpy array of shape "
                          f"{expected.shape}")
    if type(value).__module__.startswith("torch"):
        raise CheckFailed(f"{where} is a torch tensor; compute it with numpy (or convert it "
                          "with .detach().numpy())")
    if not isinstance(value, np.ndarray):
        raise CheckFailed(f"{where} is {_describe(value)}; it must be a numpy array of shape "
                          f"{expected.shape}")
    if value.shape != expected.shape:
        raise CheckFailed(f"{where} has shape {value.shape}, expected {expected.shape}"
                          f"{_shape_hint(value.shape, expected.shape, hidden)}")
    if not np.issubdtype(value.dtype, np.floating):
        raise CheckFailed(f"{where} has dtype {value.dtype}; it must be float64 like the inputs")
    if value.dtype != expected.dtype:
        raise CheckFailed(f"{where} has dtype {value.dtype}, expected {expected.dtype} like the "
                          "inputs: do not cast (no .astype or dtype= arguments)")
    if not np.isfinite(value).all():
        raise CheckFailed(f"{where} contains NaN or infinite entries (an overflow, or a "
                          "division by zero?)")
    return value


def _grads(check: str, role: str, value: Any, expected: Mapping[str, np.ndarray],
           hidden: int) -> dict[str, np.ndarray]:
    """Check a dict of parameter gradients against the expected keys and shapes."""
    keys = list(expected)
    if not isinstance(value, Mapping):
        raise CheckFailed(f"{check}: grads returned by your {role} is {_describe(value)}; it "
                          f"must be a dict with the keys {keys}")
    if set(value) != set(keys):
        missing = [k for k in keys if k not in value]
        extra = sorted(str(k) for k in value if k not in expected)
        raise CheckFailed(f"{check}: grads returned by your {role} must have exactly the keys "
                          f"{keys} (the names of the parameters); missing {missing}, "
                          f"unexpected {extra}")
    return {key: _array(check, role, f"grads[{key!r}]", value[key], expected[key], hidden)
            for key in keys}


def _flatten(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{"dx": a, "grads": {...}} -> {"dx": a, "grads['weight_ih']": ...}."""
    flat = {}
    for name, value in outputs.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}[{key!r}]": np.asarray(v) for key, v in value.items()})
        else:
            flat[name] = np.asarray(value)
    return flat


def _label(name: str) -> str:
    for key, symbol in _GRAD_SYMBOLS.items():
        if name == f"grads[{key!r}]":
            return f"{name} ({symbol})"
    return name


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _compare(check: str, case: str, student: Mapping[str, Any], reference: Mapping[str, Any],
             mistakes: list[tuple[str, Callable[[], Mapping[str, Any]]]],
             against: str = "the reference", tolerance: float = TOLERANCE) -> float:
    """Compare every output; on a mismatch raise with the first known mistake that fits."""
    student, reference = _flatten(student), _flatten(reference)
    errors = {name: rel_error(student[name], reference[name]) for name in reference}
    wrong = [name for name, error in errors.items() if error > tolerance]
    if not wrong:
        return max(errors.values())
    first = wrong[0]
    message = (f"{check}: {_label(first)} is wrong on {case}: relative error "
               f"{errors[first]:.1e} against {against} (at most {tolerance:.0e} allowed).")
    if len(wrong) > 1:
        message += f" Also wrong: {_join([_label(n) for n in wrong[1:]])}."
    else:
        right = [n for n in reference if n != first]
        if right:
            message += f" The other outputs ({_join(right)}) are right."
    for hint, produce in mistakes:
        candidate = _flatten(produce())
        if all(rel_error(student[name], candidate[name]) <= HINT_TOLERANCE for name in reference):
            message += f"\nHint: {hint}"
            break
    raise CheckFailed(message)


def _case_label(index: int, total: int, **sizes: int) -> str:
    dims = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return f"hidden case {index + 1} of {total} ({dims})"


def _passed(check: str, what: str, cases: int, error: float,
            fd_error: float | None = None) -> None:
    """Print the one line that says what was verified."""
    verb = "match" if " and " in what else "matches"
    if fd_error is None:
        print(f"{check}: {what} {verb} the reference on {cases} hidden cases "
              f"(max relative error {error:.1e}).")
    else:
        print(f"{check}: {what} {verb} the reference and centred finite differences on {cases} "
              f"hidden cases (max relative error {error:.1e} against the reference, "
              f"{fd_error:.1e} against finite differences).")


# --------------------------------------------------------------------------------------
# Hidden inputs
# --------------------------------------------------------------------------------------


def _rng(check: str, index: int) -> np.random.Generator:
    return np.random.default_rng([_SEED, sum(map(ord, check)), index])


def _params(rng: np.random.Generator, gates: int, input_size: int,
            hidden: int) -> dict[str, np.ndarray]:
    """Parameters drawn from U(-1, 1): pre-activations of order 1, far from saturation."""
    shapes = {"weight_ih": (gates * hidden, input_size), "weight_hh": (gates * hidden, hidden),
              "bias_ih": (gates * hidden,), "bias_hh": (gates * hidden,)}
    return {name: rng.uniform(-1, 1, size=shape) for name, shape in shapes.items()}


def _step_case(check: str, index: int, gates: int) -> dict[str, Any]:
    batch, input_size, hidden = _CASES[index]
    rng = _rng(check, index)
    case = {"params": _params(rng, gates, input_size, hidden),
            "x": rng.standard_normal((batch, input_size)),
            "h": rng.uniform(-0.9, 0.9, size=(batch, hidden)),
            "c": rng.standard_normal((batch, hidden)),
            "dh_next": rng.standard_normal((batch, hidden)),
            "dc_next": rng.standard_normal((batch, hidden))}
    case["label"] = _case_label(index, len(_CASES), B=batch, I=input_size, H=hidden)
    return case


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
              "with t = tanh(a) stored in the cache, tanh'(a) = 1 - t^2.",
    "nosquare": "tanh' is computed as 1 - t; it is 1 - t^2 (with t = tanh(a)).",
    "sigmoid": "tanh' is computed with the sigmoid's formula t (1 - t); tanh'(a) = 1 - t^2.",
}
_SIGMOID_PRIME_HINTS = {
    "double": "sigma' is computed as sigma(s)(1 - sigma(s)) of a gate value s that is already "
              "sigma(a): sigma'(a) = s (1 - s).",
    "tanh": "sigma' is computed with tanh's formula 1 - s^2; sigma'(a) = s (1 - s).",
}


def _drop(params: Mapping[str, np.ndarray], *names: str) -> dict[str, np.ndarray]:
    return {k: (np.zeros_like(v) if k in names else v) for k, v in params.items()}


_BIAS_HINTS = {
    ("bias_hh",): "bias_hh is missing: PyTorch adds two biases, "
                  "W_ih x + b_ih + W_hh h + b_hh.",
    ("bias_ih",): "bias_ih is missing: PyTorch adds two biases, "
                  "W_ih x + b_ih + W_hh h + b_hh.",
    ("bias_ih", "bias_hh"): "both biases are missing: the pre-activation is "
                            "W_ih x + b_ih + W_hh h + b_hh.",
}


# Vanilla RNN ---------------------------------------------------------------------------


def _rnn_variant(x, h, p, *, act=np.tanh, transpose_hh=True):
    w_hh = p["weight_hh"].T if transpose_hh else p["weight_hh"]
    return {"h_next": act(x @ p["weight_ih"].T + p["bias_ih"] + h @ w_hh + p["bias_hh"])}


def _rnn_step_mistakes(x, h, p):
    out = [
        ("the nonlinearity is the sigmoid; the book's RNN (torch.nn.RNNCell) uses tanh.",
         lambda: _rnn_variant(x, h, p, act=sigmoid)),
        ("the nonlinearity is ReLU; the book's RNN uses tanh.",
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

    out = [("tanh' is computed from the pre-activation a as 1 - a^2; it is 1 - tanh(a)^2 = "
            "1 - h_next^2 (cache['h_next']).", variant(prime="pre")),
           ("the derivative of tanh is missing: da = dh_next * (1 - h_next^2).",
            variant(prime="none"))]
    out += [(hint, variant(prime=mode)) for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [("grads['weight_hh'] is transposed: dW_hh = da.T @ h has the shape and layout "
             "of weight_hh (out, in).", variant(transpose_dw=True)),
            ("dh uses weight_hh transposed: the gradient flows back through W_hh, so "
             "dh = da @ weight_hh.", variant(dh_transposed=True))]
    return out


# LSTM ----------------------------------------------------------------------------------


def _lstm_variant(x, h, c, p, *, order=(0, 1, 2, 3), forget=True, gate=sigmoid, cand=np.tanh,
                  out=np.tanh, old_cell=False, peephole=None, peep_old_o=False):
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    blocks = np.split(a, 4, axis=1)
    a_i, a_f, a_g, a_o = (blocks[k] for k in order)
    if peephole is not None:
        a_i, a_f = a_i + peephole["peephole_i"] * c, a_f + peephole["peephole_f"] * c
    i, f, g = gate(a_i), gate(a_f), cand(a_g)
    c_next = (f * c if forget else 0) + i * g
    if peephole is not None:
        a_o = a_o + peephole["peephole_o"] * (c if peep_old_o else c_next)
    o = gate(a_o)
    return {"h_next": o * out(c if old_cell else c_next), "c_next": c_next}


def _lstm_forward_mistakes(x, h, c, p, peephole=None):
    def variant(params=p, **kw):
        return lambda: _lstm_variant(x, h, c, params, peephole=peephole, **kw)

    out = [(f"{hint}", variant(order=order))
           for order, hint in _block_order_hints("ifgo", "code reads the four gate blocks")]
    out += [
        ("the forget gate is missing: c_next = f * c + i * g (without f * c the cell forgets "
         "everything at every step).", variant(forget=False)),
        ("sigmoid and tanh are swapped: the gates i, f, o use the sigmoid and the candidate g "
         "uses tanh.", variant(gate=np.tanh, cand=sigmoid)),
        ("the candidate g uses the sigmoid; it uses tanh, so that it can be negative.",
         variant(cand=sigmoid)),
        ("the gates i, f, o use tanh; gates use the sigmoid, so that they lie in (0, 1).",
         variant(gate=np.tanh)),
        ("h_next uses sigmoid(c_next); it is o * tanh(c_next).",
         variant(out=sigmoid)),
        ("h_next = o * c_next is missing the tanh: h_next = o * tanh(c_next).",
         variant(out=lambda v: v)),
        ("h_next uses the old cell state c; it uses the new one: h_next = o * tanh(c_next).",
         variant(old_cell=True)),
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
        ("the path through h_next is missing from dc: dc = dc_next + dh_next * o * "
         "(1 - tanh(c_next)^2).", variant(h_path=False)),
        ("the returned dc is missing the forget gate: the gradient for c_{t-1} is dc * f.",
         variant(times_f=False)),
    ]
    out += [(f"for the candidate g, {hint}", variant(g_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for tanh(c_next), {hint}", variant(c_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for the gates, {hint}", variant(s_prime=mode))
            for mode, hint in _SIGMOID_PRIME_HINTS.items()]
    return out


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
        ("sigmoid and tanh are swapped: r and z use the sigmoid, the candidate n uses tanh.",
         variant(gate=np.tanh, cand=sigmoid)),
        ("the candidate n uses the sigmoid; it uses tanh.", variant(cand=sigmoid)),
        ("the gates r and z use tanh; gates use the sigmoid.", variant(gate=np.tanh)),
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
         "so dh includes dh_next * z.", variant(direct=False)),
    ]
    out += [(f"for the candidate n, {hint}", variant(n_prime=mode))
            for mode, hint in _TANH_PRIME_HINTS.items()]
    out += [(f"for the gates, {hint}", variant(s_prime=mode))
            for mode, hint in _SIGMOID_PRIME_HINTS.items()]
    return out


# --------------------------------------------------------------------------------------
# Forward step checks
# --------------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


def _run_forward(check: str, role: str, fn: Callable, args: tuple, names: tuple[str, ...],
                 reference: Mapping[str, np.ndarray], hidden: int,
                 optional_last: bool = False) -> tuple[dict[str, np.ndarray], Any]:
    """Call a student's step function; return its checked arrays (by name) and its cache."""
    result = _unpack(check, role, _call(check, role, fn, *_copy(args)),
                     names, optional_last=optional_last)
    arrays = {name: _array(check, role, name, value, reference[name], hidden)
              for name, value in zip(names, result, strict=False) if name in reference}
    cache = result[len(reference)] if len(result) > len(reference) else None
    return arrays, cache


@_public
def check_rnn_step(rnn_step: Callable) -> None:
    """Check ``rnn_step(x, h, params) -> (h_next, cache)``, the tanh RNN step.

    h_next = tanh(W_ih x + b_ih + W_hh h + b_hh), with x (B, I), h (B, H), ``params`` as
    in ``numpy_cells.rnn_step``. The cache is not inspected (any value is accepted).

    Raises
    ------
    CheckFailed
        When ``h_next`` is wrong, or the function fails or returns the wrong things.
    """
    check = "check_rnn_step"
    _require_callable(check, rnn_step, "rnn_step")
    worst = 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=1)
        x, h, p = case["x"], case["h"], case["params"]
        reference = {"h_next": cells.rnn_step(x, h, p)[0]}
        student, _ = _run_forward(check, "rnn_step", rnn_step, (x, h, p), ("h_next", "cache"),
                                  reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _rnn_step_mistakes(x, h, p)))
    _passed(check, "h_next", len(_CASES), worst)


@_public
def check_lstm_step(lstm_step: Callable) -> None:
    """Check ``lstm_step(x, h, c, params) -> (h_next, c_next, cache)``.

    The LSTM of ``numpy_cells.lstm_step`` (``torch.nn.LSTMCell``): gate blocks stacked
    i, f, g, o; c_next = f * c + i * g; h_next = o * tanh(c_next). The cache is not
    inspected.

    Raises
    ------
    CheckFailed
        When ``h_next`` or ``c_next`` is wrong, or the function fails or returns the wrong
        things.
    """
    check = "check_lstm_step"
    _require_callable(check, lstm_step, "lstm_step")
    worst = 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=4)
        x, h, c, p = case["x"], case["h"], case["c"], case["params"]
        h_next, c_next, _ = cells.lstm_step(x, h, c, p)
        reference = {"h_next": h_next, "c_next": c_next}
        student, _ = _run_forward(check, "lstm_step", lstm_step, (x, h, c, p),
                                  ("h_next", "c_next", "cache"), reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _lstm_forward_mistakes(x, h, c, p)))
    _passed(check, "h_next and c_next", len(_CASES), worst)


@_public
def check_gru_step(gru_step: Callable) -> None:
    """Check ``gru_step(x, h, params) -> (h_next, cache)`` in PyTorch's convention.

    Gate blocks r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (reset after the
    matrix product); h_next = (1 - z) * n + z * h. The cache is not inspected.

    Raises
    ------
    CheckFailed
        When ``h_next`` is wrong, or the function fails or returns the wrong things.
    """
    check = "check_gru_step"
    _require_callable(check, gru_step, "gru_step")
    worst = 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=3)
        x, h, p = case["x"], case["h"], case["params"]
        reference = {"h_next": cells.gru_step(x, h, p)[0]}
        student, _ = _run_forward(check, "gru_step", gru_step, (x, h, p), ("h_next", "cache"),
                                  reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _gru_forward_mistakes(x, h, p)))
    _passed(check, "h_next", len(_CASES), worst)


# --------------------------------------------------------------------------------------
# The peephole LSTM (Gers and Schmidhuber 2000): reference and check
# --------------------------------------------------------------------------------------


def lstm_peephole_step(x: np.ndarray, h: np.ndarray, c: np.ndarray,
                       params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One step of the LSTM with peephole connections (the exercise's reference).

    The gates also look at the cell state, through diagonal (elementwise) weights: i and f
    at the old state c_{t-1}, o at the new state c_t, which is already computed when o is
    needed:

    .. math::

        i_t &= \\sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + p_i \\odot c_{t-1}) \\\\
        f_t &= \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + p_f \\odot c_{t-1}) \\\\
        g_t &= \\tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\\\
        c_t &= f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
        o_t &= \\sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + p_o \\odot c_t) \\\\
        h_t &= o_t \\odot \\tanh(c_t)

    Parameters
    ----------
    x : ndarray, shape (B, I)
    h, c : ndarray, shape (B, H)
        h_{t-1} and c_{t-1}.
    params : dict
        The LSTM's ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,),
        ``bias_hh`` (4H,), gates stacked i, f, g, o, plus ``peephole_i``, ``peephole_f``
        and ``peephole_o``, each of shape (H,).

    Returns
    -------
    h_next, c_next : ndarray, shape (B, H)
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

    no_output_peephole = {**peepholes, "peephole_o": np.zeros_like(peepholes["peephole_o"])}
    return [
        ("the output gate looks at the old cell state; it looks at the new one: "
         "o = sigma(... + p_o * c_next), computed after c_next.",
         variant(peephole=peepholes, peep_old_o=True)),
        ("the peepholes are missing: this is the plain LSTM. Add p_i * c and p_f * c to the "
         "input and forget gates and p_o * c_next to the output gate.", variant()),
        ("the output gate's peephole is missing: o = sigma(... + p_o * c_next).",
         variant(peephole=no_output_peephole)),
        *_lstm_forward_mistakes(x, h, c, p, peephole=peepholes),
    ]


@_public
def check_lstm_peephole_step(peephole_step: Callable) -> None:
    """Check ``lstm_peephole_step(x, h, c, params)`` against ``checks.lstm_peephole_step``.

    The student's function returns ``(h_next, c_next)`` or ``(h_next, c_next, cache)`` (a
    cache, if returned, is not inspected). ``params`` holds the LSTM's four arrays plus
    ``peephole_i``, ``peephole_f``, ``peephole_o`` of shape (H,): i and f look at c_{t-1},
    o at c_t.

    Raises
    ------
    CheckFailed
        When ``h_next`` or ``c_next`` is wrong, or the function fails or returns the wrong
        things.
    """
    check = "check_lstm_peephole_step"
    _require_callable(check, peephole_step, "lstm_peephole_step")
    worst = 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=4)
        x, h, c, p = case["x"], case["h"], case["c"], case["params"]
        rng = _rng(check + "peephole", index)
        peepholes = {name: rng.uniform(-1, 1, size=h.shape[1]) for name in PEEPHOLE_NAMES}
        full = {**p, **peepholes}
        h_next, c_next = lstm_peephole_step(x, h, c, full)
        reference = {"h_next": h_next, "c_next": c_next}
        student, _ = _run_forward(check, "lstm_peephole_step", peephole_step,
                                  (x, h, c, full), ("h_next", "c_next", "cache"), reference,
                                  h.shape[1], optional_last=True)
        mistakes = _peephole_mistakes(x, h, c, p, peepholes)
        worst = max(worst, _compare(check, case["label"], student, reference, mistakes))
    _passed(check, "h_next and c_next", len(_CASES), worst)


# --------------------------------------------------------------------------------------
# Backward step checks
# --------------------------------------------------------------------------------------


def _grad_outputs(dx, dh, grads, dc=None) -> dict[str, Any]:
    out = {"dx": dx, "dh": dh}
    if dc is not None:
        out["dc"] = dc
    out["grads"] = grads
    return out


def _run_backward(check: str, role: str, fn: Callable, args: tuple,
                  reference: Mapping[str, Any], hidden: int) -> dict[str, Any]:
    names = tuple(reference)
    result = _unpack(check, role, _call(check, role, fn, *_copy(args)), names)
    student = {}
    for name, value in zip(names, result, strict=True):
        if name == "grads":
            student[name] = _grads(check, role, value, reference["grads"], hidden)
        else:
            student[name] = _array(check, role, name, value, reference[name], hidden)
    return student


def _student_cache(check: str, forward: Callable | None, forward_role: str, args: tuple,
                   names: tuple[str, ...], reference: Mapping[str, np.ndarray],
                   reference_cache: Any, hidden: int, label: str) -> Any:
    """The cache for the student's backward: the reference one, or the student's own."""
    if forward is None:
        return reference_cache
    arrays, cache = _run_forward(check, forward_role, forward, args, names, reference, hidden)
    try:
        _compare(check, label, arrays, reference, [])
    except CheckFailed as failure:
        raise CheckFailed(f"{failure} (computed by your forward function {forward_role}, "
                          "passed as forward=). Fix the forward pass first: the backward pass "
                          "differentiates it.") from None
    return cache


def _finite_differences(check: str, label: str, student: Mapping[str, Any],
                        numeric: Mapping[str, Any]) -> float:
    return _compare(check, label, student, numeric, [], against="centred finite differences",
                    tolerance=FD_TOLERANCE)


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
        When an output is wrong, or the function fails or returns the wrong things.
    """
    check = "check_rnn_step_backward"
    _require_callable(check, rnn_step_backward, "rnn_step_backward")
    if forward is not None:
        _require_callable(check, forward, "rnn_step (as forward=)")
    worst, worst_fd = 0.0, 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=1)
        x, h, p, dh_next = case["x"], case["h"], case["params"], case["dh_next"]
        h_next, cache = cells.rnn_step(x, h, p)
        reference = _grad_outputs(*cells.rnn_step_backward(dh_next, cache))
        used = _student_cache(check, forward, "rnn_step", (x, h, p), ("h_next", "cache"),
                              {"h_next": h_next}, cache, h.shape[1], case["label"])
        student = _run_backward(check, "rnn_step_backward", rnn_step_backward,
                                (dh_next, used), reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _rnn_step_backward_mistakes(dh_next, cache)))

        def loss(x=x, h=h, p=p, dh_next=dh_next):
            return float(np.sum(dh_next * cells.rnn_step(x, h, p)[0]))

        numeric = {"dx": _numeric_grads(loss, {"x": x})["x"],
                   "dh": _numeric_grads(loss, {"h": h})["h"],
                   "grads": _numeric_grads(loss, p)}
        worst_fd = max(worst_fd, _finite_differences(check, case["label"], student, numeric))
    _passed(check, "dx, dh and the four parameter gradients", len(_CASES), worst, worst_fd)


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
        When an output is wrong, or the function fails or returns the wrong things.
    """
    check = "check_lstm_step_backward"
    _require_callable(check, lstm_step_backward, "lstm_step_backward")
    if forward is not None:
        _require_callable(check, forward, "lstm_step (as forward=)")
    worst, worst_fd = 0.0, 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=4)
        x, h, c, p = case["x"], case["h"], case["c"], case["params"]
        dh_next, dc_next = case["dh_next"], case["dc_next"]
        h_next, c_next, cache = cells.lstm_step(x, h, c, p)
        dx, dh, dc, grads = cells.lstm_step_backward(dh_next, dc_next, cache)
        reference = _grad_outputs(dx, dh, grads, dc)
        used = _student_cache(check, forward, "lstm_step", (x, h, c, p),
                              ("h_next", "c_next", "cache"),
                              {"h_next": h_next, "c_next": c_next}, cache, h.shape[1],
                              case["label"])
        student = _run_backward(check, "lstm_step_backward", lstm_step_backward,
                                (dh_next, dc_next, used), reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _lstm_backward_mistakes(dh_next, dc_next, cache)))

        def loss(x=x, h=h, c=c, p=p, dh_next=dh_next, dc_next=dc_next):
            h_out, c_out, _ = cells.lstm_step(x, h, c, p)
            return float(np.sum(dh_next * h_out) + np.sum(dc_next * c_out))

        numeric = _numeric_grads(loss, {"x": x, "h": h, "c": c})
        numeric = {"dx": numeric["x"], "dh": numeric["h"], "dc": numeric["c"],
                   "grads": _numeric_grads(loss, p)}
        worst_fd = max(worst_fd, _finite_differences(check, case["label"], student, numeric))
    _passed(check, "dx, dh, dc and the four parameter gradients", len(_CASES), worst, worst_fd)


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
        When an output is wrong, or the function fails or returns the wrong things.
    """
    check = "check_gru_step_backward"
    _require_callable(check, gru_step_backward, "gru_step_backward")
    if forward is not None:
        _require_callable(check, forward, "gru_step (as forward=)")
    worst, worst_fd = 0.0, 0.0
    for index in range(len(_CASES)):
        case = _step_case(check, index, gates=3)
        x, h, p, dh_next = case["x"], case["h"], case["params"], case["dh_next"]
        h_next, cache = cells.gru_step(x, h, p)
        reference = _grad_outputs(*cells.gru_step_backward(dh_next, cache))
        used = _student_cache(check, forward, "gru_step", (x, h, p), ("h_next", "cache"),
                              {"h_next": h_next}, cache, h.shape[1], case["label"])
        student = _run_backward(check, "gru_step_backward", gru_step_backward,
                                (dh_next, used), reference, h.shape[1])
        worst = max(worst, _compare(check, case["label"], student, reference,
                                    _gru_backward_mistakes(dh_next, cache)))

        def loss(x=x, h=h, p=p, dh_next=dh_next):
            return float(np.sum(dh_next * cells.gru_step(x, h, p)[0]))

        numeric = _numeric_grads(loss, {"x": x, "h": h})
        numeric = {"dx": numeric["x"], "dh": numeric["h"], "grads": _numeric_grads(loss, p)}
        worst_fd = max(worst_fd, _finite_differences(check, case["label"], student, numeric))
    _passed(check, "dx, dh and the four parameter gradients", len(_CASES), worst, worst_fd)


# --------------------------------------------------------------------------------------
# Backpropagation through time
# --------------------------------------------------------------------------------------


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
         "state gets dhs[t] + dh, where dh comes back from step t + 1.",
         lambda: outputs(cells.rnn_backward_truncated(dhs, cache, 1))),
        ("dhs[t] is only used at the last step: every state h_t receives its own loss "
         "gradient dhs[t] in addition to the dh carried back from step t + 1.",
         lambda: outputs(cells.rnn_backward(only_last, cache))),
        ("dxs is reversed in time: dxs[t] is the gradient for xs[t].", reversed_dxs),
    ]


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
        When an output is wrong, or the function fails or returns the wrong things.
    """
    check = "check_rnn_backward"
    _require_callable(check, rnn_backward, "rnn_backward")
    if forward is not None:
        _require_callable(check, forward, "rnn_forward (as forward=)")
    worst, worst_fd = 0.0, 0.0
    lengths = (4, 3, 5)
    for index in range(len(_CASES)):
        batch, input_size, hidden = _CASES[index]
        steps = lengths[index]
        rng = _rng(check, index)
        p = _params(rng, 1, input_size, hidden)
        xs = rng.standard_normal((steps, batch, input_size))
        h0 = rng.uniform(-0.9, 0.9, size=(batch, hidden))
        dhs = rng.standard_normal((steps, batch, hidden))
        label = _case_label(index, len(_CASES), T=steps, B=batch, I=input_size, H=hidden)
        hs, cache = cells.rnn_forward(xs, h0, p)
        dxs, dh0, grads = cells.rnn_backward(dhs, cache)
        reference = {"dxs": dxs, "dh0": dh0, "grads": grads}
        used = _student_cache(check, forward, "rnn_forward", (xs, h0, p), ("hs", "cache"),
                              {"hs": hs}, cache, hidden, label)
        student = _run_backward(check, "rnn_backward", rnn_backward, (dhs, used), reference,
                                hidden)
        worst = max(worst, _compare(check, label, student, reference, _bptt_mistakes(dhs, cache)))

        def loss(xs=xs, h0=h0, p=p, dhs=dhs):
            return float(np.sum(dhs * cells.rnn_forward(xs, h0, p)[0]))

        numeric = _numeric_grads(loss, {"xs": xs, "h0": h0})
        numeric = {"dxs": numeric["xs"], "dh0": numeric["h0"], "grads": _numeric_grads(loss, p)}
        worst_fd = max(worst_fd, _finite_differences(check, label, student, numeric))
    _passed(check, "dxs, dh0 and the parameter gradients summed over time", len(_CASES), worst,
            worst_fd)


# --------------------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------------------


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
        ("total_norm is the norm after clipping; return the norm before clipping.",
         {"norm_after": True}),
        ("total_norm is the squared norm: take the square root of the sum of squares.",
         {"squared": True}),
        ("gradients whose norm is already below max_norm are scaled up; the scale is "
         "min(1, max_norm / total_norm).", {"always": True}),
        ("norm_type is ignored: the p-norm is (sum |g|^p)^(1/p), and the largest |g| for "
         "p = inf.", {"two_norm": True}),
    ]
    return [(hint, lambda kw=kw: _clip_variant(grads, max_norm, p, **kw)) for hint, kw in hints]


def _clip_cases(check: str) -> list[tuple[dict[str, np.ndarray], float, float]]:
    rng = _rng(check, 0)

    def grads(scale):
        return {"weight_ih": scale * rng.standard_normal((6, 3)),
                "weight_hh": scale * rng.standard_normal((6, 2)),
                "bias_ih": 4 * scale * rng.standard_normal(6),
                "bias_hh": 0.1 * scale * rng.standard_normal(6)}

    return [({"g": np.array([3.0, 4.0])}, 1.0, 2.0),  # SCIENCE: (3, 4) -> (0.6, 0.8)
            (grads(3.0), 5.0, 2.0),  # above the threshold, one array much larger
            (grads(0.1), 5.0, 2.0),  # below the threshold: unchanged
            (grads(2.0), 3.0, 1.0),
            (grads(2.0), 1.5, float("inf"))]


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
    check = "check_clip_by_norm"
    _require_callable(check, clip_by_norm_fn, "clip_by_norm")
    cases = [case for case in _clip_cases(check) if case[2] in norm_types]
    if not cases:
        raise ValueError(f"norm_types must include 2.0, 1.0 or inf, got {norm_types!r}")
    worst = 0.0
    for index, (grads, max_norm, p) in enumerate(cases):
        clipped, total_norm = clip_by_norm(grads, max_norm, norm_type=p)
        reference = {"clipped": clipped, "total_norm": np.float64(total_norm)}
        originals = _copy(grads)
        call = (clip_by_norm_fn if p == 2.0
                else functools.partial(clip_by_norm_fn, norm_type=p))
        result = _unpack(check, "clip_by_norm",
                         _call(check, "clip_by_norm", call, grads, max_norm),
                         ("clipped", "total_norm"))
        if any(not np.array_equal(grads[k], originals[k]) for k in grads):
            raise CheckFailed(f"{check}: your clip_by_norm modified the input arrays in place; "
                              "return new arrays (for example g * scale, not g *= scale): the "
                              "caller may still need the unclipped gradients.")
        sizes = ", ".join(f"{k} {v.shape}" for k, v in grads.items())
        label = (f"hidden case {index + 1} of {len(cases)} (max_norm={max_norm:g}, "
                 f"norm_type={p:g}, arrays {sizes})")
        student = {"clipped": _grads(check, "clip_by_norm", result[0], clipped, 1),
                   "total_norm": _scalar_output(check, "clip_by_norm", "total_norm", result[1])}
        worst = max(worst, _compare(check, label, student, reference,
                                    _clip_mistakes(grads, max_norm, p), tolerance=1e-6))
    _passed(check, "the clipped gradients and total_norm", len(cases), worst)


def _scalar_output(check: str, role: str, name: str, value: Any) -> np.ndarray:
    if value is None:
        raise CheckFailed(f"{check}: {name} returned by your {role} is None; it must be a number")
    if type(value).__module__.startswith("torch"):
        value = value.item() if hasattr(value, "item") else value
    array = np.asarray(value) if isinstance(value, (int, float, np.number, np.ndarray)) else None
    if array is None or array.size != 1 or not np.issubdtype(array.dtype, np.number):
        raise CheckFailed(f"{check}: {name} returned by your {role} is {_describe(value)}; it "
                          "must be a single number")
    if not np.isfinite(array).all():
        raise CheckFailed(f"{check}: {name} returned by your {role} is {float(array)}")
    return np.float64(array.reshape(()))


# --------------------------------------------------------------------------------------
# Forecasting: MASE
# --------------------------------------------------------------------------------------


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
    return {"mase": np.float64(scale / numerator if inverted else numerator / scale)}


def _mase_mistakes(y_true, y_pred, y_train, season):
    hints = [
        ("the scale Q is computed on y_true (the test part); MASE scales by the seasonal "
         "naive error on the training part y_train.", {"scale_on": "test"}),
        ("the scale uses lag 1; the seasonal naive forecast repeats the value one season "
         "earlier, y_{t-m}.", {"lag": 1}),
        ("the numerator is the mean error; take the mean absolute error, mean |y - y_hat|.",
         {"absolute": False}),
        ("the numerator is the RMSE; MASE uses the mean absolute error.", {"squared": True}),
        ("the scale is divided by n; it is a mean over the n - m seasonal differences.",
         {"divide_by_n": True}),
        ("the ratio is upside down: MASE = MAE / Q.", {"inverted": True}),
    ]
    return [(hint, lambda kw=kw: _mase_variant(y_true, y_pred, y_train, season, **kw))
            for hint, kw in hints]


@_public
def check_mase(mase: Callable) -> None:
    """Check ``mase(y_true, y_pred, y_train, season) -> float`` (Hyndman and Koehler 2006).

    MASE = ``mean(abs(y_true - y_pred)) / Q``, where Q is the mean over t >= m of
    ``abs(y_train[t] - y_train[t - m])``: the in-sample error of the seasonal naive forecast
    on the training series (m = ``season``). The arrays are 1-D float64; the reference is
    ``timeseries.mase``.

    Raises
    ------
    CheckFailed
        When the value is wrong, or the function fails or returns the wrong thing.
    """
    from .timeseries import mase as mase_reference  # pandas is imported only when needed

    check = "check_mase"
    _require_callable(check, mase, "mase")
    worst = 0.0
    for index, (n_train, horizon, season) in enumerate(((48, 18, 12), (30, 10, 7), (40, 9, 4))):
        rng = _rng(check, index)
        t = np.arange(n_train + horizon, dtype=np.float64)
        series = (np.sin(2 * np.pi * t / season) * 3 + 0.05 * t
                  + rng.standard_normal(n_train + horizon))
        y_train, y_true = series[:n_train], series[n_train:]
        y_pred = y_true + rng.normal(0.2, 0.8, size=horizon)
        reference = {"mase": np.float64(mase_reference(y_true, y_pred, y_train, season))}
        value = _call(check, "mase", mase, *_copy((y_true, y_pred, y_train, season)))
        (value,) = _unpack(check, "mase", value, ("the MASE, a number",))
        student = {"mase": _scalar_output(check, "mase", "the value", value)}
        label = (f"hidden case {index + 1} of 3 (len(y_train)={n_train}, "
                 f"len(y_true)={horizon}, season={season})")
        worst = max(worst, _compare(check, label, student, reference,
                                    _mase_mistakes(y_true, y_pred, y_train, season)))
    _passed(check, "MASE", 3, worst)

