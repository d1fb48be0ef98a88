"""Input checks shared by the library's public functions.

Every check raises a ``TypeError`` (wrong kind of object or dtype) or a ``ValueError``
(right kind, wrong shape or value) whose message names the argument, says what it got
and what it expects. The checks return the value they accept, so a caller writes
``x = check_float_array("x", x, shape=(None, 4), dims=("B", "I"))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages (type, shape and dtype)."""
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        kind = f"{type(value).__module__}.{type(value).__name__}"
        return f"a {kind} of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{value!r} of type {type(value).__name__}"


def _format_expected_shape(shape: Sequence[int | None], dims: Sequence[str] | None,
                           actual: tuple[int, ...]) -> str:
    """Render an expected shape such as ``(B, I) = (3, 4)``; free sizes use the actual one."""
    same_ndim = len(actual) == len(shape)
    sizes = []
    for axis, size in enumerate(shape):
        if size is not None:
            sizes.append(str(size))
        elif same_ndim:
            sizes.append(str(actual[axis]))
        else:
            sizes.append(dims[axis] if dims is not None else "any")
    numbers = "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"
    if dims is None:
        return numbers
    names = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return f"{names} = {numbers}"


def check_float_array(
    name: str,
    value: Any,
    *,
    shape: Sequence[int | None] | None = None,
    dims: Sequence[str] | None = None,
    ndim: int | None = None,
    dtype: np.dtype | type | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Check that ``value`` is a float32 or float64 numpy array and return it.

    Parameters
    ----------
    name : str
        The argument's name, used in the messages.
    value : object
        The value to check.
    shape : sequence of int or None, optional
        Expected shape; ``None`` entries accept any size. Every size must be at least 1.
    dims : sequence of str, optional
        Names of the axes (such as ``("T", "B", "I")``) used in the messages.
    ndim : int, optional
        Expected number of axes, when ``shape`` is not given.
    dtype : numpy dtype, optional
        Required dtype (for example the dtype of the parameters).
    finite : bool
        Reject NaN and infinity (the default).

    Raises
    ------
    TypeError
        ``value`` is not a numpy array, or its dtype is not float32/float64 (or not ``dtype``).
    ValueError
        Wrong number of axes, wrong size, an empty axis, or a non-finite entry.
    """
    if not isinstance(value, np.ndarray):
        hint = ""
        if type(value).__module__.startswith("torch"):
            hint = " (convert a torch tensor with .detach().cpu().numpy())"
        elif isinstance(value, (list, tuple, int, float)):
            hint = " (convert it with np.asarray(..., dtype=np.float64))"
        raise TypeError(f"{name} must be a numpy array, got {describe(value)}{hint}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got dtype {value.dtype}"
            " (convert it with .astype(np.float64))"
        )
    if dtype is not None and value.dtype != np.dtype(dtype):
        raise TypeError(
            f"{name} has dtype {value.dtype} but the parameters are {np.dtype(dtype)}; "
            "all arrays must share one dtype (convert with .astype)"
        )
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and value.ndim != ndim:
        expected = _format_expected_shape(shape, dims, value.shape) if shape is not None else ""
        expected = f" of shape {expected}" if expected else ""
        raise ValueError(
            f"{name} must be a {ndim}-D array{expected}, got {value.ndim}-D shape {value.shape}"
        )
    if shape is not None:
        pairs = zip(shape, value.shape, strict=True)
        if any(size is not None and size != got for size, got in pairs):
            raise ValueError(
                f"{name} must have shape {_format_expected_shape(shape, dims, value.shape)}, "
                f"got {value.shape}"
            )
    if 0 in value.shape:
        axis = value.shape.index(0)
        label = f" (axis {axis}, {dims[axis]})" if dims is not None else f" (axis {axis})"
        raise ValueError(
            f"{name} has an empty axis{label}: shape {value.shape}; every axis needs size >= 1"
        )
    if finite and not np.isfinite(value).all():
        bad = int(value.size - np.isfinite(value).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or infinite entries out of {value.size}; "
            "inputs must be finite"
        )
    return value


def check_same_dtype(arrays: Mapping[str, np.ndarray]) -> np.dtype:
    """Check that the named arrays share one dtype and return it (``TypeError`` if not)."""
    dtypes = {name: array.dtype for name, array in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{name}: {dtype}" for name, dtype in dtypes.items())
        raise TypeError(
            f"mixed dtypes ({listing}); all arrays must be float32 or all float64 "
            "(convert with .astype)"
        )
    return next(iter(dtypes.values()))


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``choices`` and return it (``ValueError`` if not)."""
    choices = tuple(choices)
    if not isinstance(value, str | int | float) or value not in choices:
        raise ValueError(f"{name} must be one of {choices!r}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Check that ``value`` is an integer (not a bool), at least ``minimum``; return an int."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_real(name: str, value: Any, *, positive: bool = False) -> float:
    """Check that ``value`` is a finite real number (positive if asked); return a float."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
