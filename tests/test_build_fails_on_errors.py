"""A failing cell must fail both the website build and nbval, naming notebook and cell.

Builds a one-page scratch book with the project's own _config.yml, so a change to the
execution settings (allow_errors, raise_on_error) that would let a broken chapter publish
is caught here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def broken_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Broken on purpose"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell('assert x == 2, "deliberately failing claim"'),
    ]
    nbformat.write(notebook, path)


@pytest.fixture
def scratch_book(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(ROOT / "references.bib", tmp_path / "references.bib")
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext")  # the book's Sphinx extension
    (tmp_path / "intro.md").write_text("# Scratch\n\nA scratch book.\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: broken\n"
    )
    broken_notebook(tmp_path / "broken.ipynb")
    return tmp_path


def test_book_build_fails_and_names_the_notebook_and_cell(scratch_book: Path):
    result = subprocess.run(
        [str(BIN / "jupyter-book"), "build", str(scratch_book), "--warningiserror",
         "--nitpick", "--keep-going"],
        capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"the build passed despite a failing cell:\n{output[-3000:]}"
    assert "broken" in output, f"the build output does not name the notebook:\n{output[-3000:]}"
    assert "deliberately failing claim" in output, (
        f"the build output does not show the failing cell:\n{output[-3000:]}"
    )


def test_nbval_fails_and_names_the_cell(scratch_book: Path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider",
         str(scratch_book / "broken.ipynb")],
        capture_output=True, text=True, timeout=300, cwd=scratch_book,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"nbval passed despite a failing cell:\n{output[-3000:]}"
    # nbval counts code cells from 0: the failing assert is the second code cell.
    assert "broken.ipynb::Cell 1" in output, f"nbval does not name the cell:\n{output[-3000:]}"
    assert "deliberately failing claim" in output
