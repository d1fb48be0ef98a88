"""Make the student edition of the book: exercises without their answers.

    python scripts/make_assignments.py [--out _build/student/book] [--branch BRANCH]
                                       [--repo ORG/NAME] [--chapters 01 03 ...]
                                       [--html _build/student/html]

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
5. ``PointInstallAt``: the Colab setup cell installs the library from the student
   repository and branch.

``_config.yml`` is rewritten with the student branch and sphinx-exercise's
``hide_solutions: True``; ``_toc.yml`` keeps only the chosen chapters. With ``--html`` the
student website is built with Jupyter Book (warnings are errors, cells executed) and copied
there. Finally the script checks that no line of any solution survives.
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
        ".ipynb_checkpoints", "_student", "node_modules"}


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


def exercise_task(argument: str, body: str, names: Iterable[str] = ()) -> str | None:
    """The task of an exercise: its first sentence that names one of ``names`` (the
    functions the student writes), else its first sentence, else its title."""
    sentences = exercise_sentences(body)
    for sentence in sentences:
        if any(re.search(rf"`{re.escape(name)}\b", sentence) for name in names):
            return sentence
    return sentences[0] if sentences else (argument or None)


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
            return " ".join([text.removeprefix("TASK:").strip(), *block[start + 1:]]).strip()
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


def student_notebook(notebook: nbformat.NotebookNode,
                     install_url: str = "") -> tuple[nbformat.NotebookNode, dict]:
    """The student version of a chapter notebook, and a report of what was changed."""
    from nbgrader.preprocessors import ClearOutput

    notebook = copy.deepcopy(notebook)
    if notebook.nbformat_minor < 5:  # cell ids (nbformat 4.5) identify the stubbed cells
        notebook.nbformat_minor = 5
    for cell in notebook.cells:
        cell.setdefault("id", random_cell_id())
    exporter = NotebookExporter()
    for preprocessor in (_stub_preprocessor(), RemoveWrittenSolutions(), TagRaisingCells(),
                         ClearOutput(), PointInstallAt(url=install_url)):
        exporter.register_preprocessor(preprocessor, enabled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        text, resources = exporter.from_notebook_node(notebook, resources={})
    student = nbformat.reads(text, as_version=4)
    nbformat.validate(student)
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


def make_student_edition(root: Path, out: Path, *, repo: str | None = None,
                         branch: str | None = None,
                         chapters: Iterable[str] | None = None) -> dict[str, dict]:
    """Write the student edition of the book at ``root`` into ``out``; return a report."""
    root, out = root.resolve(), out.resolve()
    if out == root:
        raise SystemExit("--out must not be the repository itself")
    config = yaml.safe_load((root / "_config.yml").read_text())
    repository = config.setdefault("repository", {})
    repo = repo or repository.get("url", "").removeprefix("https://github.com/").rstrip("/")
    branch = branch or repository.get("branch", "main")
    if not retarget.REPO_PATTERN.match(repo) or not retarget.BRANCH_PATTERN.match(branch):
        raise SystemExit(f"the student repository must look like ORG/NAME and the branch like "
                         f"a git branch name, got {repo!r} and {branch!r}")
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

    report = {}
    for path in chosen:
        instructor = nbformat.read(path, as_version=4)
        try:
            student, resources = student_notebook(instructor, retarget.install_url(repo, branch))
        except ValueError as error:
            raise SystemExit(f"{path.relative_to(root)}: {error}") from None
        survivors = surviving_solution_lines(instructor, student)
        blocks = remaining_solution_blocks(student)
        if survivors or blocks:
            raise SystemExit(f"{path.relative_to(root)}: the student edition still shows "
                             f"solution lines {survivors[:5]} or blocks {blocks[:5]}")
        target = out / "chapters" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        report[path.name] = {"stubbed": len(resources["stubbed"]),
                             "written": resources["written_solutions_removed"],
                             "cells": resources["solution_cells_removed"],
                             "tagged": resources["tagged"]}

    repository.update({"url": f"https://github.com/{repo}", "branch": branch})
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    header = ("# The student edition, written by scripts/make_assignments.py: solutions removed\n"
              "# and hidden, launch buttons and Colab installs on the student branch.\n")
    (out / "_config.yml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    toc_path = root / "_toc.yml"
    if toc_path.exists():
        dropped = {f"chapters/{nb.stem}" for nb in notebooks if nb not in chosen}
        toc = prune_toc(yaml.safe_load(toc_path.read_text()), dropped)
        (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        listed = set(toc_chapters(toc))
        for path in chosen:
            report[path.name]["in_toc"] = f"chapters/{path.stem}" in listed
    return report


def build_website(out: Path, html: Path) -> None:
    """Build the student edition's website (warnings are errors) and copy it to ``html``."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build", str(out),
               "--warningiserror", "--nitpick", "--keep-going"]
    subprocess.run(command, check=True)
    if html.exists():
        shutil.rmtree(html)
    shutil.copytree(out / "_build" / "html", html)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book (default: this one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the student edition goes (default: _build/student/book)")
    parser.add_argument("--repo", help="student repository ORG/NAME (default: _config.yml's)")
    parser.add_argument("--branch", help="student branch (default: _config.yml's)")
    parser.add_argument("--chapters", nargs="*", help="chapter names or number prefixes")
    parser.add_argument("--html", type=Path, help="also build the student website into this")
    args = parser.parse_args(argv)

    report = make_student_edition(args.root, args.out, repo=args.repo, branch=args.branch,
                                  chapters=args.chapters)
    for name, done in report.items():
        print(f"{name}: {done['stubbed']} code exercise(s) stubbed, {done['written']} written "
              f"solution(s) and {done['cells']} solution cell(s) removed, cells "
              f"{done['tagged']} tagged {RAISES}")
        if not done.get("in_toc", True):
            print(f"warning: {name} is not in _toc.yml, so the student website leaves it out",
                  file=sys.stderr)
    config = yaml.safe_load((args.out / "_config.yml").read_text())["repository"]
    print(f"Student edition in {args.out}: launch buttons and Colab installs use "
          f"{config['url']} at branch {config['branch']}.")
    if args.html:
        build_website(args.out, args.html)
        print(f"Student website in {args.html} -- open {args.html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
