"""Execute every chapter under several CPU kernel settings and report what changes.

A reader's machine runs other numerical kernels than the one that built the book: another
CPU (AVX-512, AVX2, an ARM Mac), another BLAS, a GPU. The last bits of many operations
differ, and a training run can land elsewhere. This script simulates other machines on
this one by capping the instruction sets that PyTorch (``ATEN_CPU_CAPABILITY``), oneDNN
(``ONEDNN_MAX_CPU_ISA``) and MKL (``MKL_ENABLE_INSTRUCTIONS``) may use, executes every
chapter under each setting with the book's checks strict (``THROUGHTIME_STRICT=1``), and
reports per chapter and setting:

* whether it ran to the end, and if not the first failing cell with its error;
* the glued numbers that moved against the native run: how many values differ at all, and
  which ones change the text a reader sees (formatted as the chapter's prose formats them).

Usage::

    python scripts/portability.py                      # every chapter, three settings
    python scripts/portability.py --chapters 03 05     # chapters whose names start so
    python scripts/portability.py --settings native baseline --jobs 2

The report is printed and written to ``_build/portability/report.md`` (and ``report.json``);
the executed notebooks are kept beside it. The exit status is 1 when any chapter fails under
any setting.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"

# The kernel settings are the seed studies' (bench/kernels.py): one definition for both.
sys.path.insert(0, str(ROOT / "bench"))
from kernels import KERNEL_VARIABLES, SETTINGS  # noqa: E402

GLUE_MIME = "application/papermill.record/text/plain"
GLUE_ROLE = re.compile(r"\{glue(?::(?:text|any|md)?)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::([^`]*))?`")
RELATIVE_TOLERANCE = 1e-9  # below this a glued float counts as unchanged


def _run_one(notebook: Path, output: Path, timeout: int) -> dict:
    """Execute one notebook in this process's environment; return what happened."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    started = time.perf_counter()
    failure = None
    try:
        client.execute()
    except CellExecutionError as error:
        failure = _first_failure(nb, str(error))
    elapsed = time.perf_counter() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)
    return {"failure": failure, "seconds": round(elapsed, 1), "glued": _glued(nb)}


def _first_failure(nb, message: str) -> dict:
    """The first cell with an error output, numbered as nbval numbers cells (code cells)."""
    code_index = -1
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_index += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}".strip()
                return {"cell": index, "code_cell": code_index, "error": text[:600]}
    return {"cell": None, "code_cell": None, "error": message.strip().splitlines()[-1][:600]}


def _glued(nb) -> dict[str, str]:
    """Every glued value's text/plain representation, by name."""
    values = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            data = output.get("data", {})
            if name and GLUE_MIME in data:
                values[name] = data[GLUE_MIME]
    return values


def glue_formats(notebook: Path) -> dict[str, set[str]]:
    """The format specifications with which the prose shows each glued name."""
    import nbformat

    formats: dict[str, set[str]] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for name, spec in GLUE_ROLE.findall(cell.source):
                formats.setdefault(name, set()).add(spec)
    return formats


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _shown(value, spec: str) -> str:
    """The text a reader sees for a value shown with ``{glue:text}`name:spec```."""
    if not spec:
        return str(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def moved(native: dict[str, str], other: dict[str, str],
          formats: dict[str, set[str]]) -> tuple[list[str], list[dict]]:
    """Names whose values differ, and the ones among them whose text in the prose differs."""
    changed, visible = [], []
    for name in sorted(set(native) | set(other)):
        a, b = _value(native.get(name, "<missing>")), _value(other.get(name, "<missing>"))
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            same = a == b or abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))
        else:
            same = a == b
        if same:
            continue
        changed.append(name)
        for spec in sorted(formats.get(name, set())):
            if _shown(a, spec) != _shown(b, spec):
                visible.append({"name": name, "spec": spec, "native": _shown(a, spec),
                                "other": _shown(b, spec)})
                break
    return changed, visible


def _environment(setting: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in KERNEL_VARIABLES}
    environment.update(SETTINGS[setting])
    environment.update({"THROUGHTIME_STRICT": "1", "OMP_NUM_THREADS": "1",
                        "OPENBLAS_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                        "JUPYTER_PREFER_ENV_PATH": "1"})
    environment.pop("MPLBACKEND", None)
    return environment


def _execute(notebook: Path, setting: str, out: Path, timeout: int) -> dict:
    output = out / setting / notebook.name
    result_file = output.with_suffix(".json")
    command = [sys.executable, __file__, "--run-one", str(notebook), "--output", str(output),
               "--result", str(result_file), "--timeout", str(timeout)]
    completed = subprocess.run(command, env=_environment(setting), capture_output=True,
                               text=True)
    if completed.returncode != 0 or not result_file.exists():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        return {"failure": {"cell": None, "code_cell": None, "error": " | ".join(tail)},
                "seconds": None, "glued": {}}
    return json.loads(result_file.read_text())


def _cell_text(failure: dict | None) -> str:
    if failure is None:
        return "pass"
    if failure["code_cell"] is None:
        return "FAIL"
    return f"FAIL at cell {failure['code_cell']}"


def report(results: dict, settings: list[str], chapters: list[Path]) -> str:
    lines = ["# Portability of the chapters", "",
             "Each chapter executed with the book's checks strict under each kernel setting "
             "(" + "; ".join(f"{name}: " + (", ".join(f"{k}={v}" for k, v in env.items())
                                            or "the libraries' own choice")
                             for name, env in SETTINGS.items() if name in settings) + ").",
             "Cells are numbered as nbval numbers them (code cells from 0).", "",
             "| chapter | " + " | ".join(settings) + " |",
             "|---|" + "---|" * len(settings)]
    for chapter in chapters:
        cells = []
        for setting in settings:
            result = results[chapter.name][setting]
            seconds = "" if result["seconds"] is None else f" ({result['seconds']:.0f} s)"
            cells.append(_cell_text(result["failure"]) + seconds)
        lines.append(f"| {chapter.stem} | " + " | ".join(cells) + " |")
    lines.append("")
    for chapter in chapters:
        for setting in settings:
            failure = results[chapter.name][setting]["failure"]
            if failure:
                lines.append(f"- **{chapter.stem}, {setting}**: {failure['error']}")
    reference = "native" if "native" in settings else settings[0]
    lines += ["", f"## Glued numbers that moved against the {reference} run", ""]
    for chapter in chapters:
        formats = glue_formats(chapter)
        base = results[chapter.name][reference]["glued"]
        for setting in settings:
            if setting == reference:
                continue
            other = results[chapter.name][setting]["glued"]
            changed, visible = moved(base, other, formats)
            summary = (f"- {chapter.stem}, {setting}: {len(changed)} of {len(base)} values "
                       f"differ, {len(visible)} change the text")
            if visible:
                summary += ": " + "; ".join(
                    f"`{v['name']}` {v['native']} → {v['other']}" for v in visible)
            lines.append(summary)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="*", default=None,
                        help="chapter name prefixes, e.g. 03 05 (default: all)")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS),
                        choices=list(SETTINGS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "portability")
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:
        result = _run_one(args.run_one, args.output, args.timeout)
        args.result.write_text(json.dumps(result))
        return 0

    chapters = sorted(CHAPTERS.glob("*.ipynb"))
    if args.chapters:
        chapters = [c for c in chapters if any(c.name.startswith(p) for p in args.chapters)]
        if not chapters:
            parser.error(f"no chapter starts with any of {args.chapters}")
    jobs = [(chapter, setting) for chapter in chapters for setting in args.settings]
    results: dict = {chapter.name: {} for chapter in chapters}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {job: pool.submit(_execute, job[0], job[1], args.out, args.timeout)
                   for job in jobs}
        for (chapter, setting), future in futures.items():
            results[chapter.name][setting] = future.result()
            print(f"{chapter.stem} [{setting}]: "
                  f"{_cell_text(results[chapter.name][setting]['failure'])}", flush=True)
    text = report(results, args.settings, chapters)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text)
    (args.out / "report.json").write_text(json.dumps(results, indent=1))
    print()
    print(text)
    failed = any(result["failure"] for per in results.values() for result in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
