"""Numbers for the answer key of the open exercises that need a run (instructor-only).

    python instructor/compute_answers.py [--out instructor/computed_answers.md] [--only 6|7]

Executes chapters 6 and 7 as they are, appends the computations that their open exercises
ask students to run (with the chapters' own functions and default settings), and prints
the results as Markdown for `instructor/answers.md`. Results depend on the machine's
kernels and on the library's version: they are ranges to grade against, not the only right
answers. Each chapter's run plus its exercises takes a few to tens of minutes on one core.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# Appended to chapter 6 and run after it: the exercises' own calls, with the chapter's `run`,
# `make_task`, settings and `solved_count`.
CHAPTER_6 = """
for label, overrides in (("PyTorch's initialisation", dict(forget_bias=None, update_bias=None)),
                         ("forget bias 3", dict(forget_bias=3.0)),
                         ("the chapter's (biases 1)", {})):
    result = run("adding", 30, **overrides)
    print("FB|" + "|".join([label, f"{solved_count(result, 'LSTM')} of {len(result.seeds)}",
                            f"{solved_count(result, 'GRU')} of {len(result.seeds)}",
                            ", ".join(f"{v:.2f}" for v in result.final("LSTM")),
                            ", ".join(f"{v:.2f}" for v in result.final("GRU"))]))
for match in ("parameters", "hidden_size"):
    sweep = cmp.data_size_sweep(make_task("adding", 10), (16, 64, 256, 1024, 4096), match=match,
                                seeds=range(10), steps=STEPS["adding"],
                                lr=LEARNING_RATES["adding", 10], **TRAINING)
    print(f"SWH|{match}|{sweep.hidden_sizes}|{sweep.parameters}")
    for i, size in enumerate(sweep.sizes):
        lstm, gru = sweep.scores["LSTM"][i], sweep.scores["GRU"][i]
        solved = sweep.task.solved
        print("SW|" + "|".join([match, str(size), f"{int((lstm >= solved).sum())} of {len(lstm)}",
                                f"{int((gru >= solved).sum())} of {len(gru)}",
                                f"{np.median(lstm):.2f}", f"{np.median(gru):.2f}"]))
"""


def execute(chapter: str, extra: str) -> str:
    """Run a chapter notebook with ``extra`` appended; what the extra cell printed."""
    import nbformat
    from nbclient import NotebookClient

    path = next((ROOT / "chapters").glob(f"{chapter}_*.ipynb"))
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(extra))
    NotebookClient(notebook, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return "".join(o.get("text", "") for o in notebook.cells[-1].outputs)


def chapter_6() -> list[str]:
    printed = execute("06", CHAPTER_6).splitlines()
    lines = ["### ex-compare-forget-bias (adding, T = 30, the chapter's seeds and budget)", "",
             "| initialisation | LSTM seeds solved | GRU seeds solved | LSTM final scores | "
             "GRU final scores |", "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(line.split("|")[1:]) + " |" for line in printed
              if line.startswith("FB|")]
    lines += ["", "### ex-compare-sweep (adding, T = 10, ten seeds)", ""]
    for match in ("parameters", "hidden_size"):
        head = next((line.split("|") for line in printed if line.startswith(f"SWH|{match}|")),
                    None)
        if head:
            lines += [f"match={match!r}: hidden sizes {head[2]}, parameters {head[3]}", ""]
        lines += ["| N | LSTM solved | GRU solved | LSTM median | GRU median |",
                  "| --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(line.split("|")[2:]) + " |" for line in printed
                  if line.startswith(f"SW|{match}|")]
        lines.append("")
    return lines


DM_LAGS = """
gru_label = KINDS["gru"]
per_seed = [origin_losses(network_results[gru_label, seed]) for seed in SEEDS]
gru_losses = np.mean(per_seed, axis=0)
for lag in (0, 3, 11):
    test = ts.diebold_mariano(gru_losses, origin_losses(reference), lag=lag)
    print(f"DM lag={lag}: mean difference {test.mean_difference:+.4f} ppm, p = {test.p:.4f}")
print(f"DM origins={len(gru_losses)}")
"""


def dm_lags() -> list[str]:
    """Chapter 7 executed, then ex-forecast-dm-lag's three tests."""
    printed = execute("07", DM_LAGS)
    return ["| lag | GRU (mean over seeds) minus SARIMA, 1-12 months |", "| --- | --- |",
            *(f"| {line.split()[1].removeprefix('lag=').rstrip(':')} | "
              f"{' '.join(line.split()[2:])} |" for line in printed.splitlines()
              if line.startswith("DM lag=")),
            "", *(line for line in printed.splitlines() if line.startswith("DM origins"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "instructor" / "computed_answers.md")
    parser.add_argument("--only", choices=("6", "7"), help="one chapter's experiments")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    lines = [f"Computed by instructor/compute_answers.py at commit {commit}, torch "
             f"{torch.__version__}, {platform.machine()} CPU.", ""]
    if args.only in (None, "6"):
        lines += chapter_6()
    if args.only in (None, "7"):
        lines += ["## ex-forecast-dm-lag (chapter 7 as executed)", "", *dm_lags(), ""]
    lines.append(f"({time.perf_counter() - started:.0f} s)")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
