"""The teaching page states what the chapters hold: its tables are checked against them.

The page's measured facts (words of prose, code cells, the exercises and the size of each
code exercise's reference answer) are recomputed here from the chapter notebooks; when a
chapter changes, this test says which row of the page to update.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "teaching.md").read_text()
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

spec = importlib.util.spec_from_file_location("make_assignments",
                                              ROOT / "scripts" / "make_assignments.py")
make_assignments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_assignments)


def prose_words(notebook: nbformat.NotebookNode) -> int:
    """Words of the Markdown cells outside equations, directive options and fences."""
    words = 0
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\$\$.*?\$\$", " ", cell.source, flags=re.S)
        text = re.sub(r"\$[^$]*\$", " x ", text)
        lines = [line for line in text.splitlines()
                 if not re.match(r"\s*(:\w[\w-]*:|```|:::|\(\S+\)=)", line)]
        words += len(re.findall(r"[A-Za-z][A-Za-z'’-]*", "\n".join(lines)))
    return words


def exercises(notebook: nbformat.NotebookNode) -> dict[str, str | None]:
    """label -> the check of its code exercise (None for a written one)."""
    checks = make_assignments._check_calls(notebook)
    found: dict[str, str | None] = {}
    cells = notebook.cells
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        labels = [re.search(r":label:\s*(\S+)", body)[1]
                  for name, _, body, _, _ in make_assignments.directives(cell.source)
                  if name == "exercise" and ":label:" in body]
        found.update(dict.fromkeys(labels))
        if labels:  # the code cells after a Markdown cell answer its last exercise
            for later in cells[index + 1:]:
                if later.cell_type == "markdown" and "{exercise}" in later.source:
                    break
                if later.cell_type == "code" and make_assignments.BEGIN in later.source:
                    function = re.search(r"^def (\w+)", later.source, re.M)
                    if function:
                        found[labels[-1]] = checks.get(function[1], f"check_{function[1]}")
                    break
    return found


def answer_lines(notebook: nbformat.NotebookNode) -> dict[str, int]:
    sizes = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and make_assignments.BEGIN in cell.source:
            inside = cell.source.split(make_assignments.BEGIN)[1].split(make_assignments.END)[0]
            lines = [line for line in inside.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
            for function in re.findall(r"^def (\w+)", cell.source, re.M):
                sizes[function] = len(lines)
    return sizes


def _table(heading: str) -> list[list[str]]:
    section = PAGE.split(heading, 1)[1]
    rows = re.findall(r"^\|(.*)\|$", section.split("\n## ", 1)[0], re.M)
    return [[c.strip() for c in row.split("|")] for row in rows[2:]]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_words_and_code_cells(path):
    notebook = nbformat.read(path, as_version=4)
    number = str(int(path.stem[:2]))
    row = next(r for r in _table("## How long each chapter takes") if r[0] == number)
    words = prose_words(notebook)
    stated = int(row[1].replace(",", ""))
    assert abs(stated - words) <= 100, f"chapter {number}: {words} words, the page says {stated}"
    assert int(row[2].split()[0]) == round(stated / 120), "reading time at 120 words a minute"
    cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    assert int(row[3]) == cells, f"chapter {number}: {cells} code cells, the page says {row[3]}"


def test_every_exercise_is_listed_with_its_kind_and_size():
    rows = _table("## The exercises, and how long they take")
    listed = {re.search(r"`(ex-[\w-]+)`", r[1])[1]: r for r in rows}
    expected: dict[str, str | None] = {}
    sizes: dict[str, int] = {}
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        expected.update(exercises(notebook))
        sizes.update(answer_lines(notebook))
    assert set(listed) == set(expected), (set(listed) ^ set(expected))
    for label, check in expected.items():
        kind, size = listed[label][2], listed[label][3]
        if check is None:
            assert "check_" not in kind and not size, label
        else:
            assert f"`{check}`" in kind, (label, check, kind)
            function = check.removeprefix("check_")
            match = re.match(r"(\d+) lines?", size)
            if function in sizes:
                assert match and int(match[1]) == sizes[function], (label, sizes[function], size)


def test_every_written_exercise_has_a_rubric():
    rubric = {re.search(r"`(ex-[\w-]+)`", r[0])[1] for r in _table("## Grading the written")
              if re.search(r"`(ex-[\w-]+)`", r[0])}
    written = set()
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        for label, check in exercises(notebook).items():
            body = next(body for cell in notebook.cells if cell.cell_type == "markdown"
                        for name, _, body, _, _ in make_assignments.directives(cell.source)
                        if name == "exercise" and f":label: {label}" in body)
            if check is None or re.search(r"^\s*1\.", body, re.M):  # written parts too
                written.add(label)
    assert written - rubric == set(), written - rubric
    assert rubric - written == set(), rubric - written
