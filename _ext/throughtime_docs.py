"""Sphinx extension of the book's website: module constants documented as written.

napoleon reads the first line of a constant's docstring as ``type: description`` whenever it
holds a colon ("Number of gate blocks per kind: weight_ih has G*H rows." becomes "Type:
Number of gate blocks per kind"). The library documents its constants in sentences, not
with types, so for module data and class attributes this extension keeps the docstring as
written: it notes the lines before napoleon handles them and puts them back after.
"""

from __future__ import annotations

from typing import Any

_WRITTEN: dict[str, list[str]] = {}


def _note(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what in ("data", "attribute"):
        _WRITTEN[name] = list(lines)


def _restore(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what in ("data", "attribute") and name in _WRITTEN:
        lines[:] = _WRITTEN.pop(name)


def setup(app: Any) -> dict[str, Any]:
    # napoleon handles the same event at the default priority, 500.
    app.connect("autodoc-process-docstring", _note, priority=400)
    app.connect("autodoc-process-docstring", _restore, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
