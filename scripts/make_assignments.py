"""Make the student edition of the book: exercises without their answers.

    python scripts/make_assignments.py [--out _build/student/book] [--branch BRANCH]
                                       [--repo ORG/NAME] [--chapters 01 03 ...]
                                       [--html _build/student/html]
                                       [--wheel-url URL | --install-url URL]

The student edition is a copy of the repository (so that it can be pushed as a branch that
Colab installs the library from) in which every chapter notebook has been through these
steps, in order:

1. ``StubSolutions`` (nbgrader's ``ClearSolutions``): in code cells, the lines from
   ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become a stub that raises
   ``NotImplementedError`` with the task restated. The task comes from a ``# TASK: ...``
   comment block right above ``### BEGIN SOLUTION``, or else from the nearest
   ``{exercise}`` before the cell: its first sentence that names a function the cell
   defines, or its first sentence, or its title.
2. ``RemoveWrittenSolutions``: every sphinx-exercise ``{solution}`` block (backtick or colon
   fence, at the top level of a markdown cell) is removed, and so is everything between
   ``{solution-start}`` and ``{solution-end}``, except code cells with solution markers,
   which stay (stubbed). Code cells tagged ``solution`` (a hidden cell that checks the
   numbers of a written answer, say) are removed too. Markdown cells left empty are dropped.
3. ``TagRaisingCells``: the stubbed cells, and every later code cell that uses a name they
   define (the check call, for instance) or a name defined only by a removed cell, get the
   ``raises-exception`` tag, so that the notebook runs top to bottom (nbclient, myst-nb and
   nbval all accept an error in a cell with that tag, and do not require one). Names bound
   by a tagged cell count as broken too.
4. ``ClearOutput``: no outputs, no execution counts.
5. ``PointInstallAt``: the setup cell installs the library from the student repository
   and branch, or from ``--install-url`` (any pip URL, a git URL with a read-only token for
   a private repository, say), or from ``--wheel-url``: then the library's wheel is built
   into the student website's ``_static/`` folder and installed from URL (a folder URL
   ending in ``/`` gets the wheel's file name), so that students need no access to any
   repository.

``_config.yml`` is rewritten line by line, comments kept, with the student repository and
branch (launch buttons and installs) and sphinx-exercise's ``hide_solutions: True``;
``_toc.yml`` keeps only the chosen chapters. The branch defaults to ``student``: a student
edition whose launch buttons would open the instructor's own repository and branch (the
notebooks with the answers) is refused. The instructor-only folder ``instructor/`` (hidden
tests, the course secret, the answer key) is never copied. With ``--html`` the student
website is built with Jupyter Book (warnings are errors, cells executed) and copied there;
when ``scripts/reader_notebooks.py`` is present, the executed student chapters are then
converted to reader notebooks (no MyST markup), which replace the chapters of the student
tree (what Colab opens from the student branch) and the website's downloads.

The script stops, naming the chapter and cell, when the student edition would still show
an answer: a line of a solution; a cell hidden on the website (``remove-cell``) but kept in
the notebook whose glued values only the removed solutions use (tag it ``solution``); a
Markdown cell that quotes three or more lines of the library function an exercise asks the
student to write. A code cell that only prints such a function's source is left out (and
reported). It warns when the instructor's tree has uncommitted changes, which go into the
student edition as they are.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import Preprocessor
from nbformat.v4.nbbase import random_cell_id
from traitlets import Unicode

ROOT = Path(__file__).resolve().parents[1]
# Under _build, which the book's own build excludes: a student tree elsewhere in the
# repository would be read as part of the instructor edition.
DEFAULT_OUT = ROOT / "_build" / "student" / "book"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
RAISES = "raises-exception"
SOLUTION_TAG = "solution"  # a cell that shows or checks an answer: left out for students
DEFAULT_TASK = "write the code for this exercise (see the exercise text above)"
SKIP = {".git", ".venv", "_build", "__pycache__", ".pytest_cache", ".ruff_cache",
        ".ipynb_checkpoints", "_student", "node_modules", "instructor"}
DEFAULT_BRANCH = "student"
GLUE_REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_]\w*)")
GLUE_CALL = re.compile(r"""\bglue\(\s*["']([A-Za-z_]\w*)["']""")


def _load_retarget() -> Any:
    """scripts/retarget.py, the one place that knows the install line of the setup cell."""
    spec = importlib.util.spec_from_file_location("retarget", Path(__file__).with_name(
        "retarget.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


retarget = _load_retarget()


# --------------------------------------------------------------------------------------
# Reading MyST markdown: exercises and solutions
# --------------------------------------------------------------------------------------


@functools.cache
def _markdown_parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"colon_fence", "dollarmath", "amsmath"})
    return create_md_parser(config, RendererHTML)


def directives(text: str) -> Iterator[tuple[str, str, str, int, int]]:
    """Top-level MyST directives in ``text``: (name, argument, body, first line, end line)."""
    for token in _markdown_parser().parse(text):
        match = re.match(r"\{([\w-]+)\}\s*(.*)", token.info.strip())
        if token.type in ("fence", "colon_fence") and token.level == 0 and match and token.map:
            yield match[1], match[2].strip(), token.content, token.map[0], token.map[1]


_ENDS = (".", "!", "?", ":")


def exercise_sentences(body: str) -> list[str]:
    """The sentences of an exercise's text, in order, without options, code or equations.

    A display equation inside a sentence becomes "(see the equation in the exercise)"; one
    after a sentence's end (``:`` included) is dropped. List markers are removed.
    """
    segments: list[list[str]] = [[]]
    in_math, fence = False, ""
    for line in (line.strip() for line in body.splitlines()):
        words = segments[-1]
        if fence:
            fence = "" if line.startswith(fence) else fence
        elif re.match(r"(`{3,}|:{3,})", line):
            fence = re.match(r"(`{3,}|:{3,})", line)[1]
        elif line.startswith("$$"):
            if not in_math and words and not words[-1].endswith(_ENDS):
                words.append("(see the equation in the exercise)")
            in_math = in_math if line.endswith("$$") and len(line) > 2 else not in_math
        elif in_math or re.match(r":[\w-]+:", line):
            continue
        elif not line:
            if words and words[-1].endswith(_ENDS):
                segments.append([])
        else:
            item = re.match(r"(\d+[.)]|[-*+])\s+(.*)", line)
            if item:
                segments.append([])
                line = item[2]
            segments[-1].append(line)
    sentences = []
    for words in segments:
        text = " ".join(words)
        sentences += [re.sub(r":$", ".", piece.strip()) for piece in
                      re.split(r"(?<=[.!?])\s+(?=[A-Z`$(])", text) if piece.strip()]
    return [s for s in sentences if not s.startswith("(see the equation")]


_TEX_SYMBOLS = {
    "varepsilon": "ε", "epsilon": "ε", "delta": "δ", "sigma": "σ", "odot": "⊙", "cdot": "·",
    "times": "×", "top": "ᵀ", "sum": "Σ", "partial": "∂", "infty": "∞", "leq": "≤", "le": "≤",
    "geq": "≥", "ge": "≥", "rho": "ρ", "eta": "η", "theta": "θ", "gamma": "γ", "lambda": "λ",
    "alpha": "α", "beta": "β", "mu": "μ", "approx": "≈", "neq": "≠", "ne": "≠", "in": "∈",
    "to": "→", "ldots": "...", "cdots": "...", "dots": "...", "|": "‖",
}


def _plain_math(tex: str) -> str:
    """Inline TeX as readable plain text: $h_{t-1} \\odot \\delta_t$ -> h_(t-1) ⊙ δ_t."""
    text = re.sub(r"\\(?:operatorname|mathrm|text|mathbf|boldsymbol|mathcal)\{([^{}]*)\}",
                  r"\1", tex)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\(?:left|right|big|Big)(?![A-Za-z])", "", text)
    text = re.sub(r"\\(?:quad|qquad|[,;:! ])", " ", text)
    text = re.sub(r"\^\{?\\top\}?", "ᵀ", text)
    text = re.sub(r"\\([A-Za-z]+|\|)", lambda m: _TEX_SYMBOLS.get(m[1], m[1]), text)
    text = re.sub(r"([_^])\{([^{}]*)\}",
                  lambda m: m[1] + (m[2] if re.fullmatch(r"\w+", m[2]) else f"({m[2]})"), text)
    return " ".join(text.replace("{", "").replace("}", "").split())


def plain_text(text: str) -> str:
    """A stub's task without MyST or TeX: math as plain symbols, roles as their text."""
    text = re.sub(r"\$\$(.+?)\$\$", lambda m: _plain_math(m[1]), text, flags=re.S)
    text = re.sub(r"(?<![\\$])\$([^$]+?)\$", lambda m: _plain_math(m[1]), text)
    text = re.sub(r"\{eq\}`[^`]*`", "the equation in the chapter", text)
    text = re.sub(r"\{cite(?::\w+)?\}`[^`]*`", "", text)
    text = re.sub(r"\{(?:ref|numref|doc|term)\}`(?:([^`<]*?)\s*<[^`]*>|([^`]*))`",
                  lambda m: (m[1] or m[2]).strip(), text)
    return re.sub(r"\s+([,.;:])(?=\s|$)", r"\1", " ".join(text.split()))


def exercise_task(argument: str, body: str, names: Iterable[str] = ()) -> str | None:
    """The task of an exercise: its first sentence that names one of ``names`` (the
    functions the student writes), else its first sentence, else its title; in plain text."""
    sentences = exercise_sentences(body)
    for sentence in sentences:
        if any(re.search(rf"`{re.escape(name)}\b", sentence) for name in names):
            return plain_text(sentence)
    return plain_text(sentences[0]) if sentences else (plain_text(argument) or None)


def comment_task(source: str) -> str | None:
    """The task from a ``# TASK: ...`` comment block right above ``### BEGIN SOLUTION``."""
    lines = source.splitlines()
    begin = next((i for i, line in enumerate(lines) if BEGIN in line), None)
    if begin is None:
        return None
    block = []
    for line in reversed(lines[:begin]):
        if not line.strip().startswith("#"):
            break
        block.insert(0, line.strip().lstrip("#").strip())
    for start, text in enumerate(block):
        if text.startswith("TASK:"):
            return plain_text(" ".join([text.removeprefix("TASK:").strip(),
                                        *block[start + 1:]]).strip())
    return None


# --------------------------------------------------------------------------------------
# The preprocessors
# --------------------------------------------------------------------------------------


def _stub_preprocessor():
    from nbgrader.preprocessors import ClearSolutions

    class StubSolutions(ClearSolutions):
        """nbgrader's ClearSolutions on code cells, with a stub that restates the task."""

        def preprocess(self, nb, resources):
            self._exercise = None
            resources.setdefault("stubbed", [])
            return super().preprocess(nb, resources)

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "markdown":
                for name, argument, body, _, _ in directives(cell.source):
                    if name in ("exercise", "exercise-start"):
                        self._exercise = (argument, body)
                return cell, resources
            if cell.cell_type != "code" or BEGIN not in cell.source:
                return cell, resources
            tree = _parse(cell.source)  # what the answer defined is missing for students
            functions = [node.name for node in (tree.body if tree else [])
                         if isinstance(node, ast.FunctionDef)]
            task = (comment_task(cell.source)
                    or (self._exercise and exercise_task(*self._exercise, names=functions))
                    or DEFAULT_TASK)
            resources.setdefault("breaks", {})[cell.id] = bound_names(tree) if tree else set()
            self.code_stub = {**self.code_stub,
                              "python": f"# YOUR CODE HERE\nraise NotImplementedError({task!r})"}
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
            except RuntimeError as error:
                raise ValueError(f"cell {index}: {error} (every {BEGIN} needs its own {END})"
                                 ) from None
            resources["stubbed"].append(cell.id)
            return cell, resources

    return StubSolutions(enforce_metadata=False, begin_solution_delimeter=BEGIN,
                         end_solution_delimeter=END)


class RemoveWrittenSolutions(Preprocessor):
    """Remove sphinx-exercise solutions: ``{solution}`` blocks and gated solution cells."""

    def preprocess(self, nb, resources):
        kept, inside_gate, removed, removed_cells = [], False, 0, 0
        stubbed = set(resources.get("stubbed", []))
        breaks = resources.setdefault("breaks", {})
        missing: set[str] = set()  # names defined by removed cells, missing from here on
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                tagged = SOLUTION_TAG in cell.metadata.get("tags", [])
                if cell.get("id") in stubbed or not (inside_gate or tagged):
                    if cell.cell_type == "code" and missing:
                        breaks[cell.id] = breaks.get(cell.id, set()) | missing
                        missing = set()
                    kept.append(cell)
                    continue
                removed_cells += 1
                tree = _parse(cell.source) if cell.cell_type == "code" else None
                missing |= bound_names(tree) if tree else set()
                continue
            if SOLUTION_TAG in cell.metadata.get("tags", []):
                removed_cells += 1
                continue
            lines = cell.source.splitlines(keepends=True)
            drop: set[int] = set()
            gate_start = 0 if inside_gate else None
            for name, _, _, first, end in directives(cell.source):
                if name == "solution":
                    drop.update(range(first, end))
                    removed += 1
                elif name == "solution-start":
                    gate_start = first
                elif name == "solution-end":
                    drop.update(range(gate_start or 0, end))
                    gate_start, removed = None, removed + 1
            inside_gate = gate_start is not None
            if inside_gate:
                drop.update(range(gate_start, len(lines)))
            text = "".join(line for i, line in enumerate(lines) if i not in drop)
            text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
            if text.strip():
                cell.source = text
                kept.append(cell)
        nb.cells = kept
        resources["written_solutions_removed"] = removed
        resources["solution_cells_removed"] = removed_cells
        return nb, resources


def _parse(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at its top level (not inside function or class bodies)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def used_names(tree: ast.Module) -> set[str]:
    return {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


class TagRaisingCells(Preprocessor):
    """Tag the stubbed cells, and the later cells that use what they define, raises-exception."""

    def preprocess(self, nb, resources):
        stubbed = set(resources.get("stubbed", []))
        breaks = resources.get("breaks", {})
        broken: set[str] = set()
        tagged = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            broken |= breaks.get(cell.id, set())
            tree = _parse(cell.source)
            is_stub = cell.id in stubbed
            uses_broken = tree is not None and bool(used_names(tree) & broken)
            if is_stub or uses_broken:
                tags = cell.metadata.setdefault("tags", [])
                if RAISES not in tags:
                    tags.append(RAISES)
                tagged.append(index)
                if tree is not None:
                    broken |= bound_names(tree)
            elif tree is not None:
                broken -= bound_names(tree)  # rebound by a cell that works
        resources["tagged"] = tagged
        return nb, resources


class PointInstallAt(Preprocessor):
    """Point the Colab setup cell's install line at the student repository and branch."""

    url = Unicode("").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and self.url:
            cell.source = retarget.INSTALL_PATTERN.sub(self.url, cell.source)
        return cell, resources


def exercise_functions(notebook: nbformat.NotebookNode) -> list[str]:
    """The functions the student writes: those defined in cells with solution markers."""
    names: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            tree = _parse(cell.source)
            names += [node.name for node in (tree.body if tree else [])
                      if isinstance(node, ast.FunctionDef) and node.name not in names]
    return names


def _tail_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # x?? as a magic
        return node.value.rpartition(".")[2]
    return None


def printed_sources(source: str, functions: Iterable[str]) -> list[str]:
    """The functions among ``functions`` (or their ``_kernels``) whose source a cell shows:
    ``inspect.getsource(f)``, a ``show_source(f)`` helper, ``f??``."""
    wanted = {name.lstrip("_") for name in functions}
    tree = _parse(source)
    shown = []
    for node in ast.walk(tree) if tree else []:
        if not isinstance(node, ast.Call) or not node.args:
            continue
        called = _tail_name(node.func) or ""
        argument = node.args[-1] if called == "run_line_magic" else node.args[0]
        if called == "run_line_magic":
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and str(first.value).startswith("pinfo")):
                continue
        elif "source" not in called:
            continue
        name = _tail_name(argument)
        if name and name.lstrip("_") in wanted:
            shown.append(name)
    return shown


def _check_calls(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """function name -> the ``check_*`` called on it."""
    found: dict[str, str] = {}
    for cell in notebook.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else []:
            called = _tail_name(node.func) if isinstance(node, ast.Call) else None
            if called and called.startswith("check_") and node.args and \
                    isinstance(node.args[0], ast.Name):
                found.setdefault(node.args[0].id, called)
    return found


def reference_lines(notebook: nbformat.NotebookNode) -> dict[str, set[str]]:
    """For each exercise with a check: the lines of the library functions that compute its
    answer, whitespace normalised (what a chapter must not quote to students)."""
    import importlib
    import inspect

    try:
        from throughtime import checks
    except ImportError:
        return {}
    found: dict[str, set[str]] = {}
    for function, check in _check_calls(notebook).items():
        if check not in getattr(checks, "CHECKS", ()):
            continue
        spec = checks._spec(check)  # only the library's own version of the answer
        references = [r for r in spec.references if r.rpartition(".")[2].lstrip("_") == spec.role]
        references += [f"{r.rpartition('.')[0]}._{r.rpartition('.')[2]}" for r in references]
        lines: set[str] = set()
        for dotted in references:
            module, _, attribute = dotted.rpartition(".")
            try:
                target = getattr(importlib.import_module(module), attribute)
                lines |= {" ".join(line.split()) for line in
                          inspect.getsource(target).splitlines() if line.strip()}
            except (ImportError, AttributeError, OSError, TypeError):
                continue
        found[function] = lines
    return found


def quoted_reference(text: str, lines: set[str]) -> list[str]:
    """The code spans and code lines of Markdown ``text`` that quote one of ``lines``."""
    pieces = re.findall(r"`([^`\n]+)`", text) + [line for block in re.findall(
        r"```[^\n]*\n(.*?)```", text, re.S) for line in block.splitlines()]
    quoted = []
    for piece in (" ".join(p.split()) for p in pieces):
        if len(piece) >= 12 and re.search(r"[=@*(]", piece) and \
                any(piece in line for line in lines) and piece not in quoted:
            quoted.append(piece)
    return quoted


def _solution_text(notebook: nbformat.NotebookNode) -> tuple[str, str]:
    """(the written solutions' Markdown, the rest of the Markdown) of an instructor notebook."""
    solutions, rest = [], []
    gated = False
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            solutions.append(cell.source)
            continue
        lines = cell.source.splitlines()
        inside = [gated] * len(lines)
        for name, _, _, first, end in directives(cell.source):
            if name == "solution":
                inside[first:end] = [True] * (end - first)
            elif name == "solution-start":
                gated = True
                inside[first:] = [True] * (len(lines) - first)
            elif name == "solution-end":
                gated = False
                inside[:end] = [True] * end
                inside[end:] = [False] * (len(lines) - end)
        solutions += [line for line, hide in zip(lines, inside, strict=True) if hide]
        rest += [line for line, hide in zip(lines, inside, strict=True) if not hide]
    return "\n".join(solutions), "\n".join(rest)


def hidden_answer_cells(instructor: nbformat.NotebookNode,
                        student: nbformat.NotebookNode) -> list[tuple[int, list[str]]]:
    """Cells hidden on the website (``remove-cell``) but kept for students whose values only
    the removed solutions use: (the cell's number in the instructor notebook, the names)."""
    solutions, _ = _solution_text(instructor)
    kept_markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    in_solutions = set(GLUE_REFERENCE.findall(solutions))
    in_text = set(GLUE_REFERENCE.findall(kept_markdown))
    kept_ids = {cell.get("id") for cell in student.cells}
    number = {cell.get("id"): index for index, cell in enumerate(instructor.cells)}
    removed_loads: set[str] = set()
    for cell in instructor.cells:
        if cell.cell_type == "code" and cell.get("id") not in kept_ids:
            tree = _parse(cell.source)
            removed_loads |= used_names(tree) if tree else set()
    loads = {}
    for cell in student.cells:
        if cell.cell_type == "code":
            tree = _parse(cell.source)
            loads[cell.get("id")] = used_names(tree) if tree else set()
    found = []
    for cell in student.cells:
        if cell.cell_type != "code" or "remove-cell" not in cell.metadata.get("tags", []):
            continue
        glued = set(GLUE_CALL.findall(cell.source))
        if glued and glued <= in_solutions and not glued & in_text:
            found.append((number.get(cell.get("id"), -1), sorted(glued)))
            continue
        if glued & in_text:
            continue  # the chapter's own text uses what it computes
        tree = _parse(cell.source)
        bound = bound_names(tree) if tree else set()
        elsewhere = set().union(*(v for k, v in loads.items() if k != cell.get("id")))
        if bound & removed_loads and not bound & (elsewhere | in_text):
            found.append((number.get(cell.get("id"), -1), sorted(bound & removed_loads)))
    return found


def student_notebook(notebook: nbformat.NotebookNode,
                     install_url: str = "") -> tuple[nbformat.NotebookNode, dict]:
    """The student version of a chapter notebook, and a report of what was changed.

    Raises ``ValueError`` (naming the cell) when the result would still show an answer that
    the conventions cannot remove by themselves.
    """
    from nbgrader.preprocessors import ClearOutput

    notebook = copy.deepcopy(notebook)
    if notebook.nbformat_minor < 5:  # cell ids (nbformat 4.5) identify the stubbed cells
        notebook.nbformat_minor = 5
    for cell in notebook.cells:
        cell.setdefault("id", random_cell_id())
    instructor = copy.deepcopy(notebook)
    functions = exercise_functions(notebook)
    printed = []
    for index, cell in enumerate(notebook.cells):
        shown = printed_sources(cell.source, functions) if cell.cell_type == "code" else []
        if shown and BEGIN not in cell.source and SOLUTION_TAG not in cell.metadata.get("tags",
                                                                                       []):
            tree = _parse(cell.source)
            later = set().union(*(used_names(t) for t in (
                _parse(c.source) for c in notebook.cells[index + 1:] if c.cell_type == "code")
                if t is not None))
            needed = (bound_names(tree) if tree else set()) & later
            if needed:
                raise ValueError(f"cell {index} shows the source of {shown[0]}, the answer to an "
                                 f"exercise, and defines {', '.join(sorted(needed))}, which later "
                                 f"cells use: move that to another cell and tag this one "
                                 f"'{SOLUTION_TAG}'")
            cell.metadata.setdefault("tags", []).append(SOLUTION_TAG)
            printed.append(f"cell {index} ({shown[0]})")
    references = reference_lines(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown" or SOLUTION_TAG in cell.metadata.get("tags", []):
            continue
        for function, lines in references.items():
            quoted = quoted_reference(cell.source, lines)
            if len(quoted) >= 3:
                raise ValueError(
                    f"cell {index} quotes {len(quoted)} lines of the library code that answers "
                    f"the exercise {function} ({', '.join(repr(q) for q in quoted[:3])}, ...): "
                    f"tag it '{SOLUTION_TAG}' so that the student edition leaves it out")
    exporter = NotebookExporter()
    for preprocessor in (_stub_preprocessor(), RemoveWrittenSolutions(), TagRaisingCells(),
                         ClearOutput(), PointInstallAt(url=install_url)):
        exporter.register_preprocessor(preprocessor, enabled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        text, resources = exporter.from_notebook_node(notebook, resources={})
    student = nbformat.reads(text, as_version=4)
    nbformat.validate(student)
    hidden = hidden_answer_cells(instructor, student)
    if hidden:
        index, names = hidden[0]
        raise ValueError(f"cell {index} is tagged remove-cell (hidden on the website) but stays in "
                         f"the student notebook, and what it computes ({', '.join(names)}) only "
                         f"the removed solutions use: tag it '{SOLUTION_TAG}' so that the student "
                         "edition leaves it out")
    resources["sources_removed"] = printed
    return student, resources


# --------------------------------------------------------------------------------------
# Checking that no solution survives
# --------------------------------------------------------------------------------------


def _cell_lines(notebook: nbformat.NotebookNode) -> Iterator[tuple[bool, str]]:
    """(inside a solution region?, stripped line) for every line of every cell."""
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            if cell.cell_type == "code" and BEGIN in line:
                inside = True
            elif cell.cell_type == "code" and END in line:
                inside = False
            elif line.strip():
                yield inside, line.strip()


def surviving_solution_lines(instructor: nbformat.NotebookNode,
                             student: nbformat.NotebookNode) -> list[str]:
    """Solution lines that the student edition shows more often than the chapter's own text.

    A line between the markers may also appear, legitimately, elsewhere in the chapter (an
    import, ``params = cache["params"]``); it survives if the student edition has it more
    times than the instructor edition has it outside the solution regions.
    """
    outside = Counter(line for inside, line in _cell_lines(instructor) if not inside)
    solution = {line for inside, line in _cell_lines(instructor) if inside}
    shown = Counter(line for _, line in _cell_lines(student))
    return sorted(line for line in solution if shown[line] > outside[line])


def remaining_solution_blocks(student: nbformat.NotebookNode) -> list[str]:
    return [f"cell {i}: {{{name}}} {argument}" for i, cell in enumerate(student.cells)
            if cell.cell_type == "markdown"
            for name, argument, *_ in directives(cell.source)
            if name in ("solution", "solution-start", "solution-end")]


# --------------------------------------------------------------------------------------
# The student tree
# --------------------------------------------------------------------------------------


def repository_files(root: Path, out: Path) -> list[Path]:
    """The files of the repository: git's list when ``root`` is a checkout, else a walk."""
    if (root / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard",
                                 "-z"], check=True, capture_output=True, text=True).stdout
        files = [Path(name) for name in listed.split("\0") if name]
    else:
        files = [path.relative_to(root) for path in root.rglob("*") if path.is_file()
                 and not SKIP & set(path.relative_to(root).parts)]
    out_relative = out.resolve().relative_to(root.resolve()) if out.resolve().is_relative_to(
        root.resolve()) else None
    return [f for f in files if (root / f).is_file() and not SKIP & set(f.parts)
            and not (out_relative and f.is_relative_to(out_relative))]


def toc_chapters(toc: Any) -> list[str]:
    """Every ``file:`` entry of a _toc.yml, in order."""
    found = []
    if isinstance(toc, dict):
        if isinstance(toc.get("file"), str):
            found.append(toc["file"])
        for value in toc.values():
            found += toc_chapters(value)
    elif isinstance(toc, list):
        for item in toc:
            found += toc_chapters(item)
    return found


def prune_toc(toc: Any, drop: set[str]) -> Any:
    """_toc.yml without the entries whose ``file`` is in ``drop`` (empty parts removed)."""
    if isinstance(toc, list):
        kept = [prune_toc(item, drop) for item in toc
                if not (isinstance(item, dict) and item.get("file") in drop)]
        return [item for item in kept
                if not (isinstance(item, dict) and "chapters" in item and not item["chapters"]
                        and "file" not in item)]
    if isinstance(toc, dict):
        return {key: prune_toc(value, drop) for key, value in toc.items()}
    return toc


def select_chapters(notebooks: list[Path], wanted: Iterable[str] | None) -> list[Path]:
    if not wanted:
        return notebooks
    chosen = []
    for name in wanted:
        matches = [nb for nb in notebooks if nb.stem == name or nb.stem.startswith(name)]
        if not matches:
            raise SystemExit(f"--chapters: no chapter matches {name!r}; chapters are "
                             f"{[nb.stem for nb in notebooks]}")
        chosen += [m for m in matches if m not in chosen]
    return [nb for nb in notebooks if nb in chosen]


def _clear(out: Path) -> None:
    """Empty ``out`` but keep its _build (the execution cache) and .git (a student branch)."""
    out.mkdir(parents=True, exist_ok=True)
    for child in out.iterdir():
        if child.name in ("_build", ".git"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def student_config(text: str, repo: str, branch: str) -> str:
    """The student edition's ``_config.yml``: the instructor's, line by line, comments kept,
    with the student repository and branch and the written solutions hidden."""
    text = retarget.retarget_config(text, repo, branch)
    # When the book opens its launch buttons on another branch (the reader notebooks'), the
    # student edition opens the student branch.
    text = re.sub(r"(?m)^(\s+repository_branch:\s*)\S+", rf"\g<1>{branch}", text)
    if re.search(r"(?m)^\s+hide_solutions:", text):
        text = re.sub(r"(?m)^(\s+hide_solutions:\s*)\S+", r"\g<1>true", text)
    else:
        text, count = re.subn(r"(?m)^(  config:[ \t]*\n)",
                              "\\g<1>    # sphinx-exercise: the student edition keeps the "
                              "exercises and hides their solutions.\n    hide_solutions: true\n",
                              text, count=1)
        if count != 1:
            raise SystemExit("_config.yml needs a 'sphinx:' block with a 'config:' section "
                             "(two spaces in) for the student edition's hide_solutions")
    header = ("# The student edition, written by scripts/make_assignments.py from the book's\n"
              "# _config.yml: solutions removed and hidden, launch buttons and installs on the\n"
              "# student repository and branch. Edit the book's file, not this one.\n")
    text = header + text
    parsed = yaml.safe_load(text)
    launch = (parsed.get("sphinx", {}).get("config", {}).get("html_theme_options", {})
              .get("repository_branch", branch))
    if (parsed["repository"]["url"] != f"https://github.com/{repo}"
            or str(parsed["repository"]["branch"]) != branch or str(launch) != branch
            or parsed["sphinx"]["config"].get("hide_solutions") is not True):
        raise SystemExit("the student _config.yml did not come out as intended; check the "
                         "book's repository and sphinx.config blocks")
    return text


def uncommitted_files(root: Path, files: Iterable[Path]) -> list[str]:
    """Files of the student edition that differ from the instructor's last commit."""
    if not (root / ".git").exists() or not shutil.which("git"):
        return []
    listed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-z",
                             "--untracked-files=all"], capture_output=True, text=True).stdout
    changed = {entry[3:] for entry in listed.split("\0") if len(entry) > 3}
    return sorted(str(f) for f in files if str(f) in changed)


def build_wheel(root: Path, into: Path) -> Path:
    """The library's wheel (pure Python, no dependencies bundled), built into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as source:  # setuptools writes build/ beside sources
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, Path(source) / name)
        shutil.copytree(root / "lib", Path(source) / "lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                                "--no-build-isolation", "--wheel-dir", str(into), source],
                               capture_output=True, text=True)
    wheels = sorted(into.glob("throughtime-*.whl"))
    if built.returncode != 0 or not wheels:
        raise SystemExit(f"the library's wheel could not be built:\n{built.stderr[-2000:]}")
    return wheels[-1]


def make_student_edition(root: Path, out: Path, *, repo: str | None = None,
                         branch: str | None = None, chapters: Iterable[str] | None = None,
                         install_url: str | None = None,
                         wheel_url: str | None = None) -> dict[str, dict]:
    """Write the student edition of the book at ``root`` into ``out``; return a report."""
    root, out = root.resolve(), out.resolve()
    if out == root:
        raise SystemExit("--out must not be the repository itself")
    config_text = (root / "_config.yml").read_text()
    config = yaml.safe_load(config_text)
    repository = config.get("repository", {})
    book_repo = repository.get("url", "").removeprefix("https://github.com/").rstrip("/")
    book_branch = str(repository.get("branch", "main"))
    launch_branch = str(config.get("sphinx", {}).get("config", {})
                        .get("html_theme_options", {}).get("repository_branch", book_branch))
    repo, branch = repo or book_repo, branch or DEFAULT_BRANCH
    if not retarget.REPO_PATTERN.match(repo) or not retarget.BRANCH_PATTERN.match(branch):
        raise SystemExit(f"the student repository must look like ORG/NAME and the branch like "
                         f"a git branch name, got {repo!r} and {branch!r}")
    if repo == book_repo and branch in (book_branch, launch_branch):
        raise SystemExit(f"the student edition would open its launch buttons and install from "
                         f"{repo} at {branch}, where the instructor's notebooks, with every "
                         "answer, live; choose a branch for students (the default is "
                         f"'{DEFAULT_BRANCH}') or another repository")
    notebooks = sorted((root / "chapters").glob("*.ipynb"))
    chosen = select_chapters(notebooks, chapters)

    _clear(out)
    files = repository_files(root, out)
    for relative in files:
        if relative.parts[0] == "chapters" and relative.suffix == ".ipynb":
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    copied = [f for f in files if not (f.parts[0] == "chapters" and f.suffix == ".ipynb")]
    changed = uncommitted_files(root, [*copied, *(p.relative_to(root) for p in chosen)])
    if changed:
        listed = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8
                                           else "")
        print(f"warning: the student edition is made from the files on disk, and "
              f"{len(changed)} of them differ from the last commit ({listed}); commit them "
              "first unless they are meant for students as they are", file=sys.stderr)

    if wheel_url:
        wheel = build_wheel(root, out / "_static")
        install_url = wheel_url + wheel.name if wheel_url.endswith("/") else wheel_url
    install_url = install_url or retarget.install_url(repo, branch)
    report = {}
    for path in chosen:
        instructor = nbformat.read(path, as_version=4)
        try:
            student, resources = student_notebook(instructor, install_url)
        except ValueError as error:
            raise SystemExit(f"{path.relative_to(root)}: {error}") from None
        survivors = surviving_solution_lines(instructor, student)
        blocks = remaining_solution_blocks(student)
        if survivors or blocks:
            raise SystemExit(f"{path.relative_to(root)}: the student edition still shows "
                             f"solution lines {survivors[:5]} or blocks {blocks[:5]}")
        student.metadata["throughtime"] = {"chapter": path.stem, "edition": "student"}
        target = out / "chapters" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        report[path.name] = {"stubbed": len(resources["stubbed"]),
                             "written": resources["written_solutions_removed"],
                             "cells": resources["solution_cells_removed"],
                             "tagged": resources["tagged"],
                             "sources_removed": resources["sources_removed"]}

    (out / "_config.yml").write_text(student_config(config_text, repo, branch))
    toc_path = root / "_toc.yml"
    if toc_path.exists():
        dropped = {f"chapters/{nb.stem}" for nb in notebooks if nb not in chosen}
        toc = prune_toc(yaml.safe_load(toc_path.read_text()), dropped)
        (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        listed = set(toc_chapters(toc))
        for path in chosen:
            report[path.name]["in_toc"] = f"chapters/{path.stem}" in listed
    leaked = [str(p.relative_to(out)) for p in out.rglob("*")
              if p.name == "secret.txt" or "instructor" in p.relative_to(out).parts[:1]]
    if leaked:
        raise SystemExit(f"instructor-only files reached the student edition: {leaked[:5]}")
    return report


def build_website(out: Path) -> None:
    """Build the student edition's website (warnings are errors, every notebook executed)."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build", str(out),
               "--warningiserror", "--nitpick", "--keep-going"]
    subprocess.run(command, check=True)


READER = Path(__file__).with_name("reader_notebooks.py")


def reader_edition(root: Path, out: Path, chapters: Iterable[str]) -> list[str]:
    """Replace the student chapters by reader notebooks (no MyST markup), made from the
    student website's build by ``scripts/reader_notebooks.py`` when the book has it.

    The reader notebooks are what Colab opens from the student branch and what the student
    website offers as downloads. Each is checked again for surviving answers. Returns the
    chapters converted; without the converter, or if it fails, the chapters stay as they
    are (MyST source: exercises readable, markup visible) and a warning says so.
    """
    chapters = list(chapters)
    if not READER.exists():
        print("note: scripts/reader_notebooks.py is not in this book, so the student notebooks "
              "keep their MyST markup", file=sys.stderr)
        return []
    notebooks = out / "_build" / "notebooks"
    result = subprocess.run([sys.executable, str(READER), "--root", str(out), "--build",
                             str(out / "_build"), "--out", str(notebooks), "--chapters",
                             *chapters], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"warning: the reader notebooks could not be made, so the student notebooks keep "
              f"their MyST markup:\n{result.stderr[-2000:]}", file=sys.stderr)
        return []
    converted = []
    for stem in chapters:
        reader = notebooks / "chapters" / f"{stem}.ipynb"
        if not reader.exists():
            continue
        instructor = nbformat.read(root / "chapters" / f"{stem}.ipynb", as_version=4)
        notebook = nbformat.read(reader, as_version=4)
        survivors = surviving_solution_lines(instructor, notebook)
        if survivors or remaining_solution_blocks(notebook):
            raise SystemExit(f"chapters/{stem}.ipynb: the reader notebook still shows solution "
                             f"lines {survivors[:5]}")
        notebook.metadata["throughtime"] = {"chapter": stem, "edition": "student"}
        nbformat.write(notebook, out / "chapters" / f"{stem}.ipynb")
        converted.append(stem)
    return converted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book (default: this one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the student edition goes (default: _build/student/book)")
    parser.add_argument("--repo", help="student repository ORG/NAME (default: _config.yml's)")
    parser.add_argument("--branch", default=DEFAULT_BRANCH,
                        help=f"student branch (default: {DEFAULT_BRANCH})")
    parser.add_argument("--chapters", nargs="*", help="chapter names or number prefixes")
    parser.add_argument("--html", type=Path, help="also build the student website into this")
    install = parser.add_mutually_exclusive_group()
    install.add_argument("--wheel-url", help="serve the library's wheel with the student website "
                         "and install it from this URL (a private repository needs no access)")
    install.add_argument("--install-url", help="the pip URL the setup cells install from")
    args = parser.parse_args(argv)

    report = make_student_edition(args.root, args.out, repo=args.repo, branch=args.branch,
                                  chapters=args.chapters, install_url=args.install_url,
                                  wheel_url=args.wheel_url)
    for name, done in report.items():
        print(f"{name}: {done['stubbed']} code exercise(s) stubbed, {done['written']} written "
              f"solution(s) and {done['cells']} solution cell(s) removed, cells "
              f"{done['tagged']} tagged {RAISES}")
        for removed in done["sources_removed"]:
            print(f"{name}: {removed} printed an exercise's answer and was left out")
        if not done.get("in_toc", True):
            print(f"warning: {name} is not in _toc.yml, so the student website leaves it out",
                  file=sys.stderr)
    config = yaml.safe_load((args.out / "_config.yml").read_text())["repository"]
    print(f"Student edition in {args.out}: launch buttons open {config['url']} at branch "
          f"{config['branch']}.")
    wheels = sorted((args.out / "_static").glob("throughtime-*.whl")) if args.wheel_url else []
    if wheels:
        print(f"The setup cells install the library from {args.wheel_url}"
              f"{wheels[0].name if args.wheel_url.endswith('/') else ''}: publish the student "
              f"website there (the wheel is {wheels[0].relative_to(args.out)}).")
    if args.html:
        build_website(args.out)
        converted = reader_edition(args.root.resolve(), args.out.resolve(),
                                   [Path(name).stem for name in report])
        if converted:
            print(f"Reader notebooks (no MyST markup) for {', '.join(converted)}.")
        if args.html.exists():
            shutil.rmtree(args.html)
        shutil.copytree(args.out / "_build" / "html", args.html)
        print(f"Student website in {args.html} -- open {args.html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
