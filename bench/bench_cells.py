"""Training-step benchmark: the book's recurrent layers against ``torch.nn``.

One training step is forward + backward of a fixed random linear loss on every output,
sum(output * weights), with T = 100, B = 64, I = 8, H = 128 in float32, after the
gradients are reset. Each row is compared with its ``torch.nn`` counterpart measured in
the same run: the rows are timed in turn, round after round, so that a busy machine slows
every row alike, and the table reports medians over the rounds.

Rows: ``torch.nn.LSTM``/``GRU``/``RNN``; ``throughtime.torch_cells`` layers with their fast
path (hand-derived BPTT in an autograd Function) and with the plain autograd loop; and
``numpy_cells.lstm_forward`` + ``lstm_backward`` (float32), compared with ``torch.nn.LSTM``.

Clocks: ``--clock wall`` (the default) reads the wall clock; ``--clock process`` reads the
CPU time of this process, which other programs on a busy machine barely disturb, and which
equals the wall time with one thread (``--threads 1``); it is refused with more threads,
whose CPU times add up.

Accuracy, after the timings: every layer's hidden states in float32 and bfloat16, from
``torch.nn`` and from ``throughtime.torch_cells`` (fast path) with the same weights and
inputs, each compared with ``torch.nn`` in float64 on the same (rounded) weights and
inputs, the "truth". Two regimes: the default initialisation with standard normal inputs,
and near-zero hidden values (weights and inputs scaled by 1e-3), where a tanh computed as
2 sigmoid(2x) - 1 would lose its relative precision. The table gives the median and the
largest elementwise relative error |y - y_64| / |y_64| of each implementation, and the
largest difference between the two implementations relative to the largest hidden value.

Peak memory, measured in a separate, untimed step for each row:
- torch on CPU: the highest level of memory held by torch's CPU allocator during the
  step, above the level at its start, summed from ``torch.profiler`` memory events
  (allocations counted at the start of the operation that made them, frees at its end);
- torch on CUDA: ``torch.cuda.max_memory_allocated`` above the level at the start;
- numpy: the peak of ``tracemalloc`` (numpy reports its buffers to it) above the start.

Usage (``make bench`` runs the first line)::

    python bench/bench_cells.py
    python bench/bench_cells.py --quick          # fewer rounds, a smoke test
    python bench/bench_cells.py --device cuda    # the torch rows on the GPU
    python bench/bench_cells.py --threads 1 --clock process   # CPU time: a busy machine

The table is printed and written as JSON to ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# numpy's BLAS reads this when numpy is first imported (torch imports it). One thread suits
# the numpy LSTM's small per-step products, and it is what ``make`` sets; an explicit
# setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from throughtime import torch_cells  # noqa: E402

STEPS, BATCH, INPUT_SIZE, HIDDEN_SIZE = 100, 64, 8, 128
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One benchmarked implementation: how to run one training step, and its baseline."""

    name: str
    baseline: str  # the name of the torch.nn row it is compared with
    kind: str  # "torch" or "numpy", for the memory measurement
    step: Callable[[], None]
    times: list[float]
    peak_bytes: int | None = None


def torch_step(module: nn.Module, x: torch.Tensor, weights: torch.Tensor) -> Callable[[], None]:
    """A training step of ``module``: forward, the linear loss, backward."""
    def step() -> None:
        module.zero_grad(set_to_none=True)
        output = module(x)[0]
        (output * weights).sum().backward()
    return step


def numpy_lstm_step(reference: nn.LSTM, x: torch.Tensor,
                    weights: torch.Tensor) -> Callable[[], None] | None:
    """The numpy LSTM's training step on the same weights, or None without numpy_cells."""
    try:
        from throughtime import numpy_cells
    except ImportError as error:
        print(f"numpy_cells row skipped: throughtime.numpy_cells cannot be imported ({error})")
        return None
    params = numpy_cells.params_from_torch(reference)  # float32 arrays
    xs = x.cpu().numpy()
    dhs = weights.cpu().numpy()  # d loss / d h_t for the linear loss

    def step() -> None:
        hs, _, cache = numpy_cells.lstm_forward(xs, None, None, params)
        numpy_cells.lstm_backward(dhs, cache)
    return step


def build_rows(device: torch.device) -> list[Row]:
    torch.manual_seed(0)
    x = torch.randn(STEPS, BATCH, INPUT_SIZE, device=device)
    weights = torch.randn(STEPS, BATCH, HIDDEN_SIZE, device=device)
    rows = []
    for name in ("LSTM", "GRU", "RNN"):
        reference = getattr(nn, name)(INPUT_SIZE, HIDDEN_SIZE, device=device)
        baseline = f"torch.nn.{name}"
        rows.append(Row(baseline, baseline, "torch", torch_step(reference, x, weights), []))
        for implementation in ("fast", "autograd"):
            ours = getattr(torch_cells, name)(INPUT_SIZE, HIDDEN_SIZE, device=device,
                                              implementation=implementation)
            ours.load_state_dict(reference.state_dict())
            rows.append(Row(f"torch_cells.{name} ({implementation})", baseline, "torch",
                            torch_step(ours, x, weights), []))
        if name == "LSTM":
            step = numpy_lstm_step(reference, x, weights)
            if step is not None:
                rows.append(Row("numpy_cells LSTM (float32)", baseline, "numpy", step, []))
    return rows


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(row: Row, device: torch.device) -> int:
    """Peak bytes allocated during one step of ``row``, above the level at its start."""
    if row.kind == "numpy":
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        row.step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak - start
    if device.type == "cuda":
        synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        row.step()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        row.step()
    changes = []
    for event in profiler.events():
        size = (event.cpu_memory_usage if event.name == "[memory]"
                else event.self_cpu_memory_usage)
        if size > 0:
            changes.append((event.time_range.start, size))
        elif size < 0:
            changes.append((event.time_range.end, size))
    level = peak = 0
    for _, size in sorted(changes):
        level += size
        peak = max(peak, level)
    return peak


def measure(rows: list[Row], device: torch.device, warmup: int, rounds: int,
            clock: Callable[[], float] = time.perf_counter) -> None:
    for row in rows:
        for _ in range(warmup):
            row.step()
    for _ in range(rounds):
        for row in rows:  # interleaved: a busy machine slows every row alike
            synchronize(device)
            start = clock()
            row.step()
            synchronize(device)
            row.times.append(clock() - start)
    for row in rows:
        row.peak_bytes = peak_memory(row, device)


def table(rows: list[Row]) -> tuple[str, list[dict]]:
    medians = {row.name: statistics.median(row.times) for row in rows}
    records, lines = [], []
    header = (f"{'implementation':34s} {'median ms':>10s} {'min ms':>8s} {'ratio':>6s} "
              f"{'peak MiB':>9s}")
    lines += [header, "-" * len(header)]
    for row in rows:
        median = medians[row.name]
        ratio = median / medians[row.baseline]
        peak = row.peak_bytes / 2**20 if row.peak_bytes is not None else float("nan")
        lines.append(f"{row.name:34s} {median * 1e3:10.1f} {min(row.times) * 1e3:8.1f} "
                     f"{ratio:6.2f} {peak:9.1f}")
        records.append({"name": row.name, "baseline": row.baseline,
                        "median_ms": median * 1e3, "min_ms": min(row.times) * 1e3,
                        "ratio_to_baseline": ratio, "peak_mib": peak,
                        "times_ms": [t * 1e3 for t in row.times]})
    return "\n".join(lines), records


ACCURACY_DTYPES = (torch.float32, torch.bfloat16)
ACCURACY_REGIMES = {"default init": 1.0, "near zero (x1e-3)": 1e-3}


def relative_errors(values: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """|values - truth| / |truth| elementwise, over the entries where truth is not 0."""
    values, truth = values.double().flatten(), truth.flatten()
    nonzero = truth != 0
    return (values[nonzero] - truth[nonzero]).abs() / truth[nonzero].abs()


def accuracy_records(kinds: tuple[str, ...] = ("LSTM", "GRU", "RNN")) -> list[dict]:
    """Hidden states of torch.nn and of torch_cells against a float64 truth (see above)."""
    records = []
    for kind in kinds:
        for dtype in ACCURACY_DTYPES:
            for regime, scale in ACCURACY_REGIMES.items():
                torch.manual_seed(0)
                reference = getattr(nn, kind)(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype)
                with torch.no_grad():
                    for parameter in reference.parameters():
                        parameter.mul_(scale)
                ours = getattr(torch_cells, kind)(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype)
                ours.load_state_dict(reference.state_dict())
                truth_layer = getattr(nn, kind)(INPUT_SIZE, HIDDEN_SIZE, dtype=torch.float64)
                truth_layer.load_state_dict(reference.state_dict())
                x = (torch.randn(STEPS, BATCH, INPUT_SIZE) * scale).to(dtype)
                with torch.no_grad():
                    truth = truth_layer(x.double())[0]
                    expected, actual = reference(x)[0], ours(x)[0]
                errors = {name: relative_errors(values, truth)
                          for name, values in (("torch.nn", expected), ("torch_cells", actual))}
                difference = ((actual.double() - expected.double()).abs().max()
                              / expected.double().abs().max()).item()
                records.append({
                    "layer": kind, "dtype": str(dtype).replace("torch.", ""), "regime": regime,
                    "median_abs_h": truth.abs().median().item(),
                    **{f"{name}_{statistic}": getattr(error, statistic)().item()
                       for name, error in errors.items() for statistic in ("median", "max")},
                    "ours_vs_torch": difference})
    return records


def accuracy_table(records: list[dict]) -> str:
    header = (f"{'layer':5s} {'dtype':8s} {'regime':18s} {'median |h|':>10s} "
              f"{'torch.nn med':>12s} {'max':>9s} {'torch_cells med':>15s} {'max':>9s} "
              f"{'|ours-nn|/max|nn|':>17s}")
    lines = [header, "-" * len(header)]
    for r in records:
        lines.append(f"{r['layer']:5s} {r['dtype']:8s} {r['regime']:18s} "
                     f"{r['median_abs_h']:10.1e} {r['torch.nn_median']:12.1e} "
                     f"{r['torch.nn_max']:9.1e} {r['torch_cells_median']:15.1e} "
                     f"{r['torch_cells_max']:9.1e} {r['ours_vs_torch']:17.1e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds: a smoke test")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 15)")
    parser.add_argument("--clock", default="wall", choices=["wall", "process"],
                        help="wall clock (default) or this process's CPU time (one thread)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy table")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    if args.clock == "process" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock process needs --threads 1 on the CPU: the CPU times of "
                     "several threads add up, and a GPU's work is not this process's CPU time")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 15)
    warmup = 1 if args.quick else 3

    load_before = os.getloadavg()
    rows = build_rows(device)
    clock = time.process_time if args.clock == "process" else time.perf_counter
    measure(rows, device, warmup, rounds, clock)
    load_after = os.getloadavg()
    text, records = table(rows)
    settings = (f"T={STEPS} B={BATCH} I={INPUT_SIZE} H={HIDDEN_SIZE} float32, device={device}, "
                f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
                f"{rounds} rounds after {warmup} warm-up, {args.clock} clock; ratio = median / "
                f"median of the torch.nn row; numpy: "
                f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(settings)
    print(text)
    memory_note = ("peak memory: torch.profiler CPU allocator events" if device.type == "cpu"
                   else "peak memory: torch.cuda.max_memory_allocated")
    print(f"{memory_note}; numpy: tracemalloc")
    load = (f"1-minute load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
            f"on {os.cpu_count()} CPUs (other processes slow the timings)")
    print(load)
    accuracy = [] if args.no_accuracy else accuracy_records()
    if accuracy:
        print("\naccuracy of the hidden states against float64 (same weights and inputs), "
              f"T={STEPS} B={BATCH} I={INPUT_SIZE} H={HIDDEN_SIZE}; relative errors:")
        print(accuracy_table(accuracy))
    result = {"settings": settings, "memory": memory_note, "load": load, "rows": records,
              "accuracy": accuracy,
              "machine": platform.platform(), "processor": platform.processor(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench_cells-{device.type}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()
