"""`make grade`: a folder of synthetic submissions gets the scores and messages it deserves.

One small instructor notebook with three code exercises (the tanh RNN step, the LSTM step,
clipping with two norms) and a folder of submissions: a correct one, one per known mistake,
the library's own function passed off three ways, one that raises, an untouched stub, one
that never ends, one whose function never returns, one that is not valid JSON, one that
eats memory, and one that tries to read the hidden tests and the course secret, overwrite
the scores and leave a process behind. The folder is graded once, with the command line,
and every test reads the reports.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "grade.py"

spec = importlib.util.spec_from_file_location("grade", SCRIPT)
grade = importlib.util.module_from_spec(spec)
sys.modules["grade"] = grade
spec.loader.exec_module(grade)

SETUP = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
         "from throughtime import numpy_cells")
PLOT = "figure, axes = plt.subplots()\naxes.plot([0, 1])\nplt.show()"

RNN = '''def rnn_step(x, h, params):
    """One tanh RNN step."""
    ### BEGIN SOLUTION
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \\
        + params["bias_hh"]
    h_next = np.tanh(a)
    cache = {"x": x, "h": h, "a": a, "h_next": h_next}
    ### END SOLUTION
    return h_next, cache'''

LSTM = '''def lstm_step(x, h, c, params):
    """One LSTM step."""
    ### BEGIN SOLUTION
    H = h.shape[1]
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \\
        + params["bias_hh"]
    i = numpy_cells.sigmoid(a[:, :H])
    f = numpy_cells.sigmoid(a[:, H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = numpy_cells.sigmoid(a[:, 3 * H:])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    cache = {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o}
    ### END SOLUTION
    return h_next, c_next, cache'''

CLIP = '''def clip_by_norm(grads, max_norm, norm_type=2.0):
    ### BEGIN SOLUTION
    norms = [np.linalg.norm(np.ravel(g), ord=norm_type) for g in grads.values()]
    total_norm = float(np.linalg.norm(norms, ord=norm_type))
    scale = min(1.0, max_norm / (total_norm + 1e-6))
    clipped = {name: g * scale for name, g in grads.items()}
    ### END SOLUTION
    return clipped, total_norm'''

HELPER = '''def describe_gates():
    ### BEGIN SOLUTION
    return "i, f, g, o"
    ### END SOLUTION'''

STUB = '''def {name}(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("write {name}")'''


def instructor_notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        new_code_cell(SETUP),
        new_markdown_cell("## Exercises"),
        new_code_cell(RNN),
        new_code_cell("from throughtime.checks import check_rnn_step\n\ncheck_rnn_step(rnn_step)"),
        new_code_cell(LSTM),
        new_code_cell("from throughtime import checks\n\nchecks.check_lstm_step(lstm_step)"),
        new_code_cell(CLIP),
        new_code_cell("from throughtime.checks import check_clip_by_norm\n\n"
                      "check_clip_by_norm(clip_by_norm, norm_types=(2.0, 1.0))"),
        new_code_cell(HELPER),
    ])


def submission(rnn=RNN, lstm=LSTM, clip=CLIP, *, before=(), between=(), after=()):
    """A student's notebook: the instructor's cells with the answers as given."""
    cells = [SETUP, *before, rnn, "check_rnn_step = None  # the student's own cells", PLOT,
             *between, lstm, clip, *after]
    return new_notebook(cells=[new_code_cell(source) for source in cells])


LIBRARY_SOURCE = '''def lstm_step(x, h, c, params):
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \\
        + params["bias_hh"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_next = f * c + i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    cache = {"kind": "lstm_step", "x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o,
             "tanh_c": tanh_c, "h_next": h_next, "params": params}
    return h_next, c_next, cache'''

ATTACK = '''import pathlib, subprocess, sys
import throughtime
root = pathlib.Path(throughtime.__file__).resolve().parents[2]
found = {}
targets = {"hidden": root / "instructor" / "hidden_tests.py", "secret": pathlib.Path(SECRET),
           "scores": pathlib.Path(OUT) / "scores.csv"}
for name, path in targets.items():
    try:
        found[name] = path.read_text()[:20]
    except OSError as error:
        found[name] = type(error).__name__
try:
    (pathlib.Path(OUT) / "scores.csv").write_text("attacker,100\\n")
    found["overwrite"] = "done"
except OSError as error:
    found["overwrite"] = type(error).__name__
subprocess.Popen([sys.executable, "-c", "import os, pathlib, time; os.setsid(); "
                  "time.sleep(30); pathlib.Path(OUT, 'scores.csv').write_text('late')",
                  "LEFTOVER-MARKER"], start_new_session=True)
print("ATTACK", found)'''

MISTAKES = {
    "rnn_sigmoid": submission(rnn=RNN.replace("np.tanh(a)", "1 / (1 + np.exp(-a))")),
    "lstm_cs231n": submission(lstm=LSTM.replace("a[:, 2 * H:3 * H]", "a[:, 3 * H:]")
                              .replace("sigmoid(a[:, 3 * H:])", "sigmoid(a[:, 2 * H:3 * H])")),
    "lstm_1997": submission(lstm=LSTM.replace("c_next = f * c", "c_next = c")),
    "lstm_in_place": submission(lstm=LSTM.replace("    return h_next", "    c *= 0\n"
                                                  "    return h_next")),
    "clip_per_tensor": submission(clip=CLIP.replace(
        "clipped = {name: g * scale for",
        "clipped = {name: g * min(1.0, max_norm / np.linalg.norm(np.ravel(g), norm_type)) for")),
}


def write_folder(folder: Path, secret: Path, out: Path) -> None:
    folder.mkdir()
    nbformat.write(submission(), folder / "correct.ipynb")
    for name, notebook in MISTAKES.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    (folder / "library").mkdir()  # one folder per student works too
    nbformat.write(submission(
        rnn="rnn_step = numpy_cells.rnn_step",
        lstm="def lstm_step(x, h, c, params):\n    return numpy_cells.lstm_step(x, h, c, params)",
        clip="from throughtime.gradients import clip_by_norm as clip_by_norm"),
        folder / "library" / "04_lstm.ipynb")
    nbformat.write(submission(lstm=LIBRARY_SOURCE, before=["from throughtime.numpy_cells "
                                                           "import sigmoid"]),
                   folder / "pasted.ipynb")
    nbformat.write(submission(rnn=RNN.replace("h_next = np.tanh(a)", "h_next = np.tanh(a) / 0"
                                              if False else "h_next = np.tanh(a)\n"
                                              "    raise ZeroDivisionError('my bug')"),
                              between=["print(undefined_name)"]),
                   folder / "raises.ipynb")
    nbformat.write(submission(*(STUB.format(name=n) for n in ("rnn_step", "lstm_step",
                                                              "clip_by_norm"))),
                   folder / "stub.ipynb")
    nbformat.write(submission(between=["while True:\n    pass"]), folder / "never_ends.ipynb")
    nbformat.write(submission(clip="def clip_by_norm(grads, max_norm, norm_type=2.0):\n"
                                   "    while True:\n        pass"),
                   folder / "never_returns.ipynb")
    nbformat.write(submission(after=["hog = np.ones(10**10)"]), folder / "memory.ipynb")
    text = nbformat.writes(submission())
    (folder / "not_json.ipynb").write_text(text[: len(text) // 2])
    nbformat.write(submission(before=[f"SECRET, OUT = {str(secret)!r}, {str(out)!r}",
                                      ATTACK]), folder / "attacker.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    instructor = base / "01_demo.ipynb"
    nbformat.write(instructor_notebook(), instructor)
    hidden = base / "instructor"  # the instructor-only folder, as in the repository
    hidden.mkdir()
    (hidden / "hidden_tests.py").write_text((ROOT / "instructor" / "hidden_tests.py")
                                            .read_text())
    secret = hidden / "secret.txt"
    out = base / "grades"
    folder = base / "submissions"
    write_folder(folder, secret, out)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "--assignment", str(instructor),
         "--out", str(out), "--hidden-tests", str(hidden / "hidden_tests.py"),
         "--secret-file", str(secret), "--jobs", "2", "--notebook-seconds", "20",
         "--test-seconds", "10", "--memory-mb", "2048"],
        capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with open(out / "scores.csv") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    details = {r["student"]: r for r in json.loads((out / "results.json").read_text())}
    return {"rows": rows, "details": details, "out": out, "stdout": result.stdout,
            "stderr": result.stderr, "secret": secret}


def _feedback(graded, student: str) -> str:
    return (graded["out"] / "feedback" / f"{student}.md").read_text()


def _message(graded, student: str, function: str) -> str:
    return next(r["message"] for r in graded["details"][student]["results"]
                if r["function"] == function)


def _scores(graded, student: str) -> tuple[str, str, str, str]:
    row = graded["rows"][student]
    return row["rnn_step"], row["lstm_step"], row["clip_by_norm"], row["total"]


def test_every_submission_gets_a_row_and_a_feedback_file(graded):
    expected = {"correct", *MISTAKES, "library", "pasted", "raises", "stub", "never_ends",
                "never_returns", "memory", "not_json", "attacker"}
    assert set(graded["rows"]) == expected
    for student in expected:
        assert (graded["out"] / "feedback" / f"{student}.md").exists()
    assert all(row["out_of"] in ("3", "0") for row in graded["rows"].values())
    assert "describe_gates is not graded automatically" in graded["stderr"]


def test_a_correct_submission_gets_every_point(graded):
    assert _scores(graded, "correct") == ("1", "1", "1", "3")
    assert graded["details"]["correct"]["cells"] == []  # %matplotlib inline and a plot ran
    assert "check_lstm_step: h_next and c_next match the reference on 4 hidden cases" in \
        _feedback(graded, "correct")
    assert "hidden case 4 of 4" not in _feedback(graded, "correct")


@pytest.mark.parametrize(("student", "scores", "function", "fragments"), [
    ("rnn_sigmoid", ("0", "1", "1", "2"), "rnn_step", ["the sigmoid; it should be tanh"]),
    ("lstm_cs231n", ("1", "0", "1", "2"), "lstm_step", ["i, f, o, g (CS231n's order)"]),
    ("lstm_1997", ("1", "0", "1", "2"), "lstm_step", ["the 1997 LSTM"]),
    ("lstm_in_place", ("1", "0", "1", "2"), "lstm_step", ["changed its input c in place"]),
    ("clip_per_tensor", ("1", "1", "0", "2"), "clip_by_norm", ["clipped by its own norm"]),
])
def test_each_known_mistake_costs_its_exercise_and_is_named(graded, student, scores, function,
                                                            fragments):
    assert _scores(graded, student) == scores
    message = _message(graded, student, function)
    assert "hidden case" in message or "in place" in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_librarys_own_code_earns_nothing(graded):
    assert _scores(graded, "library") == ("0", "0", "0", "0")
    assert "the library's own" in _message(graded, "library", "rnn_step")
    assert "throughtime.numpy_cells.lstm_step" in _message(graded, "library", "lstm_step")
    assert "throughtime.gradients.clip_by_norm" in _message(graded, "library", "clip_by_norm")
    assert _scores(graded, "pasted") == ("1", "0", "1", "2")
    assert "a copy of the library's throughtime.numpy_cells._lstm_step" in \
        _message(graded, "pasted", "lstm_step")


def test_errors_and_stubs_get_a_score_and_a_message(graded):
    assert _scores(graded, "raises") == ("0", "1", "1", "2")
    assert "your rnn_step raised ZeroDivisionError: my bug" in _message(graded, "raises",
                                                                       "rnn_step")
    assert "NameError: name 'undefined_name' is not defined" in _feedback(graded, "raises")
    assert _scores(graded, "stub") == ("0", "0", "0", "0")
    assert "is not implemented yet" in _message(graded, "stub", "lstm_step")


def test_a_notebook_that_never_ends_is_stopped_and_graded_on_what_it_defined(graded):
    assert _scores(graded, "never_ends") == ("1", "0", "0", "1")
    feedback = _feedback(graded, "never_ends")
    assert "did not finish within 20 s" in feedback and "`while True:`" in feedback
    assert "lstm_step is not defined in your notebook" in _message(graded, "never_ends",
                                                                  "lstm_step")


def test_a_function_that_never_returns_is_stopped(graded):
    assert _scores(graded, "never_returns") == ("1", "1", "0", "2")
    assert "did not finish within the time limit of 10 s" in _message(graded, "never_returns",
                                                                     "clip_by_norm")


def test_not_valid_json_is_explained(graded):
    assert graded["rows"]["not_json"]["status"] == "not a notebook"
    assert _scores(graded, "not_json") == ("0", "0", "0", "0")
    assert "is not valid JSON" in _feedback(graded, "not_json")


def test_a_memory_hog_is_stopped_by_the_limit_and_the_rest_is_graded(graded):
    assert _scores(graded, "memory") == ("1", "1", "1", "3")
    assert "MemoryError" in _feedback(graded, "memory")


def _landlock(graded) -> bool:
    return graded["details"]["correct"]["confinement"].startswith("Landlock")


def test_the_attacker_reaches_neither_hidden_tests_nor_scores(graded):
    assert _scores(graded, "attacker") == ("1", "1", "1", "3")  # its own score, no more
    time.sleep(1)
    with open(graded["out"] / "scores.csv") as handle:
        text = handle.read()
    assert "attacker,100" not in text and text != "late"
    assert text.startswith("student,assignment,status,rnn_step,lstm_step,clip_by_norm")
    alive = subprocess.run(["pgrep", "-f", "LEFTOVER-MARKER"], capture_output=True, text=True)
    assert alive.stdout.strip() == "", "a process of the submission outlived its grading"
    if not _landlock(graded):
        pytest.skip("no Landlock on this kernel: files are not confined (the report says so)")
    ran = graded["details"]["attacker"]
    assert not ran["cells"], ran["cells"]  # the attack cell itself ran without an error
    assert "--notebook" not in graded["stdout"]
    assert graded["secret"].read_text().strip() not in json.dumps(graded["details"])


def test_the_attack_was_refused_by_the_kernel(graded, tmp_path):
    """What the attack cell printed: every read and write outside its folder was denied."""
    if not _landlock(graded):
        pytest.skip("no Landlock on this kernel")
    notebook = submission(before=[f"SECRET, OUT = {str(graded['secret'])!r}, "
                                  f"{str(graded['out'])!r}", ATTACK])
    directory = tmp_path / "run"
    directory.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    cells = [(n, c.source) for n, c in enumerate(notebook.cells, start=1)]
    (directory / "job.json").write_text(json.dumps({"cells": cells, "functions": []}))
    settings = grade.Settings(protected=[str(graded["out"]), str(graded["secret"].parent)])
    stage = grade.run_stage("notebook", directory, logs, 30, settings)
    attack = next(line for line in stage.output.splitlines() if line.startswith("ATTACK"))
    assert attack == ("ATTACK {'hidden': 'PermissionError', 'secret': 'PermissionError', "
                      "'scores': 'PermissionError', 'overwrite': 'PermissionError'}"), attack


# --------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------


def test_every_code_exercise_of_the_book_has_a_hidden_test():
    from throughtime import checks

    hidden = grade._load("hidden_tests", ROOT / "instructor" / "hidden_tests.py")
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        assignment = grade.load_assignment(path, checks, hidden)
        assert assignment.ungraded == [], (path.name, assignment.ungraded)
        for exercise in assignment.exercises:
            assert hidden.cases(exercise.check, 1, exercise.options)


def test_find_exercises_reads_checks_forward_and_options():
    from throughtime import checks

    notebook = json.loads(nbformat.writes(new_notebook(cells=[
        new_code_cell("def step_backward(d, cache):\n    ### BEGIN SOLUTION\n    pass\n"
                      "    ### END SOLUTION"),
        new_code_cell("def forward(x, h, p):\n    ### BEGIN SOLUTION\n    pass\n"
                      "    ### END SOLUTION"),
        new_code_cell("check_rnn_step_backward(step_backward, forward=forward)"),
        new_code_cell("def clip_by_norm(g, m):\n    ### BEGIN SOLUTION\n    pass\n"
                      "    ### END SOLUTION"),
        new_code_cell("checks.check_clip_by_norm(clip_by_norm, norm_types=(1.0,))")])))
    exercises, ungraded = grade.find_exercises(notebook, checks, lambda name: 2.0)
    assert [(e.function, e.check, e.forward, e.options, e.points) for e in exercises] == [
        ("step_backward", "check_rnn_step_backward", "forward", {}, 2.0),
        ("clip_by_norm", "check_clip_by_norm", None, {"norm_types": (1.0,)}, 2.0)]
    assert ungraded == ["forward"]


def test_decoding_accepts_plain_data_only():
    import numpy as np

    decode, encode = grade.sandbox.decode, grade.sandbox.encode
    value = {"a": np.arange(6.0).reshape(2, 3), "b": [1, "x", None, 2.5], "c": {"d": True}}
    back = decode(json.loads(json.dumps(encode(value))))
    assert np.array_equal(back["a"], value["a"]) and back["b"] == value["b"]
    for bad in ({"__array__": "AAAA", "shape": [5]}, {"__reduce__": "os.system"},
                {"__array__": "AAAAAAAAAAA=", "shape": [10**9]}, [[[[[[[[[[[[[[1]]]]]]]]]]]]]]):
        with pytest.raises(ValueError):
            decode(bad)


def test_usage_errors_are_clear(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "missing")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "SUBMISSIONS must be a folder" in result.stderr
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--assignment", "99"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "no chapter matches '99'" in result.stderr


def test_detect_assignment_from_metadata_or_name(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    for stem in ("01_demo", "02_other"):
        nbformat.write(new_notebook(), chapters / f"{stem}.ipynb")
    tagged = new_notebook()
    tagged.metadata["throughtime"] = {"chapter": "02_other"}
    nbformat.write(tagged, tmp_path / "alice.ipynb")
    nbformat.write(new_notebook(), tmp_path / "bob_01_demo.ipynb")
    nbformat.write(new_notebook(), tmp_path / "carol.ipynb")
    assert grade.detect_assignment(tmp_path / "alice.ipynb", chapters).stem == "02_other"
    assert grade.detect_assignment(tmp_path / "bob_01_demo.ipynb", chapters).stem == "01_demo"
    assert grade.detect_assignment(tmp_path / "carol.ipynb", chapters) is None


def test_hidden_tests_stay_out_of_the_package_and_the_site():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "instructor" in config["exclude_patterns"]
    listed = subprocess.run([sys.executable, "-c", "import throughtime, pathlib; "
                             "print(pathlib.Path(throughtime.__file__).parent)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert not (Path(listed) / "hidden_tests.py").exists()
    assert "secret.txt" in (ROOT / "instructor" / ".gitignore").read_text()
    assert os.access(ROOT / "instructor" / "hidden_tests.py", os.R_OK)


# --------------------------------------------------------------------------------------
# Gradescope: the Otter-Grader autograder, run locally with `otter run`
# --------------------------------------------------------------------------------------


def test_gradescope_package_grades_like_make_grade(tmp_path):
    """The zip holds one hidden test per exercise, the pinned CPU packages and the library's
    wheel; Otter's own local runner grades with it as `make grade` does."""
    import zipfile

    instructor = tmp_path / "01_demo.ipynb"
    nbformat.write(instructor_notebook(), instructor)
    secret = tmp_path / "secret.txt"
    secret.write_text("424242\n")
    package = tmp_path / "autograder.zip"
    subprocess.run([sys.executable, str(SCRIPT), "gradescope", "--assignment", str(instructor),
                    "--out", str(package), "--secret-file", str(secret)],
                   check=True, capture_output=True, text=True, timeout=300)
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        tests = {n for n in names if n.startswith("tests/")}
        environment = archive.read("environment.yml").decode()
        sources = {n: archive.read(n).decode() for n in tests}
    assert tests == {"tests/rnn_step.py", "tests/lstm_step.py", "tests/clip_by_norm.py"}
    assert {"setup.sh", "run_autograder", "otter_config.json"} <= names
    assert any(n.startswith("files/throughtime-") and n.endswith(".whl") for n in names)
    assert "torch==2.13.0+cpu" in environment and "download.pytorch.org/whl/cpu" in environment
    assert "throughtime @ file:///autograder/source/files/throughtime-" in environment
    for source in sources.values():  # the seed stays off the line a failure message shows
        assert "424242" not in next(line for line in source.splitlines() if "hidden_check(" in
                                    line and "print" in line)
    assert '"norm_types": [2.0, 1.0]' in sources["tests/clip_by_norm.py"]
    scores = {}
    for name, notebook in (("correct", submission()), ("lstm_1997", MISTAKES["lstm_1997"])):
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(notebook, path)
        out = tmp_path / name
        out.mkdir()
        subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(package), "-o",
                        str(out), str(path)], check=True, capture_output=True, timeout=300)
        results = json.loads((out / "results.json").read_text())
        scores[name] = {t["name"]: (t.get("score"), t.get("output", "")) for t in results["tests"]
                        if t["name"] != "Public Tests"}
    assert {k: v[0] for k, v in scores["correct"].items()} == {"rnn_step": 1.0,
                                                               "lstm_step": 1.0,
                                                               "clip_by_norm": 1.0}
    assert scores["lstm_1997"]["lstm_step"][0] == 0
    assert "the 1997 LSTM" in scores["lstm_1997"]["lstm_step"][1]
    assert "424242" not in json.dumps(scores)
