"""Tests of ``throughtime.measure``: counts against torch.nn, FLOPs, timings and operators.

Parameter counts are compared with ``sum(p.numel())`` of ``torch.nn`` modules, FLOP counts
with ``torch.utils.flop_counter`` and with operators counted while a step written from the
equations runs, and the budget solver with a brute-force search.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from throughtime import measure


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, input_size, hidden_size, num_layers",
                         list(itertools.product(measure.KINDS, (1, 7, 32), (1, 5, 64), (1, 3))))
def test_parameter_count_matches_torch_nn(kind, input_size, hidden_size, num_layers):
    layer = getattr(nn, kind)(input_size, hidden_size, num_layers=num_layers)
    assert measure.parameter_count(kind, input_size, hidden_size,
                               num_layers=num_layers) == numel(layer)
    no_bias = getattr(nn, kind)(input_size, hidden_size, num_layers=num_layers, bias=False)
    assert measure.parameter_count(kind, input_size, hidden_size, biases=0,
                               num_layers=num_layers) == numel(no_bias)
    # The textbook form keeps one bias vector per gate block: drop every bias_hh.
    single = numel(layer) - sum(p.numel() for name, p in layer.named_parameters()
                                if name.startswith("bias_hh"))
    assert measure.parameter_count(kind, input_size, hidden_size, biases=1,
                               num_layers=num_layers) == single


@pytest.mark.parametrize("kind", measure.KINDS)
def test_cells_have_the_same_count_as_layers(kind):
    cell = getattr(nn, f"{kind}Cell")(6, 9)
    assert measure.parameter_count(kind, 6, 9) == numel(cell)


def test_gru_lstm_ratio_is_three_quarters_at_equal_hidden_size():
    for input_size, hidden_size, biases in itertools.product((1, 10, 100), (1, 8, 512),
                                                             (0, 1, 2)):
        gru = measure.parameter_count("GRU", input_size, hidden_size, biases=biases)
        lstm = measure.parameter_count("LSTM", input_size, hidden_size, biases=biases)
        assert 4 * gru == 3 * lstm


@pytest.mark.parametrize("kind, input_size, hidden_size, output_size",
                         [("LSTM", 2, 16, 1), ("GRU", 25, 20, 2), ("RNN", 3, 40, 3),
                          ("GRU", 1, 1, 0)])
def test_model_parameter_count_matches_layer_plus_linear(kind, input_size, hidden_size,
                                                         output_size):
    model = nn.ModuleList([getattr(nn, kind)(input_size, hidden_size)])
    if output_size:
        model.append(nn.Linear(hidden_size, output_size))
    assert measure.model_parameter_count(kind, input_size, hidden_size,
                                     output_size) == numel(model)


@pytest.mark.parametrize("kind", measure.KINDS)
@pytest.mark.parametrize("input_size, output_size", [(2, 1), (25, 2), (1, 0)])
@pytest.mark.parametrize("budget", [1, 50, 1297, 2786, 40_000])
def test_hidden_size_for_budget_is_the_best_integer(kind, input_size, output_size, budget):
    def distance(h):
        return abs(measure.model_parameter_count(kind, input_size, h, output_size) - budget), h

    best = min(range(1, 400), key=distance)
    assert measure.hidden_size_for_budget(kind, budget, input_size, output_size) == best


def test_matched_hidden_sizes_keep_the_lstm_and_match_the_others():
    sizes = measure.matched_hidden_sizes(2, 1, 16)
    assert sizes["LSTM"] == 16
    budget = measure.model_parameter_count("LSTM", 2, 16, 1)
    for kind in ("RNN", "GRU"):
        assert sizes[kind] == measure.hidden_size_for_budget(kind, budget, 2, 1)
        count = measure.model_parameter_count(kind, 2, sizes[kind], 1)
        assert abs(count - budget) / budget < 0.05


@pytest.mark.parametrize("kind", measure.KINDS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_free_parameter_count_is_the_rank_of_the_output_jacobian(kind, num_layers):
    # Parameters that change the function are the directions in which the outputs move: the
    # rank of d(outputs)/d(parameters) at a generic point. Redundant biases add none.
    from torch.func import functional_call, jacrev

    torch.manual_seed(0)
    input_size, hidden_size, length, batch = 2, 3, 4, 24  # more outputs than parameters
    layer = getattr(nn, kind)(input_size, hidden_size, num_layers=num_layers,
                              dtype=torch.float64)
    xs = torch.randn(length, batch, input_size, dtype=torch.float64)
    parameters = {name: value.detach() for name, value in layer.named_parameters()}

    def outputs(values):
        return functional_call(layer, values, (xs,))[0].reshape(-1)

    jacobian = torch.cat([part.reshape(part.shape[0], -1)
                          for part in jacrev(outputs)(parameters).values()], dim=1)
    singular = torch.linalg.svdvals(jacobian)
    rank = int((singular > singular[0] * 1e-10).sum())
    assert rank == measure.free_parameter_count(kind, input_size, hidden_size,
                                            num_layers=num_layers)
    assert rank < measure.parameter_count(kind, input_size, hidden_size, num_layers=num_layers)


def test_the_gru_keeps_more_free_biases_than_the_one_bias_form():
    # b_hn is multiplied by the reset gate: moving it into b_in changes the function.
    torch.manual_seed(1)
    gru = nn.GRU(2, 3, dtype=torch.float64)
    xs = torch.randn(5, 4, 2, dtype=torch.float64)
    before = gru(xs)[0]
    with torch.no_grad():
        n = slice(6, 9)
        gru.bias_ih_l0[n] += gru.bias_hh_l0[n]
        gru.bias_hh_l0[n] = 0.0
    moved_n = gru(xs)[0]
    assert not torch.allclose(moved_n, before)
    with torch.no_grad():  # the z pair, by contrast, only enters as a sum
        z = slice(3, 6)
        gru.bias_ih_l0[z] += gru.bias_hh_l0[z]
        gru.bias_hh_l0[z] = 0.0
    torch.testing.assert_close(gru(xs)[0], moved_n)
    assert measure.free_parameter_count("GRU", 2, 3) == measure.parameter_count("GRU", 2, 3,
                                                                        biases=1) + 3


@pytest.mark.parametrize("call, error, message", [
    (lambda: measure.parameter_count("Lstm", 2, 3), ValueError, "kind must be one of"),
    (lambda: measure.parameter_count("LSTM", 0, 3), ValueError, "input_size must be"),
    (lambda: measure.parameter_count("LSTM", 2, 3.0), TypeError, "hidden_size must be an int"),
    (lambda: measure.parameter_count("LSTM", 2, 3, biases=3), ValueError, "biases must be 0, 1"),
    (lambda: measure.hidden_size_for_budget("GRU", 0, 2), ValueError, "budget must be"),
    (lambda: measure.flops_per_step("GRU", 2, 3, batch_size=0), ValueError, "batch_size"),
    (lambda: measure.free_parameter_count("gru2", 2, 3), ValueError, "kind must be one of"),
    (lambda: measure.free_parameter_count("GRU", 2, 3, num_layers=0), ValueError, "num_layers"),
])
def test_counts_reject_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", measure.KINDS)
@pytest.mark.parametrize("input_size, hidden_size, batch_size", [(5, 7, 3), (1, 32, 1)])
def test_matmul_flops_match_torch_flop_counter(kind, input_size, hidden_size, batch_size):
    cell = getattr(nn, f"{kind}Cell")(input_size, hidden_size)
    x = torch.randn(batch_size, input_size)
    with FlopCounterMode(display=False) as counter:
        cell(x)
    counted = measure.flops_per_step(kind, input_size, hidden_size, batch_size=batch_size)
    assert counted.matmul == counter.get_total_flops()


ELEMENTWISE = {"add", "sub", "rsub", "mul", "sigmoid", "tanh"}


def count_elementwise(step, *args):
    """Elements produced by elementwise operators while ``step(*args)`` runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ in ELEMENTWISE:
                Count.total += out.numel()
            return out

    with Count():
        step(*args)
    return Count.total


def reference_step(kind, biases, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step written from the equations, one operator per symbol, no fused kernels."""
    def pre(rows):
        parts = [x @ w_ih[rows].T, h @ w_hh[rows].T]
        total = parts[0] + parts[1]
        if biases >= 1:
            total = total + b_ih[rows]
        if biases == 2:
            total = total + b_hh[rows]
        return total

    H = h.shape[1]
    gate = [slice(g * H, (g + 1) * H) for g in range(4)]
    if kind == "RNN":
        return torch.tanh(pre(gate[0]))
    if kind == "LSTM":
        i, f = torch.sigmoid(pre(gate[0])), torch.sigmoid(pre(gate[1]))
        g, o = torch.tanh(pre(gate[2])), torch.sigmoid(pre(gate[3]))
        c_next = f * c + i * g
        return o * torch.tanh(c_next)
    r, z = torch.sigmoid(pre(gate[0])), torch.sigmoid(pre(gate[1]))
    x_n = x @ w_ih[gate[2]].T
    h_n = h @ w_hh[gate[2]].T
    if biases >= 1:
        x_n = x_n + b_ih[gate[2]]
    if biases == 2:
        h_n = h_n + b_hh[gate[2]]
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@pytest.mark.parametrize("kind", measure.KINDS)
@pytest.mark.parametrize("biases", [1, 2])
def test_bias_and_elementwise_flops_match_a_step_written_from_the_equations(kind, biases):
    B, I, H = 3, 4, 5
    G = measure.GATES[kind]
    args = (torch.randn(B, I), torch.randn(B, H), torch.randn(B, H), torch.randn(G * H, I),
            torch.randn(G * H, H), torch.randn(G * H), torch.randn(G * H))
    counted = measure.flops_per_step(kind, I, H, batch_size=B, biases=biases)
    assert counted.bias + counted.elementwise == count_elementwise(
        reference_step, kind, biases, *args)
    if kind == "GRU":  # the reference is the GRU of torch.nn
        cell = nn.GRUCell(I, H)
        x, h = args[0], args[1]
        p = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        torch.testing.assert_close(reference_step("GRU", 2, x, h, None, *p), cell(x, h))


def test_flop_ratio_approaches_three_quarters_from_above():
    ratios = [measure.flops_per_step("GRU", 32, h).total
              / measure.flops_per_step("LSTM", 32, h).total
              for h in (8, 64, 512, 4096)]
    assert all(r > 0.75 for r in ratios)
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[-1] - 0.75 < 1e-3


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def test_measure_calls_warmup_then_repeats_and_keeps_every_sample():
    calls = []
    synced = []
    timing = measure.measure(lambda: calls.append(1), repeats=5, warmup=3, clock="wall",
                         synchronize=lambda: synced.append(1))
    assert len(calls) == 8 and len(synced) == 10
    assert len(timing.samples) == 5 and timing.clock == "wall"


def test_timing_statistics_are_numpy_percentiles():
    samples = (0.5, 0.1, 0.3, 0.2, 0.9)
    timing = measure.Timing(samples=samples, clock="process")
    assert timing.median == np.median(samples)
    assert timing.low == np.percentile(samples, 25)
    assert timing.high == np.percentile(samples, 75)
    assert timing.spread == pytest.approx((0.5 - 0.2) / 0.3)
    assert "ms" in str(timing)


def test_process_clock_ignores_sleeping_and_wall_clock_sees_it():
    wall = measure.measure(lambda: time.sleep(0.02), repeats=3, warmup=0, clock="wall")
    process = measure.measure(lambda: time.sleep(0.02), repeats=3, warmup=0, clock="process")
    assert wall.median >= 0.019
    assert process.median < 0.01


def test_faster_needs_separated_quartiles():
    quick = measure.Timing((1.0, 1.1, 1.2, 1.0, 1.1), "process")
    slow = measure.Timing((2.0, 2.1, 2.2, 2.0, 2.1), "process")
    overlapping = measure.Timing((1.0, 1.05, 1.5, 1.1, 1.8), "process")
    assert measure.faster(quick, slow) == "first"
    assert measure.faster(slow, quick) == "second"
    assert measure.faster(quick, overlapping) is None
    with pytest.raises(TypeError, match="first must be a Timing"):
        measure.faster(1.0, slow)


def test_measure_rejects_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        measure.measure(3)
    with pytest.raises(ValueError, match="clock must be one of"):
        measure.measure(lambda: None, clock="cpu")
    with pytest.raises(ValueError, match="repeats must be"):
        measure.measure(lambda: None, repeats=0)


@pytest.mark.parametrize("implementation", ["torch.nn", "throughtime"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_layer_step_trains_or_only_runs(kind, implementation):
    train = measure.layer_step(kind, 3, 4, 5, 2, implementation=implementation)
    before = [p.detach().clone() for p in train.layer.parameters()]
    train()
    assert all(not torch.equal(a, p) for a, p in zip(before, train.layer.parameters(),
                                                     strict=True))
    inference = measure.layer_step(kind, 3, 4, 5, 2, mode="inference",
                               implementation=implementation)
    before = [p.detach().clone() for p in inference.layer.parameters()]
    inference()
    assert all(torch.equal(a, p) for a, p in zip(before, inference.layer.parameters(),
                                                 strict=True))
    with pytest.raises(ValueError, match="mode must be one of"):
        measure.layer_step(kind, 3, 4, 5, 2, mode="backward")


def test_make_layer_implementations_compute_the_same_function():
    torch.manual_seed(1)
    reference = measure.make_layer("GRU", 3, 4, dtype=torch.float64)
    ours = measure.make_layer("GRU", 3, 4, implementation="throughtime", dtype=torch.float64)
    ours.load_state_dict(reference.state_dict())
    xs = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(xs)[0], reference(xs)[0])


def test_time_layers_records_every_grid_point():
    records = measure.time_layers(("LSTM", "GRU"), hidden_sizes=(4,), lengths=(3, 5),
                              modes=("inference",), implementations=("torch.nn",),
                              repeats=2, warmup=0)
    assert len(records) == 4
    assert {(r["kind"], r["length"]) for r in records} == {("LSTM", 3), ("LSTM", 5),
                                                           ("GRU", 3), ("GRU", 5)}
    assert all(isinstance(r["timing"], measure.Timing) and r["device"] == "cpu" for r in records)


def test_dispatched_ops_counts_each_operator_call():
    a, b = torch.ones(3), torch.ones(3)
    counts = measure.dispatched_ops(lambda: torch.sigmoid(a + b) + a)
    assert counts["add"] == 2 and counts["sigmoid"] == 1


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_operator_loops_grow_with_length(kind):
    for mode in ("train", "inference"):
        result = measure.ops_per_step(kind, mode=mode)
        assert result["per_step"] >= 2
        assert result["per_step"] == int(result["per_step"])  # a whole number per step


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this build")
def test_torch_lstm_on_cpu_is_one_kernel_whatever_the_length():
    for mode in ("train", "inference"):
        result = measure.ops_per_step("LSTM", mode=mode)
        assert result["per_step"] == 0, result["per_step_by_op"]
        assert all(counter["mkldnn_rnn_layer"] == 1 for counter in result["counts"].values())


def test_ops_per_step_rejects_bad_lengths():
    with pytest.raises(ValueError, match="lengths must be a pair"):
        measure.ops_per_step("GRU", lengths=(20, 10))


def test_timings_are_not_compared_across_clocks():
    assert math.isinf(measure.Timing((0.0, 0.0, 0.0), "wall").spread)


def test_kinds_have_one_spelling_and_lower_case_is_accepted():
    assert [measure.check_kind(kind.lower()) for kind in measure.KINDS] == list(measure.KINDS)
    assert measure.parameter_count("lstm", 2, 3) == measure.parameter_count("LSTM", 2, 3)
