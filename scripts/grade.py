"""Grade a folder of submitted notebooks on hidden tests: scores and feedback.

    python scripts/grade.py SUBMISSIONS [--assignment 04] [--out _build/grades] [--jobs 2]
                            [--notebook-seconds 900] [--test-seconds 120] [--memory-mb 4096]
    python scripts/grade.py gradescope --assignment 04 [--out _build/grades/04_lstm.zip]

``SUBMISSIONS`` holds one notebook per student (``alice.ipynb``) or one folder per student
(``alice/04_lstm.ipynb``). The assignment is the chapter whose exercises are graded: a
number prefix or name from ``chapters/`` or the path of an instructor notebook; without
``--assignment`` each submission's chapter is read from the notebook's metadata (the
student edition records it) or its file name.

The exercises come from the instructor's notebook: every function defined between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` that a ``throughtime.checks`` call checks
(or for which a check ``check_<name>`` exists) is one exercise, worth ``POINTS`` in
``instructor/hidden_tests.py`` (1 by default), graded all or nothing by that check on the
hidden cases of ``instructor/hidden_tests.py``.

Each submission is untrusted code and is graded in three steps:

1. its code cells run in a fresh process in an empty temporary folder
   (``scripts/grading_sandbox.py notebook``), confined (memory, CPU time and file-size
   limits, and on Linux a Landlock domain: read access to Python and the library only,
   write access to its own folder only, no TCP, no signals to the grader), stopped after
   ``--notebook-seconds``; the graded functions it defined are saved with cloudpickle;
2. a second fresh process, confined the same way in another empty folder, loads those
   functions and runs them on the hidden cases' inputs (``... tests``), with the library's
   reference functions replaced by stubs that raise;
3. this process judges the outputs against expected values it computes itself: the expected
   values never exist in a process the submission runs in.

Every process a submission started is killed when its step ends. A submission that raises,
loops, runs out of memory, is not a notebook, or tries to reach the hidden tests or the
scores gets a score and a message; the grader itself does not stop. Results:
``OUT/scores.csv`` (one row per student), ``OUT/feedback/STUDENT.md`` (what each exercise
got and why, and which cells of the notebook failed) and ``OUT/results.json``.

``gradescope`` writes an Otter-Grader autograder zip for Gradescope instead (see
``gradescope_package``).
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = Path(__file__).with_name("grading_sandbox.py")
INSTRUCTOR = ROOT / "instructor"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_FUNCTION_BYTES = 64 * 2**20
MAX_RESULTS_BYTES = 256 * 2**20


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sandbox = _load("grading_sandbox", SANDBOX)


# --------------------------------------------------------------------------------------
# The assignment: which functions are graded, by which check
# --------------------------------------------------------------------------------------


@dataclass
class Exercise:
    function: str                 # the function the student writes
    check: str                    # the check that grades it
    forward: str | None = None    # the student's forward function, passed as forward=
    options: dict[str, Any] = field(default_factory=dict)
    points: float = 1.0


@dataclass
class Assignment:
    name: str
    path: Path
    exercises: list[Exercise]
    ungraded: list[str]           # solution functions no check grades


def _code_cells(notebook: dict) -> list[tuple[int, str]]:
    """(cell number from 1, source) of every code cell."""
    found = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            found.append((number, "".join(source) if isinstance(source, list) else source))
    return found


def _parse(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _defined_functions(tree: ast.Module | None) -> list[str]:
    return [node.name for node in (tree.body if tree else [])
            if isinstance(node, ast.FunctionDef)]


def find_exercises(notebook: dict, checks: Any, points: Any) -> tuple[list[Exercise], list[str]]:
    """The graded exercises of an instructor notebook, and the solution functions no check
    grades."""
    solutions: list[str] = []
    calls: dict[str, Exercise] = {}
    known = set(checks.graded_checks() if hasattr(checks, "graded_checks") else checks.CHECKS)
    for _, source in _code_cells(notebook):
        tree = _parse(source)
        if BEGIN in source:
            solutions += [name for name in _defined_functions(tree) if name not in solutions]
        for node in ast.walk(tree) if tree else []:
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in known or not node.args or not isinstance(node.args[0],
                                                                             ast.Name):
                continue
            exercise = Exercise(node.args[0].id, name)
            for keyword in node.keywords:
                if keyword.arg == "forward" and isinstance(keyword.value, ast.Name):
                    exercise.forward = keyword.value.id
                elif keyword.arg:
                    try:
                        exercise.options[keyword.arg] = ast.literal_eval(keyword.value)
                    except ValueError:
                        pass
            calls.setdefault(exercise.function, exercise)
    exercises, ungraded = [], []
    for function in solutions:
        exercise = calls.get(function)
        if exercise is None and f"check_{function}" in known:
            exercise = Exercise(function, f"check_{function}")
        if exercise is None:
            ungraded.append(function)
        else:
            exercise.points = points(function)
            exercises.append(exercise)
    return exercises, ungraded


def chapter_path(name: str, chapters: Path) -> Path | None:
    """The instructor notebook an assignment name means: a path, a stem or a prefix."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    matches = [p for p in sorted(chapters.glob("*.ipynb"))
               if p.stem == name or p.stem.startswith(name)]
    return matches[0] if len(matches) == 1 else None


# --------------------------------------------------------------------------------------
# Running a stage of a submission in the sandbox
# --------------------------------------------------------------------------------------


@dataclass
class Settings:
    notebook_seconds: float = 900.0
    test_seconds: float = 120.0
    memory_mb: int = 4096
    require_confinement: bool = False
    protected: list[str] = field(default_factory=list)


@dataclass
class Stage:
    seconds: float
    timed_out: bool
    returncode: int | None
    confinement: dict[str, Any]
    output: str


def _kill_leftovers(token: str) -> int:
    """Kill every process whose environment carries the sandbox's token (Linux)."""
    killed = 0
    marker = f"THROUGHTIME_SANDBOX={token}".encode()
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_stage(stage: str, directory: Path, logs: Path, seconds: float,
              settings: Settings) -> Stage:
    """Run ``grading_sandbox.py stage directory`` confined, for at most ``seconds``."""
    token = uuid.uuid4().hex
    limits = {"memory_mb": settings.memory_mb, "cpu_seconds": int(seconds) + 5,
              "file_mb": 64, "protected": settings.protected}
    (directory / "limits.json").write_text(json.dumps(limits))
    env = {"PATH": os.defpath, "HOME": str(directory), "TMPDIR": str(directory),
           "MPLCONFIGDIR": str(directory / ".matplotlib"), "MPLBACKEND": "Agg",
           "IPYTHONDIR": str(directory / ".ipython"), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "LANG": "C.UTF-8",
           "THROUGHTIME_SANDBOX": token}
    output = logs / f"{stage}.log"
    started = time.perf_counter()
    timed_out = False
    with open(output, "wb") as log:
        process = subprocess.Popen([sys.executable, "-I", str(SANDBOX), stage, str(directory)],
                                   cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
            _kill_leftovers(token)
    try:
        confinement = json.loads((directory / "confinement.json").read_text()[:100_000])
    except (OSError, ValueError):
        confinement = {"landlock": None, "reason": "the sandbox did not report"}
    return Stage(time.perf_counter() - started, timed_out, process.returncode,
                 confinement if isinstance(confinement, dict) else {}, _tail(output))


def _read_lines(path: Path, limit: int) -> list[dict]:
    """The JSON lines a sandbox wrote (untrusted: size-limited, bad lines skipped)."""
    if not path.exists() or path.stat().st_size > limit:
        return []
    entries = []
    for line in path.read_text("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _fresh_directory(base: Path, name: str) -> Path:
    directory = base / name
    directory.mkdir(mode=0o700)
    return directory


def _remove(path: Path) -> None:
    def retry(function, target, _):
        os.chmod(target, 0o700)
        function(target)

    shutil.rmtree(path, onerror=retry)


# --------------------------------------------------------------------------------------
# Grading one submission
# --------------------------------------------------------------------------------------


@dataclass
class ExerciseResult:
    function: str
    check: str
    points: float
    earned: float
    message: str


@dataclass
class Result:
    student: str
    notebook: str
    assignment: str = ""
    status: str = "graded"
    results: list[ExerciseResult] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confinement: str = ""
    seconds: float = 0.0

    @property
    def earned(self) -> float:
        return sum(r.earned for r in self.results)

    @property
    def possible(self) -> float:
        return sum(r.points for r in self.results)


def read_notebook(path: Path) -> tuple[dict | None, str]:
    """A submitted notebook as a dict, or None and the reason it is not one."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is {size / 2**20:.0f} MB, more than a notebook can be."
        notebook = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the file is not text (UTF-8), so it is not a notebook."
    except json.JSONDecodeError as error:
        return None, (f"the file is not valid JSON ({error.msg} at line {error.lineno}, column "
                      f"{error.colno}), so Jupyter cannot open it either; was it saved "
                      "completely?")
    except OSError as error:
        return None, f"the file could not be read ({error.strerror})."
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and (isinstance(c.get("source", ""), str) or (
                isinstance(c.get("source"), list)
                and all(isinstance(line, str) for line in c["source"])))
            for c in cells):
        return None, "the file is JSON but not a Jupyter notebook (it has no list of cells)."
    return notebook, ""


def _function_sources(notebook: dict) -> dict[str, str]:
    """The source of the last top-level definition of each function in the notebook."""
    found = {}
    for _, source in _code_cells(notebook):
        tree = _parse(source)
        for node in tree.body if tree else []:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_source_segment(source, node) or ""
    return found


def _describe_stop(entries: list[dict], cells: dict[int, str]) -> str:
    started = [e["cell"] for e in entries if e.get("status") == "started" and "cell" in e]
    if not started:
        return "before running any cell"
    number = started[-1]
    first_line = next((line.strip() for line in cells.get(number, "").splitlines()
                       if line.strip() and not line.strip().startswith("#")), "")
    return f"while running cell {number} (`{first_line[:60]}`)"


def grade_submission(student: str, path: Path, assignment: Assignment | None, hidden: Any,
                     seed: int, checks: Any, settings: Settings, work: Path) -> Result:
    """Grade one submitted notebook (never raises for anything the submission does)."""
    result = Result(student, str(path))
    notebook, problem = read_notebook(path)
    if notebook is None:
        result.status = "not a notebook"
        result.notes.append(f"Your submission could not be graded: {problem}")
        if assignment is not None:
            result.assignment = assignment.name
            result.results = [ExerciseResult(e.function, e.check, e.points, 0.0,
                                             "not graded: the submission is not a notebook")
                              for e in assignment.exercises]
        return result
    if assignment is None:
        result.status = "unknown assignment"
        result.notes.append("The grader could not tell which chapter this notebook is "
                            "(give the assignment with --assignment, ASSIGNMENT=NN for make).")
        return result
    result.assignment = assignment.name
    cells = _code_cells(notebook)
    names = sorted({e.function for e in assignment.exercises}
                   | {e.forward for e in assignment.exercises if e.forward})
    base = Path(tempfile.mkdtemp(prefix="throughtime-grade-", dir=work))
    try:
        logs = _fresh_directory(base, "logs")  # outside both sandboxes' folders
        run_dir = _fresh_directory(base, "notebook")
        (run_dir / "job.json").write_text(json.dumps({"cells": cells, "functions": names}))
        stage = run_stage("notebook", run_dir, logs, settings.notebook_seconds, settings)
        result.seconds += stage.seconds
        result.confinement = _confinement_text(stage.confinement)
        if settings.require_confinement and not stage.confinement.get("landlock"):
            result.status = "not graded"
            result.notes.append("The grader refused to run this submission unconfined "
                                f"({result.confinement}).")
            return result
        entries = _read_lines(run_dir / "progress.jsonl", 16 * 2**20)
        result.cells = [{"cell": e["cell"], "error": str(e["error"])[:400]} for e in entries
                        if e.get("status") == "done" and "error" in e
                        and isinstance(e.get("cell"), int)]
        unsaved = {name: str(why)[:300] for e in entries
                   for name, why in (e.get("unsaved") or {}).items()
                   if isinstance(e.get("unsaved"), dict)}
        finished = any(e.get("status") == "finished" for e in entries)
        if stage.timed_out:
            result.notes.append(f"Your notebook did not finish within "
                                f"{settings.notebook_seconds:.0f} s: it was stopped "
                                f"{_describe_stop(entries, dict(cells))}. The functions it had "
                                "defined by then were graded.")
        elif not finished:
            result.notes.append("Your notebook's run ended early "
                                f"{_describe_stop(entries, dict(cells))} (the process exited "
                                f"with status {stage.returncode}: out of memory, or a call "
                                "that ends Python?). The functions it had defined by then "
                                "were graded.")

        test_dir = _fresh_directory(base, "tests")
        (test_dir / "functions").mkdir()
        for name in names:
            saved = run_dir / "functions" / f"{name}.pkl"
            if saved.is_file() and not saved.is_symlink() and \
                    saved.stat().st_size <= MAX_FUNCTION_BYTES:
                shutil.copyfile(saved, test_dir / "functions" / f"{name}.pkl")
        missing = {name for name in names if not (test_dir / "functions" / f"{name}.pkl").exists()}
        _remove(run_dir)
        sources = _function_sources(notebook)
        all_cases, job = [], []
        for exercise in assignment.exercises:
            cases = hidden.cases(exercise.check, seed, exercise.options)
            all_cases.append(cases)
            job.append({"check": exercise.check, "function": exercise.function,
                        "forward": exercise.forward, "cases": [c.public for c in cases]})
        with open(test_dir / "job.pkl", "wb") as handle:
            pickle.dump(job, handle)
        stage = run_stage("tests", test_dir, logs, settings.test_seconds, settings)
        result.seconds += stage.seconds
        lines = _read_lines(test_dir / "results.jsonl", MAX_RESULTS_BYTES)
        outcomes: dict[int, Any] = {}
        for line in lines:
            number = line.get("exercise")
            if isinstance(number, int) and number not in outcomes:
                try:
                    outcomes[number] = sandbox.decode(line.get("outcomes"))
                except (ValueError, TypeError):
                    outcomes[number] = None
        for number, (exercise, cases) in enumerate(zip(assignment.exercises, all_cases,
                                                       strict=True)):
            copied = checks.copied_from_library(exercise.check,
                                                sources.get(exercise.function, ""),
                                                exercise.function)
            if copied is not None:
                message = (f"{exercise.check}: your {exercise.function} is a copy of the "
                           f"library's {copied}, not your own code.")
                passed = False
            elif exercise.function in unsaved and exercise.function in missing:
                message = (f"{exercise.check}: your {exercise.function} could not be saved "
                           f"after your notebook ran ({unsaved[exercise.function]}).")
                passed = False
            elif number not in outcomes:
                why = ("did not finish within the time limit of "
                       f"{settings.test_seconds:.0f} s" if stage.timed_out else
                       "stopped before it finished (out of memory, or a call that ends "
                       "Python?)")
                message = f"{exercise.check}: your {exercise.function} {why} on the hidden cases."
                passed = False
            elif outcomes[number] is None or not isinstance(outcomes[number], list):
                message = (f"{exercise.check}: the grader could not read the results of your "
                           f"{exercise.function}.")
                passed = False
            else:
                verdict = checks.judge_cases(exercise.check, cases, outcomes[number])
                message, passed = verdict.message, verdict.passed
            result.results.append(ExerciseResult(exercise.function, exercise.check,
                                                 exercise.points,
                                                 exercise.points if passed else 0.0, message))
    finally:
        _remove(base)
    return result


def _confinement_text(report: dict[str, Any]) -> str:
    if report.get("landlock"):
        parts = ["files", "network" if report.get("network") else "",
                 "signals" if report.get("signals") else ""]
        limits = report.get("limits", {})
        return (f"Landlock ABI {report['landlock']} ({', '.join(p for p in parts if p)}), "
                f"{limits.get('memory_mb')} MB, {limits.get('cpu_seconds')} s of CPU")
    return f"no Landlock: {report.get('reason', 'unknown')}"


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def feedback(result: Result) -> str:
    """The feedback a student reads: the score, each exercise, the notebook's errors."""
    lines = [f"# Feedback: {result.assignment or 'submission'}, {result.student}", ""]
    if result.results:
        lines += [f"Score: {result.earned:g} of {result.possible:g} points.", ""]
    lines += [note for note in result.notes for note in (note, "")]
    for item in result.results:
        lines += [f"## {item.function}: {item.earned:g} of {item.points:g}", "", "```text",
                  item.message, "```", ""]
    if result.cells:
        lines += ["## Cells of your notebook that raised an error", ""]
        lines += [f"- cell {c['cell']}: {c['error']}" for c in result.cells[:30]]
        if len(result.cells) > 30:
            lines.append(f"- ... and {len(result.cells) - 30} more")
        lines += ["", "Cells of the student edition that depend on an unfinished exercise "
                  "raise until it is done; check the ones your own code should make work.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "student"


def write_reports(results: list[Result], out: Path) -> None:
    """scores.csv, feedback/STUDENT.md and results.json under ``out``, written at the end."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".grades-", dir=out))
    try:
        (staging / "feedback").mkdir()
        functions: list[str] = []
        for result in results:
            functions += [r.function for r in result.results if r.function not in functions]
        with open(staging / "scores.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["student", "assignment", "status", *functions, "total", "out_of",
                             "notes"])
            for result in results:
                earned = {r.function: f"{r.earned:g}" for r in result.results}
                writer.writerow([result.student, result.assignment, result.status,
                                 *(earned.get(f, "") for f in functions),
                                 f"{result.earned:g}", f"{result.possible:g}",
                                 " ".join(result.notes)[:500]])
        for result in results:
            (staging / "feedback" / f"{_safe_name(result.student)}.md").write_text(
                feedback(result))
        (staging / "results.json").write_text(json.dumps(
            [{**asdict(r), "earned": r.earned, "possible": r.possible} for r in results],
            indent=1))
        for name in ("scores.csv", "results.json"):
            os.replace(staging / name, out / name)
        if (out / "feedback").exists():
            shutil.rmtree(out / "feedback")
        os.replace(staging / "feedback", out / "feedback")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) for every submission: STUDENT.ipynb or STUDENT/any.ipynb."""
    found: list[tuple[str, Path]] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append((entry.stem, entry))
        elif entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb")
                               if ".ipynb_checkpoints" not in p.parts)
            found += [(entry.name if len(notebooks) == 1 else f"{entry.name}/{p.stem}", p)
                      for p in notebooks]
    return found


def detect_assignment(path: Path, chapters: Path) -> Path | None:
    """The chapter a submission belongs to: its metadata (the student edition records it),
    else a chapter name in its file or folder name."""
    try:
        metadata = json.loads(path.read_bytes()[:MAX_NOTEBOOK_BYTES]).get("metadata", {})
        chapter = metadata.get("throughtime", {}).get("chapter")
    except (OSError, ValueError, AttributeError):
        chapter = None
    if isinstance(chapter, str) and (chapters / f"{chapter}.ipynb").exists():
        return chapters / f"{chapter}.ipynb"
    stems = [p for p in sorted(chapters.glob("*.ipynb")) if p.stem in str(path)]
    return stems[0] if len(stems) == 1 else None


def load_assignment(path: Path, checks: Any, hidden: Any) -> Assignment:
    notebook = json.loads(path.read_text())
    exercises, ungraded = find_exercises(notebook, checks, hidden.points)
    return Assignment(path.stem, path, exercises, ungraded)


def grade_folder(folder: Path, out: Path, *, assignment: str | None, chapters: Path,
                 hidden_tests: Path, secret_file: Path, settings: Settings,
                 jobs: int = 1) -> list[Result]:
    """Grade every submission in ``folder``; write the reports; return the results."""
    from throughtime import checks

    hidden = _load("hidden_tests", hidden_tests)
    seed = hidden.course_seed(secret_file)
    fixed = None
    if assignment:
        fixed = chapter_path(assignment, chapters)
        if fixed is None:
            raise SystemExit(f"--assignment: no chapter matches {assignment!r} in {chapters}")
    loaded: dict[Path, Assignment] = {}
    lock = threading.Lock()

    def assignment_for(path: Path) -> Assignment | None:
        chosen = fixed or detect_assignment(path, chapters)
        if chosen is None:
            return None
        with lock:
            if chosen not in loaded:
                loaded[chosen] = load_assignment(chosen, checks, hidden)
            return loaded[chosen]

    work = Path(tempfile.mkdtemp(prefix="throughtime-grading-"))
    work.chmod(0o700)
    protected = [str(p) for p in (INSTRUCTOR, hidden_tests.parent, secret_file, out, folder,
                                  ROOT / ".git")]
    settings.protected = sorted(set(settings.protected) | set(protected))

    def one(item: tuple[str, Path]) -> Result:
        student, path = item
        try:
            return grade_submission(student, path, assignment_for(path), hidden, seed, checks,
                                    settings, work)
        except Exception as error:  # noqa: BLE001  (a grader bug must not stop the others)
            result = Result(student, str(path), status="grader error")
            result.notes.append(f"The grader failed on this submission ({type(error).__name__}: "
                                f"{error}); it was not graded. Please tell the instructor.")
            return result

    items = submissions(folder)
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(one, items))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_reports(results, out)
    for chosen in loaded.values():
        if chosen.ungraded:
            print(f"note: {chosen.name}: {', '.join(chosen.ungraded)} "
                  f"{'is' if len(chosen.ungraded) == 1 else 'are'} not graded automatically "
                  "(no check grades them)", file=sys.stderr)
    return results


# --------------------------------------------------------------------------------------
# Gradescope: an Otter-Grader autograder
# --------------------------------------------------------------------------------------

OTTER_TEST = '''"""Hidden test of {function}: {check} on the course's private cases."""

import json

from otter.test_files import test_case

OK_FORMAT = False

name = {function!r}
points = {points!r}
# Kept off the line that calls the check: Otter shows that line when the test fails.
CASES = dict(seed={seed!r}, sizes=json.loads({sizes!r}), **json.loads({options!r}))


@test_case(points={points!r}, hidden=True)
def test_{function}(env):
    from throughtime.checks import hidden_check

    function = env.get({function!r})
    assert callable(function), "{function} is not defined in your notebook"
    print(hidden_check({check!r}, function, forward={forward}, **CASES))
'''


def _requirements(wheel_name: str) -> str:
    """The autograder's packages: requirements.txt's pins for the library's dependencies,
    torch's CPU build, and the library's wheel shipped inside the zip."""
    wanted = {"numpy", "scipy", "pandas", "statsmodels", "matplotlib", "ipywidgets", "tqdm"}
    pins = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name = re.split(r"[=<>\[ ]", line.strip(), maxsplit=1)[0].lower()
        if name in wanted:
            pins.append(line.strip())
        elif name == "torch":
            pins.append(line.strip().split("+")[0] + "+cpu")
    return "\n".join(["--extra-index-url https://download.pytorch.org/whl/cpu", *pins,
                      f"throughtime @ file:///autograder/source/files/{wheel_name}", ""])


def _make_assignments() -> Any:
    return _load("make_assignments", Path(__file__).with_name("make_assignments.py"))


def gradescope_package(assignment: Assignment, out: Path, *, hidden: Any, seed: int,
                       python_version: str = "3.11") -> Path:
    """An Otter-Grader autograder zip: one hidden test per exercise, the library's wheel.

    Gradescope builds an image from it once (``setup.sh``: a conda environment with
    Python, the pinned packages and the wheel) and runs every submission in its own
    container. Otter runs the notebook and then the tests in that container, in the
    submission's process: see the instructors' page for what that means.
    """
    from otter.generate import main as otter_generate

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="throughtime-gradescope-"))
    try:
        (build / "tests").mkdir()
        wheel = _make_assignments().build_wheel(ROOT, build)
        for exercise in assignment.exercises:
            hidden.cases(exercise.check, seed, exercise.options)  # fail early on bad options
            sizes = hidden.SIZES.get(exercise.check)
            (build / "tests" / f"{exercise.function}.py").write_text(OTTER_TEST.format(
                function=exercise.function, check=exercise.check, points=exercise.points,
                forward=f"env.get({exercise.forward!r})" if exercise.forward else "None",
                seed=[seed, hidden.HIDDEN_TESTS_VERSION],
                sizes=json.dumps(sizes), options=json.dumps(exercise.options)))
        (build / "requirements.txt").write_text(_requirements(wheel.name))
        config = {"lang": "python", "show_stdout": False, "show_hidden": True, "pdf": False}
        (build / "otter_config.json").write_text(json.dumps(config, indent=1))
        cwd = os.getcwd()
        os.chdir(build)
        try:
            otter_generate(tests_dir="tests", output_path=str(out), config="otter_config.json",
                           requirements="requirements.txt", no_environment=True,
                           files=[wheel.name], python_version=python_version)
        finally:
            os.chdir(cwd)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = {"chapters": ROOT / "chapters", "hidden": INSTRUCTOR / "hidden_tests.py",
                "secret": INSTRUCTOR / "secret.txt"}
    if argv[:1] == ["gradescope"]:
        parser = argparse.ArgumentParser(prog="grade.py gradescope",
                                         description="Write an Otter-Grader autograder zip.")
        parser.add_argument("--assignment", required=True)
        parser.add_argument("--out", type=Path)
        parser.add_argument("--chapters", type=Path, default=defaults["chapters"])
        parser.add_argument("--hidden-tests", type=Path, default=defaults["hidden"])
        parser.add_argument("--secret-file", type=Path, default=defaults["secret"])
        args = parser.parse_args(argv[1:])
        from throughtime import checks

        hidden = _load("hidden_tests", args.hidden_tests)
        path = chapter_path(args.assignment, args.chapters)
        if path is None:
            parser.error(f"no chapter matches {args.assignment!r}")
        assignment = load_assignment(path, checks, hidden)
        out = args.out or ROOT / "_build" / "grades" / f"{assignment.name}-gradescope.zip"
        gradescope_package(assignment, out, hidden=hidden,
                           seed=hidden.course_seed(args.secret_file))
        print(f"Gradescope autograder for {assignment.name} "
              f"({', '.join(e.function for e in assignment.exercises)}): {out}")
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="one notebook or folder per student")
    parser.add_argument("--assignment", help="chapter number prefix, name or notebook path")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "grades")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--notebook-seconds", type=float, default=900.0)
    parser.add_argument("--test-seconds", type=float, default=120.0)
    parser.add_argument("--memory-mb", type=int, default=4096)
    parser.add_argument("--require-confinement", action="store_true",
                        help="refuse to run submissions where Landlock is unavailable")
    parser.add_argument("--chapters", type=Path, default=defaults["chapters"])
    parser.add_argument("--hidden-tests", type=Path, default=defaults["hidden"])
    parser.add_argument("--secret-file", type=Path, default=defaults["secret"])
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS must be a folder of notebooks, got {str(args.submissions)!r}")
    settings = Settings(args.notebook_seconds, args.test_seconds, args.memory_mb,
                        args.require_confinement)
    results = grade_folder(args.submissions.resolve(), args.out.resolve(),
                           assignment=args.assignment, chapters=args.chapters.resolve(),
                           hidden_tests=args.hidden_tests.resolve(),
                           secret_file=args.secret_file.resolve(), settings=settings,
                           jobs=args.jobs)
    for result in results:
        score = f"{result.earned:g}/{result.possible:g}" if result.results else "-"
        print(f"{result.student}: {score} ({result.status})")
    confinements = {r.confinement for r in results if r.confinement}
    for text in sorted(confinements):
        print(f"sandbox: {text}")
        if text.startswith("no Landlock"):
            print("warning: submissions ran without filesystem confinement; grade untrusted "
                  "code in a container (see instructors.md)", file=sys.stderr)
    print(f"Scores in {args.out / 'scores.csv'}, feedback in {args.out / 'feedback'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
