"""Benchmark: a linear recurrence by the loop and by Hillis and Steele's scan; decoding costs.

Two tables, the measurements behind chapter 10's cost section, over more lengths and widths
than the chapter runs:

1. One training pass (forward and backward of ``linear_recurrence.linear_scan`` with a sum
   loss) of h_t = lambda_t h_{t-1} + u_t, float32, with the loop and with the scan, for
   sequence lengths T and widths B H (numbers per step). The rows are timed in turn, round
   after round, so that a busy machine slows both alike; the table gives medians over the
   rounds and the ratio loop / scan (above 1: the scan is faster).
2. The time of generating one token at several context lengths with
   ``attention_decoding.TinyCausalAttention`` (a key/value cache) and with a ``MinGRU``
   step and the same read-out, with the exact FLOPs and bytes of each.

Clock: ``time.process_time`` with one thread (the CPU time of this process, which other
programs on a shared machine barely disturb). ``--device cuda`` times table 1 on a GPU
with the wall clock and synchronisation instead.

Usage::

    python bench/scan_cost.py
    python bench/scan_cost.py --quick            # fewer lengths and rounds
    python bench/scan_cost.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from throughtime import attention_decoding as ad  # noqa: E402
from throughtime import linear_recurrence as lr  # noqa: E402


def time_scans(lengths, widths, rounds, device):
    wall = device.type == "cuda"
    clock = time.perf_counter if wall else time.process_time
    sync = torch.cuda.synchronize if wall else (lambda: None)
    rows = []
    generator = torch.Generator().manual_seed(0)
    for width in widths:
        for length in lengths:
            decay = torch.rand(length, width, generator=generator).to(device).requires_grad_()
            increment = torch.randn(length, width, generator=generator).to(device)
            increment.requires_grad_()
            samples = {algorithm: [] for algorithm in lr.TORCH_ALGORITHMS}
            for round_ in range(rounds + 1):
                for algorithm in lr.TORCH_ALGORITHMS:
                    sync()
                    start = clock()
                    lr.linear_scan(decay, increment, algorithm=algorithm).sum().backward()
                    sync()
                    if round_:  # the first round warms up
                        samples[algorithm].append(clock() - start)
            loop, scan = (float(np.median(samples[a])) for a in lr.TORCH_ALGORITHMS)
            rows.append((width, length, loop * 1e3, scan * 1e3, loop / scan))
    return rows


def time_decoding(contexts, repeats):
    inputs, size, outputs = 16, 64, 16
    torch.manual_seed(0)
    attention = ad.TinyCausalAttention(inputs, size, outputs, heads=4)
    cache = attention.empty_cache(1, max(contexts))
    cache.keys.normal_()
    cache.values.normal_()
    recurrent, head = lr.MinGRU(inputs, size), nn.Linear(size, outputs)
    x, h = torch.randn(1, inputs), torch.zeros(1, size)

    def attention_step(context):
        def run():
            cache.length = context - 1
            attention.decode(x, cache)
        return run

    def recurrent_step(context):
        return lambda: head(recurrent.step(x, h))

    times = {"attention": ad.time_per_token(attention_step, contexts, repeats=repeats),
             "minGRU": ad.time_per_token(recurrent_step, contexts, repeats=repeats)}
    return [(context, times["attention"][context] * 1e6, times["minGRU"][context] * 1e6,
             ad.decode_flops("attention", inputs, size, outputs, context=context),
             ad.decode_flops("minGRU", inputs, size, outputs),
             ad.cache_bytes(context, size), ad.state_bytes(size)) for context in contexts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    lengths = (16, 256, 4096) if args.quick else (16, 64, 256, 1024, 4096, 16384)
    widths = (16, 1024) if args.quick else (1, 16, 128, 1024)
    print(f"## Training pass of a linear recurrence ({device}, medians over rounds)\n")
    print("| B H | T | loop, ms | scan, ms | loop / scan |\n| --- | --- | --- | --- | --- |")
    for row in time_scans(lengths, widths, 3 if args.quick else 7, device):
        print("| {} | {} | {:.3f} | {:.3f} | {:.2f} |".format(*row))
    contexts = (16, 256, 4096) if args.quick else (16, 256, 1024, 4096, 16384, 65536)
    print("\n## Decoding one token (CPU)\n")
    print("| context | attention, µs | minGRU, µs | attention FLOPs | minGRU FLOPs | "
          "cache bytes | state bytes |\n| --- | --- | --- | --- | --- | --- | --- |")
    for row in time_decoding(contexts, 10 if args.quick else 30):
        print("| {} | {:.1f} | {:.1f} | {:,} | {:,} | {:,} | {:,} |".format(*row))


if __name__ == "__main__":
    main()
