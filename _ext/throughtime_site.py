"""Sphinx extension for the book's website: what Jupyter Book does not do by itself.

- **Constants read as written.** Napoleon reads the first line of an attribute's docstring
  as ``type: description`` whenever it holds a colon, so "Colour of each role: input, ..."
  became a type. The docstrings of module and class attributes are kept as written (the
  notes are taken before napoleon, priority 500, and put back after it), and a value is
  shown only when it reads as a Python literal (never ``<function <lambda>>``).
- **Answers folded.** A code cell holding ``### BEGIN SOLUTION`` is the reference answer of
  a code exercise: its source is folded behind a button, as if tagged ``hide-input``, so a
  reader who wants to try first does not see it under the exercise.
- **No widget state in the pages.** Live widgets are removed from the website (their cells
  are tagged ``remove-cell``), but the executed notebook still carries their state in
  ``metadata.widgets``, which myst-nb writes into the page. It is dropped.
- **Unique element ids.** sphinx-exercise gives every exercise's and solution's body the same
  id (``exercise-content``, ``solution-content``); each gets its exercise's label instead,
  and any other id repeated on a page gets a numbered suffix.
- **Folded cells in the single-page book** (``make pdf``): myst-nb's fold is registered for
  the ``singlehtml`` builder too.
- **No orphan brackets.** An opening bracket right before inline math, or punctuation right
  after it, stays on the same line as the formula.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.ext.autodoc import AttributeDocumenter, DataDocumenter
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.inspect import object_description

logger = logging.getLogger(__name__)

SOLUTION_MARKER = "### BEGIN SOLUTION"
OPENING = "([{\u2018\u201c"
CLOSING = ",.;:!?)]}\u2019\u201d"


# --- Constants as written ----------------------------------------------------------------------

_ATTRIBUTE_KINDS = {"data", "attribute"}


def keep_attribute_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                             lines: list[str]) -> None:
    """Before napoleon: remember an attribute's docstring as written."""
    if what in _ATTRIBUTE_KINDS:
        app.env.temp_data.setdefault("throughtime_attribute_docs", {})[name] = list(lines)


def restore_attribute_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                                lines: list[str]) -> None:
    """After napoleon: put the docstring back, so no sentence with a colon becomes a type."""
    kept = app.env.temp_data.get("throughtime_attribute_docs", {}).pop(name, None)
    if what in _ATTRIBUTE_KINDS and kept is not None:
        lines[:] = kept


def reads_as_literal(value: Any) -> bool:
    """True when the value's description is a Python literal (a number, string, tuple, dict
    of those...), not an object's repr such as ``<function <lambda>>``."""
    try:
        ast.literal_eval(object_description(value))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


class LiteralDataDocumenter(DataDocumenter):
    """Module constants: their value is shown only when it reads as a literal."""

    priority = DataDocumenter.priority + 1

    def should_suppress_value_header(self) -> bool:
        return super().should_suppress_value_header() or not reads_as_literal(self.object)


class LiteralAttributeDocumenter(AttributeDocumenter):
    """Class attributes: their value is shown only when it reads as a literal."""

    priority = AttributeDocumenter.priority + 1

    def should_suppress_value_header(self) -> bool:
        return super().should_suppress_value_header() or not reads_as_literal(self.object)


# --- Notebook pages ---------------------------------------------------------------------------


def drop_widget_state(app: Sphinx, doctree: nodes.document) -> None:
    """Forget the ipywidgets state (and the widget scripts) myst-nb noted for this page."""
    metadata = getattr(app.env, "nb_metadata", {}).get(app.env.docname, {})
    js_files = metadata.get("js_files", {})
    for key in [key for key in js_files if key.startswith("ipywidgets")]:
        del js_files[key]


def _cell_source(cell: nodes.Element) -> str:
    for child in cell.children:
        if child.get("nb_element") == "cell_code_source":
            return child.astext()
    return ""


class FoldSolutionCode(SphinxPostTransform):
    """Fold the source of every code cell that holds a reference answer.

    Runs before myst-nb's ``HideInputCells`` (priority 199), which does the folding.
    """

    default_priority = 190
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for cell in self.document.findall(nodes.container):
            if cell.get("nb_element") != "cell_code" or SOLUTION_MARKER not in _cell_source(cell):
                continue
            mode = cell.get("hide_mode")
            cell["hide_mode"] = {None: "input", "output": "input+output"}.get(mode, mode)
            cell["prompt_show"] = "Show the answer's code"
            cell["prompt_hide"] = "Hide the answer's code"
            cell["classes"].append("tag_solution-code")


class UniqueIds(SphinxPostTransform):
    """Give every element of a page its own id (sphinx-exercise repeats two)."""

    default_priority = 900
    formats = ("html",)
    shared = {"exercise-content", "solution-content"}

    def run(self, **kwargs: Any) -> None:
        for section in self.document.findall(nodes.section):
            shared = [name for name in section["ids"] if name in self.shared]
            if not shared:
                continue
            parent_ids = section.parent.get("ids", []) if section.parent else []
            section["ids"] = [i for i in section["ids"] if i not in self.shared]
            if parent_ids:
                section["ids"].append(f"{parent_ids[0]}-{shared[0].split('-')[1]}")
            section["classes"].append(shared[0])
        seen: dict[str, int] = {}
        for node in self.document.findall(nodes.Element):
            renamed = []
            for name in node.get("ids", []):
                count = seen.get(name, 0)
                seen[name] = count + 1
                renamed.append(name if count == 0 else f"{name}-{count + 1}")
            if renamed:
                node["ids"] = renamed


class KeepPunctuationWithMath(SphinxPostTransform):
    """Keep ``(`` before inline math and ``,`` ``)`` ... after it on the formula's line."""

    default_priority = 800
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for math in list(self.document.findall(nodes.math)):
            parent = math.parent
            if parent is None:
                continue
            index = parent.index(math)
            before = parent[index - 1] if index > 0 else None
            after = parent[index + 1] if index + 1 < len(parent) else None
            lead = _trailing(before, OPENING) if isinstance(before, nodes.Text) else ""
            tail = _leading(after, CLOSING) if isinstance(after, nodes.Text) else ""
            if not lead and not tail:
                continue
            group = nodes.inline(classes=["tt-nowrap"])
            if lead:
                parent.replace(before, nodes.Text(str(before)[: -len(lead)]))
                group += nodes.Text(lead)
            parent.replace(math, group)
            group += math
            if tail:
                parent.replace(after, nodes.Text(str(after)[len(tail):]))
                group += nodes.Text(tail)


def _trailing(text: nodes.Text, characters: str) -> str:
    """The last word of ``text`` when it ends with one of ``characters`` (``f(``), else ''."""
    value = str(text)
    word = re.search(r"\S*$", value).group()
    return word if word and word[-1] in characters else ""


def _leading(text: nodes.Text, characters: str) -> str:
    """The first word of ``text`` when it starts with one of ``characters`` (``),``), else ''."""
    value = str(text)
    word = re.match(r"\S*", value).group()
    return word if word and word[0] in characters else ""


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", keep_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", restore_attribute_docstring, priority=600)
    app.add_autodocumenter(LiteralDataDocumenter, override=True)
    app.add_autodocumenter(LiteralAttributeDocumenter, override=True)
    app.connect("doctree-read", drop_widget_state)
    # The folded cells in the single-page book that `make pdf` prints: myst-nb registers its
    # fold for the html builder only, and singlehtml then fails on every hidden cell.
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput, visit_HideCellInput

    app.add_node(HideCodeCellNode, override=True,
                 html=(visit_HideCellInput, depart_HideCellInput),
                 singlehtml=(visit_HideCellInput, depart_HideCellInput))
    app.add_post_transform(FoldSolutionCode)
    app.add_post_transform(UniqueIds)
    app.add_post_transform(KeepPunctuationWithMath)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
