"""Helpers for the chapters themselves: numbers glued into the prose, and claims checked.

A number in the book's text comes from a cell: the cell computes it, ``glue`` hands it to
the website (myst-nb's ``{glue:text}`` role), and a hidden cell checks the statement made
with it through ``claim``. In Colab or a plain Jupyter session, where myst-nb is not
installed, ``glue`` still records the value (``glued``) so the checks and the reader's own
code can use it.

Two modes of checking
---------------------
A statement about a training run (who learns, who wins, a threshold crossed) was measured
on the machines that built the book, over several seeds and CPU kernel sets. On a reader's
laptop, an ARM Mac or a Colab GPU the last bits of every operation differ, and a training
run can land elsewhere. So ``claim`` has two modes:

* **strict** (the book build, nbval, CI, ``make portability``): a statement that does not
  hold raises :class:`ClaimFailed`, and the build fails with what was expected and what was
  found. The Makefile turns it on by exporting ``THROUGHTIME_STRICT=1``.
* **reader** (anywhere else: Colab, JupyterLab, VS Code): a statement that does not hold
  prints a short notice saying what the book states, what this run found and why the two
  can differ, and the chapter goes on, so that "Run all" reaches the end.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

glued: dict[str, Any] = {}

STRICT_VARIABLE = "THROUGHTIME_STRICT"
"""The environment variable that makes :func:`claim` raise instead of printing a notice."""

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"", "0", "false", "no", "off"}


class ClaimFailed(AssertionError):
    """A statement of the book does not hold in this run (strict mode only)."""


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the text.

    Plain Python numbers are stored (numpy and torch scalars are converted), so the
    website prints them with a format such as ``{glue:text}`name:.3f```. The value is kept
    in ``book.glued``; nothing is returned, so a notebook cell that ends with a ``glue`` call
    prints no stray ``Out[n]``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    glued[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def strict_mode() -> bool:
    """True when a claim that does not hold must raise (``THROUGHTIME_STRICT`` is set).

    Accepted values are ``1``/``true``/``yes``/``on`` (strict) and ``0``/``false``/``no``/
    ``off`` or unset (reader mode); anything else is an error, so that a typo in a CI
    setting cannot silently turn the checks off.
    """
    value = os.environ.get(STRICT_VARIABLE, "").strip().lower()
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise ValueError(
        f"environment variable {STRICT_VARIABLE} must be one of 1/true/yes/on or "
        f"0/false/no/off (or unset), got {os.environ[STRICT_VARIABLE]!r}"
    )


def _as_truth(holds: Any) -> bool:
    """``holds`` as a Python bool; only booleans (Python, numpy, 0-d tensors) are accepted."""
    if isinstance(holds, (bool, np.bool_)):
        return bool(holds)
    if hasattr(holds, "dtype") and getattr(holds, "ndim", None) == 0:
        if str(holds.dtype) in {"bool", "torch.bool"}:
            return bool(holds)
    raise TypeError(
        "holds must be a single boolean (the result of a comparison, reduced with .all() or "
        f".any() for arrays), got {type(holds).__name__}"
        + (f" of shape {tuple(holds.shape)}" if hasattr(holds, "shape") else "")
    )


def _format_found(found: Any) -> str:
    """A short, readable rendering of what this run measured."""
    if isinstance(found, Mapping):
        return ", ".join(f"{key} = {_format_found(value)}" for key, value in found.items())
    if isinstance(found, str):
        return found
    if hasattr(found, "detach"):
        found = found.detach().cpu().numpy()
    if isinstance(found, np.ndarray) or (isinstance(found, Sequence) and not isinstance(
            found, str)):
        values = np.asarray(found, dtype=object).ravel().tolist()
        shown = ", ".join(_format_found(value) for value in values[:12])
        more = f", ... ({len(values)} values)" if len(values) > 12 else ""
        return f"[{shown}{more}]"
    if isinstance(found, (float, np.floating)):
        value = float(found)
        if math.isfinite(value) and value != 0 and not 1e-3 <= abs(value) < 1e4:
            return f"{value:.3g}"
        return f"{value:.4g}"
    if hasattr(found, "item") and getattr(found, "ndim", 1) == 0:
        return _format_found(found.item())
    return str(found)


def claim(holds: Any, statement: str, *, found: Any = None) -> bool:
    """Check a statement that the chapter's text makes; return whether it holds.

    In strict mode (``THROUGHTIME_STRICT=1``: the book build, nbval, CI) a statement that
    does not hold raises :class:`ClaimFailed`. Otherwise it prints a notice and returns
    ``False``, and the chapter goes on.

    Parameters
    ----------
    holds : bool
        The check itself, e.g. ``(test_mse < 0.3 * baseline).all()``.
    statement : str
        What the book states, in words a reader understands, e.g.
        ``"every seed learns T = 10 (test MSE below 0.3 times the baseline)"``.
    found : optional
        What this run measured (a number, an array, a dict of named values): printed in the
        notice or the error, so the reader sees how far from the statement the run landed.

    Returns
    -------
    bool
        ``True`` when the statement holds; ``False`` (after the notice) when it does not
        and strict mode is off.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise TypeError(f"statement must be a non-empty string, got {statement!r}")
    if _as_truth(holds):
        return True
    measured = "" if found is None else f" This run found: {_format_found(found)}."
    if strict_mode():
        raise ClaimFailed(f"The book states that {statement}, and this run contradicts it."
                          f"{measured}")
    print(
        f"Note: the text says that {statement}; in this run it does not hold.{measured}\n"
        "The numbers in the text come from the book's own runs. Training results depend on "
        "the random seed and on the numerical kernels of the machine (CPU type, GPU, library "
        "versions), which change the last digits of every operation and, through training, "
        "sometimes the outcome. The chapter continues."
    )
    return False
