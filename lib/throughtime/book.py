"""Helpers for the chapters themselves: glueing measured numbers into the prose.

A number in the book's text comes from a cell: the cell computes it, ``glue`` hands it to
the website (myst-nb's ``{glue:text}`` role), and a hidden cell asserts it. In Colab or a
plain Jupyter session, where myst-nb is not installed, ``glue`` still records the value
(``glued``) so the asserts and the reader's own code can use it.
"""

from __future__ import annotations

import sys
from typing import Any

glued: dict[str, Any] = {}


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Record ``value`` under ``name`` for the text and return it.

    Plain Python numbers are stored (numpy and torch scalars are converted), so the
    website prints them with a format such as ``{glue:text}`name:.3f```.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    glued[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value
