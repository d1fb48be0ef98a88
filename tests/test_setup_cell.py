"""The chapters' setup cell (scripts/setup_cell.py): its text and the command that applies it.

What the cell does in a fresh environment without the library (installs it, or says what to
do) is tested with a downloaded notebook in tests/test_reader_notebooks.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("setup_cell", ROOT / "scripts" / "setup_cell.py")
setup_cell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup_cell)

OLD_CELL = """# Setup: in Google Colab, install the book's library (numpy, torch and ipywidgets are
# already there and are left alone). Everywhere else it is installed already.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet",
         "throughtime @ git+https://github.com/through-time/through-time@main"],
        check=True,
    )

from throughtime.training import seed_everything

rng = seed_everything(0)
torch_threads = 1"""


def notebook_text(first_code: str, tags: list[str] | None = None) -> str:
    cells = [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Title"]},
             {"cell_type": "code", "execution_count": None, "id": "b",
              "metadata": {"tags": tags if tags is not None else ["remove-cell"]},
              "outputs": [], "source": first_code.splitlines(keepends=True)}]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
                      indent=1) + "\n"


def test_the_rendered_cell_names_the_repository_once_and_compiles():
    source = setup_cell.render("my-school/rnn-course", "spring")
    compile(source, "setup", "exec")
    assert source.count("git+https://github.com/my-school/rnn-course@spring") == 1
    assert "my-school" not in source.replace(
        "git+https://github.com/my-school/rnn-course@spring", "")
    assert setup_cell.MARKER in source
    assert source.endswith("rng = seed_everything(0)")


@pytest.mark.parametrize("repo, branch", [("not a repo", "main"), ("a/b", "bad branch")])
def test_bad_repositories_and_branches_are_refused(repo: str, branch: str):
    with pytest.raises(ValueError, match="repo must look like ORG/NAME|branch must be a git"):
        setup_cell.render(repo, branch)


def test_the_rewrite_keeps_the_chapters_own_lines_and_its_tag():
    text, changed = setup_cell.rewrite_notebook(notebook_text(OLD_CELL, tags=[]), "a/b", "dev")
    cell = json.loads(text)["cells"][1]
    source = "".join(cell["source"])
    assert changed and cell["metadata"]["tags"] == ["remove-cell"]
    assert "google.colab" not in source and "git+https://github.com/a/b@dev" in source
    assert source.endswith("from throughtime.training import seed_everything\n\n"
                           "rng = seed_everything(0)\ntorch_threads = 1")
    assert setup_cell.is_canonical(source, "a/b", "dev")
    assert not setup_cell.is_canonical(source, "a/b", "main")
    again, changed_again = setup_cell.rewrite_notebook(text, "a/b", "dev")
    assert again == text and not changed_again


def test_a_first_cell_that_is_not_a_setup_cell_is_refused():
    with pytest.raises(ValueError, match="no install URL"):
        setup_cell.rewrite_notebook(notebook_text("from throughtime import gradients"), "a/b",
                                    "main")
    with pytest.raises(ValueError, match="no line that imports throughtime"):
        setup_cell.split_setup("import numpy as np")


def test_the_command_checks_then_rewrites(tmp_path: Path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text(
        "repository:\n  url: https://github.com/my-school/rnn-course\n  branch: spring\n")
    (tmp_path / "chapters" / "01_x.ipynb").write_text(notebook_text(OLD_CELL))
    command = [sys.executable, str(ROOT / "scripts" / "setup_cell.py"), "--root", str(tmp_path)]
    check = subprocess.run([*command, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "differs from the canonical text" in check.stdout
    assert "google.colab" in (tmp_path / "chapters" / "01_x.ipynb").read_text()
    subprocess.run(command, capture_output=True, text=True, check=True)
    rewritten = json.loads((tmp_path / "chapters" / "01_x.ipynb").read_text())
    assert "git+https://github.com/my-school/rnn-course@spring" in "".join(
        rewritten["cells"][1]["source"])
    assert subprocess.run([*command, "--check"], capture_output=True).returncode == 0


def test_a_course_can_install_from_a_wheel_and_is_told_where_it_failed(tmp_path: Path):
    wheel = "throughtime @ https://example.org/course/_static/throughtime-0.1.0-py3-none-any.whl"
    source = setup_cell.render_requirement(wheel)
    assert setup_cell.requirement_of(source) == wheel
    assert setup_cell.split_setup(source)[1] == setup_cell.DEFAULT_OWN_LINES.strip("\n")
    with pytest.raises(ValueError, match="requirement must look like 'throughtime @ URL'"):
        setup_cell.render_requirement("numpy")
    # Run the install part with a Python whose pip always fails: the message names the wheel.
    install, _ = setup_cell.split_setup(source)
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/sh\necho 'ERROR: 404 Not Found' >&2\nexit 1\n")
    failing.chmod(0o755)
    program = ("import importlib.util, sys\n"
               "importlib.util.find_spec = lambda name, *a: None  # as if not installed\n"
               f"sys.executable = {str(failing)!r}\n" + install)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode != 0
    assert ("Could not install the book's library, throughtime, from "
            "https://example.org/course/_static/throughtime-0.1.0-py3-none-any.whl") in (
        result.stderr)
    assert "pip said: ERROR: 404 Not Found" in result.stderr
