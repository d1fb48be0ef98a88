"""The student edition: no answer survives, every notebook still runs, the config points right.

A small synthetic chapter (made here, with every kind of solution the convention knows)
is turned into its student edition and executed top to bottom with nbclient; the real
chapters get the same structural checks without being executed (each takes about a
minute, and `make assignments` executes them all when it builds the student website).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_assignments.py"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
RAISES = "raises-exception"

spec = importlib.util.spec_from_file_location("make_assignments", SCRIPT)
make_assignments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_assignments)

SECRETS = ("a_secret", "SECRET_WRITTEN", "SECRET_COLON", "SECRET_TAGGED", "SECRET_GATED",
           "6 * 7")

SETUP = '''import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet",
         "throughtime @ git+https://github.com/through-time/through-time@main"],
        check=True,
    )

import numpy as np'''

STEP = '''def rnn_step(x, h, params):
    """One tanh RNN step."""
    # TASK: implement the tanh RNN step,
    # h_next = tanh(W_ih x + b_ih + W_hh h + b_hh).
    ### BEGIN SOLUTION
    a_secret = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T
    h_next = np.tanh(a_secret + params["bias_hh"])
    cache = {"x": x, "h": h, "a": a_secret + params["bias_hh"], "h_next": h_next}
    ### END SOLUTION
    return h_next, cache'''

WRITTEN = '''````{exercise} The tanh RNN step
:label: ex-demo-step

Implement `rnn_step(x, h, params)` for the tanh RNN. The cell after it checks it.
````

````{solution} ex-demo-step
:class: dropdown

Multiply by the transposes:
```python
SECRET_WRITTEN = 1
```
````'''

COLON = ''':::{exercise}
:label: ex-demo-answer

What is six times seven? Store it in `answer`.
:::

:::{solution} ex-demo-answer
Forty-two, SECRET_COLON.
:::'''

CRASH = """from throughtime import checks

def crashing_step(x, h, params):
    return x @ params["weight_hh"], None

try:
    checks.check_rnn_step(crashing_step)
except AssertionError as failure:
    print(failure)"""

GATE_START = '''```{exercise} A gated solution
:label: ex-demo-gated

Say something about gates.
```

```{solution-start} ex-demo-gated
:class: dropdown
```

SECRET_GATED in words.'''


def demo_chapter() -> nbformat.NotebookNode:
    """A chapter with every kind of solution the convention knows, outputs included."""
    cells = [
        new_code_cell(SETUP, metadata={"tags": ["remove-cell"]}),
        new_markdown_cell("# A demo chapter\n\nSome teaching first."),
        new_markdown_cell(WRITTEN),
        new_code_cell(STEP, execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="old output\n")]),
        new_code_cell("from throughtime.checks import check_rnn_step\n\n"
                      "check_rnn_step(rnn_step)"),
        new_markdown_cell(COLON),
        new_code_cell("### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"),
        new_code_cell("assert answer == 42, 'SECRET_TAGGED'",
                      metadata={"tags": ["remove-cell", "solution"]}),
        new_code_cell("print('the chapter goes on', int(np.arange(4).sum()))"),
        new_code_cell(CRASH),
        new_markdown_cell(GATE_START),
        new_code_cell("gated = 'SECRET_GATED code'"),
        new_markdown_cell("```{solution-end}\n```\n\nAfter the gate, the text stays."),
        new_code_cell("later = answer + 1"),
        new_code_cell("print('still running')"),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def write_book(root: Path, notebook: nbformat.NotebookNode) -> Path:
    """A copy of the book's configuration with one chapter: the demo chapter."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(ROOT / name, root / name)
    for folder in ROOT.iterdir():  # _static, _templates, ...: what the configuration uses
        if folder.is_dir() and folder.name.startswith("_") and folder.name != "_build":
            shutil.copytree(folder, root / folder.name)
    (root / "intro.md").write_text("# Demo book\n\nA book with one chapter.\n")
    (root / "chapters").mkdir()
    nbformat.write(notebook, root / "chapters" / "01_demo.ipynb")
    other = new_notebook(cells=[new_markdown_cell("# Another chapter")])
    nbformat.write(other, root / "chapters" / "02_other.ipynb")
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "Chapters", "numbered": True,
         "chapters": [{"file": "chapters/01_demo"}, {"file": "chapters/02_other"}]}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The demo book, and its student edition on the branch ``student``."""
    book = write_book(tmp_path_factory.mktemp("book"), demo_chapter())
    out = tmp_path_factory.mktemp("student")
    report = make_assignments.make_student_edition(book, out, branch="student",
                                                   chapters=["01"])
    student = nbformat.read(out / "chapters" / "01_demo.ipynb", as_version=4)
    instructor = nbformat.read(book / "chapters" / "01_demo.ipynb", as_version=4)
    return book, out, report, instructor, student


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _code(notebook, fragment: str):
    return next(c for c in notebook.cells if c.cell_type == "code" and fragment in c.source)


def test_no_solution_survives(edition):
    _, _, report, instructor, student = edition
    text = "\n".join(cell.source for cell in student.cells)
    for secret in SECRETS:
        assert secret in "\n".join(cell.source for cell in instructor.cells), secret
        assert secret not in text, f"{secret!r} survived in the student edition"
    assert make_assignments.surviving_solution_lines(instructor, student) == []
    assert make_assignments.remaining_solution_blocks(student) == []
    assert "{solution" not in text and "BEGIN SOLUTION" not in text
    assert report["01_demo.ipynb"]["stubbed"] == 2
    assert report["01_demo.ipynb"]["written"] == 3 and report["01_demo.ipynb"]["cells"] == 2


def test_exercises_stay_and_stubs_restate_the_task(edition):
    student = edition[4]
    text = "\n".join(cell.source for cell in student.cells)
    for kept in ("What is six times seven?", "{exercise} The tanh RNN step",
                 "Say something about gates.", "After the gate, the text stays."):
        assert kept in text
    step = _code(student, "def rnn_step")
    assert ("raise NotImplementedError('implement the tanh RNN step, "
            "h_next = tanh(W_ih x + b_ih + W_hh h + b_hh).')") in step.source
    assert "    # YOUR CODE HERE" in step.source  # indented like the markers
    top = _code(student, "YOUR CODE HERE\nraise")
    assert "What is six times seven?" in top.source  # no TASK comment: the exercise's text
    ast.parse(step.source)
    ast.parse(top.source)


def test_cells_that_must_raise_are_tagged_and_no_others(edition):
    student = edition[4]
    for fragment in ("def rnn_step", "check_rnn_step(rnn_step)", "YOUR CODE HERE\nraise",
                     "later = answer + 1"):
        assert RAISES in _tags(_code(student, fragment)), fragment
    for fragment in ("the chapter goes on", "still running", "google.colab", "crashing_step"):
        assert RAISES not in _tags(_code(student, fragment)), fragment
    assert not any("SECRET_TAGGED" in cell.source for cell in student.cells)


def test_outputs_are_cleared(edition):
    for cell in edition[4].cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_student_branch_for_installs_and_launch_buttons(edition):
    _, out, _, _, student = edition
    config = yaml.safe_load((out / "_config.yml").read_text())
    assert config["repository"]["branch"] == "student"
    assert config["repository"]["url"] == "https://github.com/through-time/through-time"
    assert config["sphinx"]["config"]["hide_solutions"] is True
    launch = config["sphinx"]["config"].get("html_theme_options", {}).get("repository_branch")
    assert launch in (None, "student"), launch  # the reader notebooks' branch, when set
    setup = student.cells[0].source
    assert "git+https://github.com/through-time/through-time@student" in setup
    assert "@main" not in setup
    assert student.metadata["throughtime"] == {"chapter": "01_demo", "edition": "student"}


def test_the_student_config_keeps_the_books_comments(edition):
    book, out, *_ = edition
    original = (book / "_config.yml").read_text()
    written = (out / "_config.yml").read_text()
    comments = [line.strip() for line in original.splitlines() if line.strip().startswith("#")]
    assert comments and all(comment in written for comment in comments)
    assert written.startswith("# The student edition, written by scripts/make_assignments.py")


def test_by_default_students_never_get_the_instructors_branch(tmp_path):
    book = write_book(tmp_path / "book", demo_chapter())
    make_assignments.make_student_edition(book, tmp_path / "out", chapters=["01"])
    config = yaml.safe_load((tmp_path / "out" / "_config.yml").read_text())
    assert config["repository"]["branch"] == "student"
    instructor = yaml.safe_load((book / "_config.yml").read_text())["repository"]["branch"]
    with pytest.raises(SystemExit, match="where the instructor's notebooks, with every answer"):
        make_assignments.make_student_edition(book, tmp_path / "out2", branch=instructor)
    make_assignments.make_student_edition(book, tmp_path / "out3", branch=instructor,
                                          repo="my-school/students")  # another repository


def test_chapter_selection_prunes_the_toc(edition):
    _, out, report, _, _ = edition
    assert list(report) == ["01_demo.ipynb"]
    assert not (out / "chapters" / "02_other.ipynb").exists()
    files = make_assignments.toc_chapters(yaml.safe_load((out / "_toc.yml").read_text()))
    assert files == ["chapters/01_demo"]


def _execute(notebook: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    NotebookClient(notebook, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(path)}}).execute()
    return notebook


def _errors(cell) -> list[tuple[str, str]]:
    return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]


def _stdout(cell) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def test_student_notebook_runs_top_to_bottom(edition):
    _, out, _, _, student = edition
    ran = _execute(student, out / "chapters")
    step_errors = _errors(_code(ran, "check_rnn_step(rnn_step)"))
    assert step_errors and step_errors[0][0] == "CheckFailed"
    assert "not implemented yet" in step_errors[0][1]
    assert "implement the tanh RNN step" in step_errors[0][1]
    assert _errors(_code(ran, "YOUR CODE HERE\nraise"))[0][0] == "NotImplementedError"
    assert _errors(_code(ran, "later = answer + 1"))[0][0] == "NameError"
    assert _stdout(_code(ran, "the chapter goes on")) == "the chapter goes on 6\n"
    assert _stdout(_code(ran, "still running")) == "still running\n"
    crash = _stdout(_code(ran, "def crashing_step"))
    assert "your rnn_step raised ValueError" in crash
    assert ('at line 4 of your notebook cell, in crashing_step: return x @ params["weight_hh"]'
            in crash), crash


def test_instructor_notebook_passes_its_check(edition):
    book, _, _, instructor, _ = edition
    ran = _execute(nbformat.from_dict(instructor), book / "chapters")
    assert _stdout(_code(ran, "check_rnn_step(rnn_step)")).startswith(
        "check_rnn_step: h_next matches the reference on 3 hidden cases")


def test_task_sources():
    assert make_assignments.comment_task(
        "x = 1\n    # TASK: do it\n    # carefully\n    ### BEGIN SOLUTION\n") == \
        "do it carefully"
    assert make_assignments.comment_task("# not a task\n### BEGIN SOLUTION\n") is None
    body = ":label: ex\n\nImplement the step:\n$$ a $$\n\nMore text."
    assert make_assignments.exercise_task("", body) == "Implement the step."
    assert make_assignments.exercise_task("A title", ":label: ex\n\n$$ a $$\n") == "A title"
    across = (":label: ex\n\nImplement MASE,\n\n$$\nm = 1\n$$\n\n"
              "as `mase(a, b)` for arrays. Then use it.")
    assert make_assignments.exercise_task("", across) == (
        "Implement MASE, (see the equation in the exercise) as `mase(a, b)` for arrays.")
    questions = (":label: ex\n\nSome history: a paper.\n\n$$\nx\n$$\n\n1. Why? Explain.\n"
                 "2. Implement `peep(x)`, which returns\n   `y`. Check it.\n")
    assert make_assignments.exercise_task("T", questions, names=["peep"]) == (
        "Implement `peep(x)`, which returns `y`.")
    assert make_assignments.exercise_task("T", questions) == "Some history: a paper."


def test_unterminated_solution_is_reported(tmp_path):
    notebook = demo_chapter()
    notebook.cells[3].source = notebook.cells[3].source.replace("### END SOLUTION", "")
    book = write_book(tmp_path / "book", notebook)
    with pytest.raises(SystemExit, match="01_demo.ipynb: cell 3: no end solution"):
        make_assignments.make_student_edition(book, tmp_path / "out", chapters=["01"])


def test_command_line_on_a_git_checkout(tmp_path):
    book = write_book(tmp_path / "book", demo_chapter())
    (book / "notes.tmp").write_text("ignored by git\n")
    (book / ".gitignore").write_text("*.tmp\n_student/\n")
    subprocess.run(["git", "init", "-q", str(book)], check=True)
    subprocess.run(["git", "-C", str(book), "add", "."], check=True)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(book), "--out", str(book / "_student"),
         "--branch", "course-2026", "--repo", "my-school/rnn-course"],
        capture_output=True, text=True, check=True)
    assert ("01_demo.ipynb: 2 code exercise(s) stubbed, 3 written solution(s) and 2 solution "
            "cell(s) removed, cells [3, 4, 6, 11] tagged raises-exception") in result.stdout
    assert "https://github.com/my-school/rnn-course at branch course-2026" in result.stdout
    assert "warning: the student edition is made from the files on disk" in result.stderr
    assert "notes.tmp" not in result.stderr  # ignored by git: neither copied nor reported
    out = book / "_student"
    assert (out / "chapters" / "02_other.ipynb").exists()
    assert not (out / "notes.tmp").exists() and not (out / "_student").exists()
    setup = nbformat.read(out / "chapters" / "01_demo.ipynb", as_version=4).cells[0].source
    assert "git+https://github.com/my-school/rnn-course@course-2026" in setup


# --------------------------------------------------------------------------------------
# The real chapters: structure only (executing them all would take minutes)
# --------------------------------------------------------------------------------------

EXERCISE_CHAPTERS = [p for p in CHAPTERS if make_assignments.BEGIN in p.read_text()]


@pytest.mark.skipif(not EXERCISE_CHAPTERS, reason="no chapter has code exercises yet")
@pytest.mark.parametrize("path", EXERCISE_CHAPTERS, ids=lambda p: p.name)
def test_real_chapter_student_edition(path):
    instructor = nbformat.read(path, as_version=4)
    try:
        student, resources = make_assignments.student_notebook(
            instructor, "git+https://github.com/through-time/through-time@student")
    except ValueError as refusal:  # the chapter shows an answer: the generator names the cell
        pytest.xfail(f"{path.name}: make assignments refuses this chapter: {refusal}")
    assert make_assignments.surviving_solution_lines(instructor, student) == []
    assert make_assignments.remaining_solution_blocks(student) == []
    assert resources["stubbed"], f"{path.name}: no code exercise was stubbed"
    stubbed = set(resources["stubbed"])
    exercises: set[str] = set()  # the functions the student has to write
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None
        if cell.id in stubbed:
            assert RAISES in _tags(cell) and "raise NotImplementedError(" in cell.source
            tree = ast.parse(cell.source)
            exercises |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        elif "check_" in cell.source and exercises & _loaded_names(cell.source):
            assert RAISES in _tags(cell), f"{path.name}: check cell not tagged:\n{cell.source}"


def _loaded_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics): not a check cell
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def test_student_website_builds_without_warnings(edition, tmp_path):
    """The student site: warnings are errors, no answer on any page, links to the branch."""
    _, out, _, _, _ = edition
    make_assignments.build_website(out)
    html = out / "_build" / "html"
    page = (html / "chapters" / "01_demo.html").read_text()
    pages = "\n".join(p.read_text() for p in html.rglob("*.html"))
    for secret in SECRETS:
        assert secret not in pages, f"{secret!r} is on the student website"
    assert "blob/student/chapters/01_demo.ipynb" in page  # the launch buttons
    assert "What is six times seven?" in page and "not implemented yet" in page


def test_the_instructors_page_shows_what_the_generator_does():
    """The before/after example on instructors.md is the generator's real output."""
    import re

    page = (ROOT / "instructors.md").read_text()
    instructor, student = re.findall(r"```python\n(.*?)```", page, re.S)[:2]
    notebook = new_notebook(cells=[new_code_cell(instructor.rstrip("\n"))])
    converted, _ = make_assignments.student_notebook(notebook)
    assert converted.cells[0].source == student.rstrip("\n")


def test_nbval_lax_accepts_the_student_notebook(edition):
    """`make test` on a student branch runs nbval: the raises-exception tags must satisfy it."""
    _, out, _, _, student = edition
    cells = sum(cell.cell_type == "code" for cell in student.cells)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         str(out / "chapters" / "01_demo.ipynb")],
        capture_output=True, text=True, cwd=out, env={**os.environ, "JUPYTER_PREFER_ENV_PATH": "1"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{cells} passed" in result.stdout, result.stdout[-500:]


def test_default_student_tree_is_outside_the_instructor_book():
    """The book's own build must not read the student copy (its notebooks, its cache)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    top = make_assignments.DEFAULT_OUT.relative_to(ROOT).parts[0]
    assert top in config["exclude_patterns"], (top, config["exclude_patterns"])


# --------------------------------------------------------------------------------------
# What the generator refuses or leaves out: answers the conventions alone would not remove
# --------------------------------------------------------------------------------------

HIDDEN_ANSWER = '''import math
ex_answer = round(math.log(0.01) / math.log(0.5), 1)
glue("ex_answer", ex_answer)'''

ANSWER_EXERCISE = '''```{exercise} How many steps
:label: ex-demo-steps

After how many halvings is 1% left?
```

```{solution} ex-demo-steps
:class: dropdown

After {glue:text}`ex_answer` halvings.
```'''


def _with(*cells, at: int = 9) -> nbformat.NotebookNode:
    notebook = demo_chapter()
    notebook.cells[at:at] = list(cells)
    return notebook


def test_a_hidden_cell_that_only_answers_a_solution_is_refused(tmp_path):
    notebook = _with(new_markdown_cell(ANSWER_EXERCISE),
                     new_code_cell("from throughtime.book import glue"),
                     new_code_cell(HIDDEN_ANSWER, metadata={"tags": ["remove-cell"]}))
    with pytest.raises(ValueError, match=r"cell 11 is tagged remove-cell .* \(ex_answer\) only "
                                         r"the removed solutions use: tag it 'solution'"):
        make_assignments.student_notebook(notebook)
    notebook.cells[11].metadata["tags"].append("solution")
    student, _ = make_assignments.student_notebook(notebook)
    assert not any("ex_answer = " in cell.source for cell in student.cells)


def test_a_hidden_cell_the_chapter_uses_stays(tmp_path):
    notebook = _with(new_markdown_cell("It takes {glue:text}`ex_answer` halvings."),
                     new_code_cell("from throughtime.book import glue"),
                     new_code_cell(HIDDEN_ANSWER, metadata={"tags": ["remove-cell"]}))
    student, _ = make_assignments.student_notebook(notebook)
    assert any("ex_answer = " in cell.source for cell in student.cells)


def test_a_cell_that_prints_the_answers_source_is_left_out():
    printing = new_code_cell("import inspect\nfrom throughtime import numpy_cells\n\n"
                             "print(inspect.getsource(numpy_cells._rnn_step))",
                             metadata={"tags": ["hide-input"]})
    student, resources = make_assignments.student_notebook(_with(printing, at=2))
    assert resources["sources_removed"] == ["cell 2 (_rnn_step)"]
    assert not any("getsource" in cell.source for cell in student.cells)
    helper = new_code_cell("import inspect\nfrom throughtime import numpy_cells\n\n"
                           "def show(f):\n    print(inspect.getsource(f))\n\n"
                           "show_source = show\nshow_source(numpy_cells.rnn_step)")
    later = new_code_cell("show(print)")
    with pytest.raises(ValueError, match="cell 2 shows the source of rnn_step.*defines show"):
        make_assignments.student_notebook(_with(helper, later, at=2))


def test_prose_that_quotes_the_reference_line_by_line_is_refused():
    table = new_markdown_cell(
        "| code | equation |\n| --- | --- |\n"
        '| `x @ params["weight_ih"].T + params["bias_ih"]` | the input part |\n'
        '| `h @ params["weight_hh"].T` | the recurrent part |\n'
        '| `h_next = f(a)` | the new state |\n')
    with pytest.raises(ValueError, match="cell 2 quotes 3 lines of the library code that "
                                         "answers the exercise rnn_step"):
        make_assignments.student_notebook(_with(table, at=2))
    table.metadata["tags"] = ["solution"]  # a Markdown cell tagged solution is left out
    student, _ = make_assignments.student_notebook(_with(table, at=2))
    assert not any("weight_ih" in cell.source and "|" in cell.source for cell in student.cells)


def test_stub_messages_are_plain_text():
    assert make_assignments.plain_text(
        r"It receives `dh_next` $= \delta_t$ of shape $(B, H)$ and returns "
        r"$W_{hh}^\top \varepsilon_t$ for $h_{t-1}$, see {eq}`eq-bptt` {cite}`pascanu2013`.") == (
        "It receives `dh_next` = δ_t of shape (B, H) and returns W_hhᵀ ε_t for h_(t-1), see "
        "the equation in the chapter.")
    body = (":label: ex\n\nImplement `lstm_step(x, h, c, params)` with `x` of shape $(B, I)$ "
            r"and gates $\sigma(a) \odot c$." "\n")
    task = make_assignments.exercise_task("", body, names=["lstm_step"])
    assert "$" not in task and "\\" not in task and "σ(a) ⊙ c" in task, task


def test_instructor_files_never_reach_the_student_edition(tmp_path):
    book = write_book(tmp_path / "book", demo_chapter())
    (book / "instructor").mkdir()
    (book / "instructor" / "hidden_tests.py").write_text("SEED = 1\n")
    (book / "instructor" / "secret.txt").write_text("12345\n")
    out = tmp_path / "out"
    make_assignments.make_student_edition(book, out, chapters=["01"])
    assert not (out / "instructor").exists()
    assert not list(out.rglob("secret.txt"))


FAKE_READER = '''import sys, pathlib, nbformat
args = sys.argv[1:]
root = pathlib.Path(args[args.index("--root") + 1])
out = pathlib.Path(args[args.index("--out") + 1])
(out / "chapters").mkdir(parents=True, exist_ok=True)
for stem in args[args.index("--chapters") + 1:]:
    notebook = nbformat.read(root / "chapters" / f"{stem}.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell("READER\\n" + LEAK))
    nbformat.write(notebook, out / "chapters" / f"{stem}.ipynb")
'''


def test_reader_notebooks_replace_the_student_chapters_when_the_converter_exists(
        edition, tmp_path, monkeypatch, capsys):
    book, out, *_ = edition
    converter = tmp_path / "reader_notebooks.py"
    monkeypatch.setattr(make_assignments, "READER", tmp_path / "missing.py")
    assert make_assignments.reader_edition(book, out, ["01_demo"]) == []
    assert "keep their MyST markup" in capsys.readouterr().err
    monkeypatch.setattr(make_assignments, "READER", converter)
    target = tmp_path / "copy"
    shutil.copytree(out, target)
    converter.write_text("LEAK = ''\n" + FAKE_READER)
    assert make_assignments.reader_edition(book, target, ["01_demo"]) == ["01_demo"]
    converted = nbformat.read(target / "chapters" / "01_demo.ipynb", as_version=4)
    assert converted.cells[0].source == "READER\n"
    assert converted.metadata["throughtime"]["chapter"] == "01_demo"
    converter.write_text("LEAK = 'h_next = np.tanh(a_secret + params[\"bias_hh\"])'\n"
                         + FAKE_READER)
    with pytest.raises(SystemExit, match="the reader notebook still shows solution"):
        make_assignments.reader_edition(book, target, ["01_demo"])


def test_the_instructors_check_table_names_only_exercises_that_exist():
    """Each row's exercise column names the chapters whose code exercises that check grades
    (by a call, or by the exercise's function name), or says that no chapter uses it."""
    import re

    page = (ROOT / "instructors.md").read_text()
    rows = re.findall(r"^\| `(check_\w+)`(?: \(in `throughtime\.\w+`\))? \| (.*?) \| (.*?) \|$",
                      page, re.M)
    assert rows, "the check table is missing"
    from throughtime import checks

    used: dict[str, set[str]] = {}  # check -> chapters whose exercises it grades
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        calls = make_assignments._check_calls(notebook)
        for function in make_assignments.exercise_functions(notebook):
            check = calls.get(function, f"check_{function}")
            if check in checks.graded_checks():
                used.setdefault(check, set()).add(path.stem[:2])

    assert {row[0] for row in rows} == set(checks.graded_checks())
    for check, _, exercise in rows:
        chapters = set(re.findall(r"chapter (\d+)", exercise))
        if check in used or chapters:
            assert {c.zfill(2) for c in chapters} == used.get(check, set()), (check, exercise)
        else:
            assert "no chapter" in exercise, (check, exercise)


# --------------------------------------------------------------------------------------
# Colab for a private repository: the library as a wheel beside the student website
# --------------------------------------------------------------------------------------


def test_a_wheel_with_the_student_site_installs_where_no_repository_is_reachable(tmp_path):
    """The wheel goes into the student website's _static/, every setup cell installs it from
    the URL given, and pip installs it from that URL into a fresh environment that has the
    book's other packages (as Colab has numpy and torch) but not the library."""
    import functools
    import http.server
    import threading

    book = write_book(tmp_path / "book", demo_chapter())
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, book / name)
    shutil.copytree(ROOT / "lib", book / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "student"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/_static/"
    make_assignments.make_student_edition(book, out, chapters=["01"], wheel_url=url)
    wheel = next((out / "_static").glob("throughtime-*.whl"))
    setup = nbformat.read(out / "chapters" / "01_demo.ipynb", as_version=4).cells[0].source
    assert f"throughtime @ {url}{wheel.name}" in setup and "git+" not in setup

    colab = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(colab)], check=True)
    python = colab / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")][0]
    Path(site, "book_packages.pth").write_text(ours + "\n")  # numpy, torch, pip: not the library
    probe = [str(python), "-c", "import importlib.util as u; print(u.find_spec('throughtime'))"]
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "None"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        line = next(line for line in setup.splitlines() if "throughtime @ " in line)
        spec = line.split('"')[1]
        installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                    "--no-index", spec],
                                   capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert installed.returncode == 0, installed.stderr[-2000:]
    check = subprocess.run([str(python), "-c", "import throughtime.checks as c; "
                            "print(c.__file__)"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(site), check.stdout  # the wheel's copy, not the checkout
