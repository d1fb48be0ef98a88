"""Tests of ``throughtime.comparison``: counts against torch.nn, timings, and the ensemble.

Parameter counts are compared with ``sum(p.numel())`` of ``torch.nn`` modules, FLOP counts
with ``torch.utils.flop_counter`` and with operators counted while a step written from the
equations runs, the budget solver with a brute-force search, and the ensemble with the
same networks trained one at a time.
"""

from __future__ import annotations

import itertools
import math
import time

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from throughtime import comparison as cmp
from throughtime.lstm_tools import set_forget_bias

matplotlib.use("Agg")


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, input_size, hidden_size, num_layers",
                         list(itertools.product(cmp.KINDS, (1, 7, 32), (1, 5, 64), (1, 3))))
def test_parameter_count_matches_torch_nn(kind, input_size, hidden_size, num_layers):
    layer = getattr(nn, kind)(input_size, hidden_size, num_layers=num_layers)
    assert cmp.parameter_count(kind, input_size, hidden_size,
                               num_layers=num_layers) == numel(layer)
    no_bias = getattr(nn, kind)(input_size, hidden_size, num_layers=num_layers, bias=False)
    assert cmp.parameter_count(kind, input_size, hidden_size, biases=0,
                               num_layers=num_layers) == numel(no_bias)
    # The textbook form keeps one bias vector per gate block: drop every bias_hh.
    single = numel(layer) - sum(p.numel() for name, p in layer.named_parameters()
                                if name.startswith("bias_hh"))
    assert cmp.parameter_count(kind, input_size, hidden_size, biases=1,
                               num_layers=num_layers) == single


@pytest.mark.parametrize("kind", cmp.KINDS)
def test_cells_have_the_same_count_as_layers(kind):
    cell = getattr(nn, f"{kind}Cell")(6, 9)
    assert cmp.parameter_count(kind, 6, 9) == numel(cell)


def test_gru_lstm_ratio_is_three_quarters_at_equal_hidden_size():
    for input_size, hidden_size, biases in itertools.product((1, 10, 100), (1, 8, 512),
                                                             (0, 1, 2)):
        gru = cmp.parameter_count("GRU", input_size, hidden_size, biases=biases)
        lstm = cmp.parameter_count("LSTM", input_size, hidden_size, biases=biases)
        assert 4 * gru == 3 * lstm


@pytest.mark.parametrize("kind, input_size, hidden_size, output_size",
                         [("LSTM", 2, 16, 1), ("GRU", 25, 20, 2), ("RNN", 3, 40, 3),
                          ("GRU", 1, 1, 0)])
def test_model_parameter_count_matches_layer_plus_linear(kind, input_size, hidden_size,
                                                         output_size):
    model = nn.ModuleList([getattr(nn, kind)(input_size, hidden_size)])
    if output_size:
        model.append(nn.Linear(hidden_size, output_size))
    assert cmp.model_parameter_count(kind, input_size, hidden_size,
                                     output_size) == numel(model)


@pytest.mark.parametrize("kind", cmp.KINDS)
@pytest.mark.parametrize("input_size, output_size", [(2, 1), (25, 2), (1, 0)])
@pytest.mark.parametrize("budget", [1, 50, 1297, 2786, 40_000])
def test_hidden_size_for_budget_is_the_best_integer(kind, input_size, output_size, budget):
    def distance(h):
        return abs(cmp.model_parameter_count(kind, input_size, h, output_size) - budget), h

    best = min(range(1, 400), key=distance)
    assert cmp.hidden_size_for_budget(kind, budget, input_size, output_size) == best


def test_matched_hidden_sizes_keep_the_lstm_and_match_the_others():
    sizes = cmp.matched_hidden_sizes(2, 1, 16)
    assert sizes["LSTM"] == 16
    budget = cmp.model_parameter_count("LSTM", 2, 16, 1)
    for kind in ("RNN", "GRU"):
        assert sizes[kind] == cmp.hidden_size_for_budget(kind, budget, 2, 1)
        count = cmp.model_parameter_count(kind, 2, sizes[kind], 1)
        assert abs(count - budget) / budget < 0.05


@pytest.mark.parametrize("kind", cmp.KINDS)
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
    assert rank == cmp.free_parameter_count(kind, input_size, hidden_size,
                                            num_layers=num_layers)
    assert rank < cmp.parameter_count(kind, input_size, hidden_size, num_layers=num_layers)


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
    assert cmp.free_parameter_count("GRU", 2, 3) == cmp.parameter_count("GRU", 2, 3,
                                                                        biases=1) + 3


@pytest.mark.parametrize("call, error, message", [
    (lambda: cmp.parameter_count("lstm", 2, 3), ValueError, "kind must be one of"),
    (lambda: cmp.parameter_count("LSTM", 0, 3), ValueError, "input_size must be"),
    (lambda: cmp.parameter_count("LSTM", 2, 3.0), TypeError, "hidden_size must be an int"),
    (lambda: cmp.parameter_count("LSTM", 2, 3, biases=3), ValueError, "biases must be 0, 1"),
    (lambda: cmp.hidden_size_for_budget("GRU", 0, 2), ValueError, "budget must be"),
    (lambda: cmp.flops_per_step("GRU", 2, 3, batch_size=0), ValueError, "batch_size"),
    (lambda: cmp.free_parameter_count("gru", 2, 3), ValueError, "kind must be one of"),
    (lambda: cmp.free_parameter_count("GRU", 2, 3, num_layers=0), ValueError, "num_layers"),
])
def test_counts_reject_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", cmp.KINDS)
@pytest.mark.parametrize("input_size, hidden_size, batch_size", [(5, 7, 3), (1, 32, 1)])
def test_matmul_flops_match_torch_flop_counter(kind, input_size, hidden_size, batch_size):
    cell = getattr(nn, f"{kind}Cell")(input_size, hidden_size)
    x = torch.randn(batch_size, input_size)
    with FlopCounterMode(display=False) as counter:
        cell(x)
    counted = cmp.flops_per_step(kind, input_size, hidden_size, batch_size=batch_size)
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


@pytest.mark.parametrize("kind", cmp.KINDS)
@pytest.mark.parametrize("biases", [1, 2])
def test_bias_and_elementwise_flops_match_a_step_written_from_the_equations(kind, biases):
    B, I, H = 3, 4, 5
    G = cmp.GATES[kind]
    args = (torch.randn(B, I), torch.randn(B, H), torch.randn(B, H), torch.randn(G * H, I),
            torch.randn(G * H, H), torch.randn(G * H), torch.randn(G * H))
    counted = cmp.flops_per_step(kind, I, H, batch_size=B, biases=biases)
    assert counted.bias + counted.elementwise == count_elementwise(
        reference_step, kind, biases, *args)
    if kind == "GRU":  # the reference is the GRU of torch.nn
        cell = nn.GRUCell(I, H)
        x, h = args[0], args[1]
        p = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        torch.testing.assert_close(reference_step("GRU", 2, x, h, None, *p), cell(x, h))


def test_flop_ratio_approaches_three_quarters_from_above():
    ratios = [cmp.flops_per_step("GRU", 32, h).total / cmp.flops_per_step("LSTM", 32, h).total
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
    timing = cmp.measure(lambda: calls.append(1), repeats=5, warmup=3, clock="wall",
                         synchronize=lambda: synced.append(1))
    assert len(calls) == 8 and len(synced) == 10
    assert len(timing.samples) == 5 and timing.clock == "wall"


def test_timing_statistics_are_numpy_percentiles():
    samples = (0.5, 0.1, 0.3, 0.2, 0.9)
    timing = cmp.Timing(samples=samples, clock="process")
    assert timing.median == np.median(samples)
    assert timing.low == np.percentile(samples, 25)
    assert timing.high == np.percentile(samples, 75)
    assert timing.spread == pytest.approx((0.5 - 0.2) / 0.3)
    assert "ms" in str(timing)


def test_process_clock_ignores_sleeping_and_wall_clock_sees_it():
    wall = cmp.measure(lambda: time.sleep(0.02), repeats=3, warmup=0, clock="wall")
    process = cmp.measure(lambda: time.sleep(0.02), repeats=3, warmup=0, clock="process")
    assert wall.median >= 0.019
    assert process.median < 0.01


def test_faster_needs_separated_quartiles():
    quick = cmp.Timing((1.0, 1.1, 1.2, 1.0, 1.1), "process")
    slow = cmp.Timing((2.0, 2.1, 2.2, 2.0, 2.1), "process")
    overlapping = cmp.Timing((1.0, 1.05, 1.5, 1.1, 1.8), "process")
    assert cmp.faster(quick, slow) == "first"
    assert cmp.faster(slow, quick) == "second"
    assert cmp.faster(quick, overlapping) is None
    with pytest.raises(TypeError, match="first must be a Timing"):
        cmp.faster(1.0, slow)


def test_measure_rejects_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        cmp.measure(3)
    with pytest.raises(ValueError, match="clock must be one of"):
        cmp.measure(lambda: None, clock="cpu")
    with pytest.raises(ValueError, match="repeats must be"):
        cmp.measure(lambda: None, repeats=0)


@pytest.mark.parametrize("implementation", ["torch.nn", "throughtime"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_layer_step_trains_or_only_runs(kind, implementation):
    train = cmp.layer_step(kind, 3, 4, 5, 2, implementation=implementation)
    before = [p.detach().clone() for p in train.layer.parameters()]
    train()
    assert all(not torch.equal(a, p) for a, p in zip(before, train.layer.parameters(),
                                                     strict=True))
    inference = cmp.layer_step(kind, 3, 4, 5, 2, mode="inference",
                               implementation=implementation)
    before = [p.detach().clone() for p in inference.layer.parameters()]
    inference()
    assert all(torch.equal(a, p) for a, p in zip(before, inference.layer.parameters(),
                                                 strict=True))
    with pytest.raises(ValueError, match="mode must be one of"):
        cmp.layer_step(kind, 3, 4, 5, 2, mode="backward")


def test_make_layer_implementations_compute_the_same_function():
    torch.manual_seed(1)
    reference = cmp.make_layer("GRU", 3, 4, dtype=torch.float64)
    ours = cmp.make_layer("GRU", 3, 4, implementation="throughtime", dtype=torch.float64)
    ours.load_state_dict(reference.state_dict())
    xs = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(xs)[0], reference(xs)[0])


def test_time_layers_records_every_grid_point():
    records = cmp.time_layers(("LSTM", "GRU"), hidden_sizes=(4,), lengths=(3, 5),
                              modes=("inference",), implementations=("torch.nn",),
                              repeats=2, warmup=0)
    assert len(records) == 4
    assert {(r["kind"], r["length"]) for r in records} == {("LSTM", 3), ("LSTM", 5),
                                                           ("GRU", 3), ("GRU", 5)}
    assert all(isinstance(r["timing"], cmp.Timing) and r["device"] == "cpu" for r in records)


def test_dispatched_ops_counts_each_operator_call():
    a, b = torch.ones(3), torch.ones(3)
    counts = cmp.dispatched_ops(lambda: torch.sigmoid(a + b) + a)
    assert counts["add"] == 2 and counts["sigmoid"] == 1


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_operator_loops_grow_with_length(kind):
    for mode in ("train", "inference"):
        result = cmp.ops_per_step(kind, mode=mode)
        assert result["per_step"] >= 2
        assert result["per_step"] == int(result["per_step"])  # a whole number per step


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this build")
def test_torch_lstm_on_cpu_is_one_kernel_whatever_the_length():
    for mode in ("train", "inference"):
        result = cmp.ops_per_step("LSTM", mode=mode)
        assert result["per_step"] == 0, result["per_step_by_op"]
        assert all(counter["mkldnn_rnn_layer"] == 1 for counter in result["counts"].values())


def test_ops_per_step_rejects_bad_lengths():
    with pytest.raises(ValueError, match="lengths must be a pair"):
        cmp.ops_per_step("GRU", lengths=(20, 10))


# --------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------


def test_adding_task_scores_variance_explained():
    task = cmp.make_task("adding", 12, test_size=4000)
    inputs, targets, mask = task.test()
    assert inputs.shape == (12, 4000, 2) and targets.shape == (4000,) and mask is None
    # The best constant, 1, explains nothing; the exact sum explains everything.
    constant = torch.ones(4000, 1, 1)
    assert abs(task.score(constant, targets[:, None], None)[0]) < 0.05
    exact = targets[:, None, None]
    assert task.score(exact, targets[:, None], None)[0] == pytest.approx(1.0)
    mse = float(((constant[..., 0] - targets[:, None]) ** 2).mean())
    assert task.loss(constant, targets[:, None], None)[0].item() == pytest.approx(mse)


def test_agreement_task_scores_accuracy():
    task = cmp.make_task("agreement", 6, test_size=100)
    inputs, labels, _ = task.test()
    assert inputs.shape == (8, 100, 25) and torch.equal(inputs.sum(-1), torch.ones(8, 100))
    right = nn.functional.one_hot(labels, 2).float()[:, None, :] * 5
    wrong = -right
    outputs = torch.cat([right, wrong], dim=1)                       # two networks
    targets = labels[:, None].expand(100, 2)
    assert task.score(outputs, targets, None).tolist() == [1.0, 0.0]
    losses = task.loss(outputs, targets, None)
    expected = nn.functional.cross_entropy(right[:, 0], labels)
    assert losses[0].item() == pytest.approx(expected.item())


def test_anbn_task_scores_the_longest_recognised_prefix():
    task = cmp.make_task("anbn", 4, test_max_n=10)
    inputs, targets, mask = task.test()
    assert inputs.shape == (20, 10, 3)
    perfect = nn.functional.one_hot(targets, 3).float()[:, :, None, :]
    broken = perfect.clone()
    n_wrong = 7  # spoil the prediction of the end mark for the string with n = 7
    broken[2 * n_wrong - 1, n_wrong - 1, 0] = torch.tensor([0.0, 1.0, 0.0])
    outputs = torch.cat([perfect, broken], dim=2)
    expanded = [t[..., None].expand(*t.shape, 2) for t in (targets, mask)]
    assert task.score(outputs, *expanded).tolist() == [10.0, 6.0]
    recognised = cmp.anbn_recognised(outputs, *expanded)
    assert recognised.shape == (2, 10) and recognised[1].sum() == 9
    # A wrong guess where nothing is determined (reading the a's) costs nothing.
    relaxed = perfect.clone()
    relaxed[0, 5, 0] = torch.tensor([0.0, 0.0, 1.0])
    assert task.score(relaxed, *(t[..., :1] for t in expanded))[0] == 10.0
    losses = task.loss(outputs * 20, *expanded)
    assert losses[0].item() < 1e-6 < losses[1].item()


def test_make_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        cmp.make_task("copy", 10)
    with pytest.raises(ValueError, match="length must be"):
        cmp.make_task("adding", 1)


# --------------------------------------------------------------------------------------
# The ensemble
# --------------------------------------------------------------------------------------


def standalone(kind, seed, input_size, hidden_size, output_size, forget_bias=1.0,
               dtype=torch.float64):
    torch.manual_seed(seed)
    layer = getattr(nn, kind)(input_size, hidden_size, dtype=dtype)
    head = nn.Linear(hidden_size, output_size, dtype=dtype)
    if kind == "LSTM" and forget_bias is not None:
        set_forget_bias(layer, forget_bias)
    return layer, head


@pytest.mark.parametrize("kind", cmp.KINDS)
@pytest.mark.parametrize("per_step", [False, True])
def test_ensemble_computes_each_network_as_if_alone(kind, per_step):
    seeds, I, H, O = (3, 7, 11), 2, 5, 3
    ensemble = cmp.Ensemble(kind, seeds, I, H, O, per_step=per_step, dtype=torch.float64)
    xs = [torch.randn(6, 4, I, dtype=torch.float64) for _ in seeds]
    outputs = ensemble(ensemble.stack_inputs(xs))
    assert outputs.shape == ((6, 4, 3, O) if per_step else (4, 3, O))
    for k, seed in enumerate(seeds):
        layer, head = standalone(kind, seed, I, H, O)
        states, _ = layer(xs[k])
        expected = head(states if per_step else states[-1])
        torch.testing.assert_close(outputs[..., k, :], expected)
        got_layer, got_head = ensemble.network(k)
        for a, b in zip(got_layer.parameters(), layer.parameters(), strict=True):
            assert torch.equal(a, b)
        assert torch.equal(got_head.weight, head.weight)


def test_ensemble_gradients_stay_inside_each_network_and_clip_like_torch():
    seeds, I, H, O = (0, 1), 3, 4, 2
    ensemble = cmp.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
    xs = [torch.randn(5, 2, I, dtype=torch.float64) for _ in seeds]
    (ensemble(ensemble.stack_inputs(xs)) ** 2).sum().mul(50).backward()
    ensemble.mask_gradients()
    norms = ensemble.clip_per_network(0.3)
    for k, seed in enumerate(seeds):
        layer, head = standalone("GRU", seed, I, H, O)
        states, _ = layer(xs[k])
        (head(states[-1]) ** 2).sum().mul(50).backward()
        parameters = [*layer.parameters(), *head.parameters()]
        norm = nn.utils.clip_grad_norm_(parameters, 0.3)
        assert norms[k].item() == pytest.approx(norm.item())
        probe = cmp.Ensemble("GRU", seeds, I, H, O, dtype=torch.float64)
        for name, parameter in ensemble.named_parameters():
            probe.get_parameter(name).grad = parameter.grad.clone()
        with torch.no_grad():  # read network k's gradients through the same block indices
            grads = {}
            for name, _ in probe.named_parameters():
                grads[name] = probe.get_parameter(name).grad[probe._block_index(name, k)]
        mine = [grads[f"layer.{n}"] for n, _ in layer.named_parameters()]
        mine += [grads["head.weight"], grads["head.bias"]]
        for a, p in zip(mine, parameters, strict=True):
            torch.testing.assert_close(a.reshape(p.shape), p.grad)
    for name, parameter in ensemble.named_parameters():
        outside = ensemble._owners[name] == len(seeds)
        assert (parameter.grad.reshape(-1)[outside] == 0).all(), name


@pytest.mark.parametrize("kind, task_name", [("LSTM", "adding"), ("GRU", "anbn"),
                                             ("RNN", "agreement")])
def test_training_the_ensemble_equals_training_each_network_alone(kind, task_name):
    task = cmp.make_task(task_name, 4, test_size=8)
    seeds, H, steps, batch_size, lr = (5, 9), 6, 4, 8, 0.05
    run = cmp.train_ensemble(kind, task, H, seeds, steps=steps, batch_size=batch_size, lr=lr,
                             max_norm=0.5, evaluations=2)
    assert run.steps == [2, 4] and run.scores.shape == (2, 2)
    for k, seed in enumerate(seeds):
        layer, head = standalone(kind, seed, task.input_size, H, task.output_size,
                                 dtype=torch.float32)
        parameters = [*layer.parameters(), *head.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=lr)
        rng = np.random.default_rng([seed, 1])
        for _ in range(steps):
            inputs, targets, mask = task.batch(batch_size, rng)
            optimizer.zero_grad()
            states, _ = layer(inputs)
            outputs = head(states if task.per_step else states[-1])[..., None, :]
            loss = task.loss(outputs, targets[..., None],
                             None if mask is None else mask[..., None])
            loss.sum().backward()
            nn.utils.clip_grad_norm_(parameters, 0.5)
            optimizer.step()
        trained_layer, trained_head = run.network(k)
        for a, b in zip([*trained_layer.parameters(), *trained_head.parameters()], parameters,
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ensemble_sets_the_update_bias_of_every_gru_and_only_of_grus():
    from throughtime.gru_variants import gate_rows

    ensemble = cmp.Ensemble("GRU", (0, 1, 2), 2, 4, 1, update_bias=1.5)
    for k in range(3):
        layer, _ = ensemble.network(k)
        z = gate_rows("z", 4)
        effective = layer.bias_ih_l0[z] + layer.bias_hh_l0[z]
        torch.testing.assert_close(effective, torch.full((4,), 1.5))
        default, _ = standalone("GRU", k, 2, 4, 1, dtype=torch.float32)
        r = gate_rows("r", 4)  # the other gates keep PyTorch's initialisation
        assert torch.equal(layer.bias_ih_l0[r], default.bias_ih_l0[r])
    lstm = cmp.Ensemble("LSTM", (0,), 2, 4, 1, forget_bias=None, update_bias=1.5)
    layer, _ = lstm.network(0)
    default, _ = standalone("LSTM", 0, 2, 4, 1, forget_bias=None, dtype=torch.float32)
    for a, b in zip(layer.parameters(), default.parameters(), strict=True):
        assert torch.equal(a, b)


def test_grouping_changes_only_the_rounding():
    task = cmp.make_task("agreement", 3, test_size=32)
    seeds = (0, 1, 2, 3, 4)
    together = cmp.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
                                  evaluations=1, group_size=5)
    apart = cmp.train_ensemble("LSTM", task, 5, seeds, steps=5, batch_size=8,
                               evaluations=1, group_size=2)
    assert [e.members for e in together.ensembles] == [5]
    assert [e.members for e in apart.ensembles] == [2, 1, 2]  # as equal as possible
    assert apart.members == 5
    for k in range(len(seeds)):
        for a, b in zip(together.network(k)[0].parameters(), apart.network(k)[0].parameters(),
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="k must be in 0 .. 4"):
        apart.network(5)


def test_evaluate_scores_each_network_on_new_data_like_the_network_alone():
    task = cmp.make_task("adding", 6, test_size=16)
    run = cmp.train_ensemble("GRU", task, 4, (3, 8), steps=3, batch_size=8, evaluations=1,
                             group_size=1)
    data = cmp.make_task("adding", 6, test_size=40, test_seed=99).test()
    scores, losses = run.evaluate(task, data)
    inputs, targets, _ = data
    for k in range(2):
        layer, head = run.network(k)
        with torch.no_grad():
            prediction = head(layer(inputs)[0][-1])[:, 0]
        mse = float((prediction - targets).double().square().mean())
        assert losses[k] == pytest.approx(mse, rel=1e-5)
        assert scores[k] == pytest.approx(1 - mse * 6, rel=1e-5)
    # The final test score is the same evaluation on the test set.
    test_scores, _ = run.evaluate(task, task.test())
    np.testing.assert_allclose(test_scores, run.final, rtol=1e-6)


def test_compare_takes_one_learning_rate_per_kind():
    task = cmp.make_task("adding", 4, test_size=8)
    settings = dict(lstm_hidden_size=4, seeds=(0,), steps=2, batch_size=4, evaluations=1)
    mixed = cmp.compare(task, lr={"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}, **settings)
    assert mixed.settings["lr"] == {"RNN": 0.01, "LSTM": 0.02, "GRU": 0.03}
    for kind, rate in mixed.settings["lr"].items():
        alone = cmp.compare(task, lr=rate, kinds=(kind,), **settings)
        np.testing.assert_array_equal(alone.final(kind), mixed.final(kind))
    with pytest.raises(ValueError, match=r"lr must give a value for every kind.*missing \['GRU'\]"):
        cmp.compare(task, lr={"RNN": 0.01, "LSTM": 0.02}, **settings)
    with pytest.raises(ValueError, match="lr\\['RNN'\\] must be positive"):
        cmp.compare(task, lr={"RNN": -1.0, "LSTM": 0.02, "GRU": 0.03}, **settings)


def test_tuning_prefers_a_rate_that_trains_every_seed():
    rates = (0.001, 0.01, 0.1)
    losses = np.array([[0.30, 0.31, 0.29, 0.30],     # slow but reliable
                       [0.01, 0.01, 0.70, 0.01],     # best median, one seed collapsed
                       [0.001, np.nan, 0.001, 0.001]])  # best otherwise, one run diverged
    assert cmp._choose_rate(rates, losses) == 0.01
    losses[1, 2] = 1.5  # a worse collapse: now the reliable rate wins
    assert cmp._choose_rate(rates, losses) == 0.001


def test_tuning_never_chooses_a_rate_too_small_to_learn():
    task = cmp.make_task("adding", 3, test_size=64)
    validation = cmp.make_task("adding", 3, test_size=256, test_seed=7).test()
    tuning = cmp.tune_learning_rates(task, validation, (1e-7, 0.05), kinds=("LSTM", "GRU"),
                                     seeds=(0, 1, 2), lstm_hidden_size=6, steps=60,
                                     batch_size=32)
    assert tuning.rates == (1e-7, 0.05)
    for kind in ("LSTM", "GRU"):
        assert tuning.losses[kind].shape == tuning.scores[kind].shape == (2, 3)
        assert np.median(tuning.losses[kind][1]) < np.median(tuning.losses[kind][0])
        assert tuning.chosen[kind] == 0.05
    with pytest.raises(TypeError, match="sets lr itself"):
        cmp.tune_learning_rates(task, validation, lr=0.1)


def test_ensemble_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seeds must hold"):
        cmp.Ensemble("LSTM", [], 2, 3, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        cmp.Ensemble("gru", [0], 2, 3, 1)
    ensemble = cmp.Ensemble("LSTM", [0, 1], 2, 3, 1)
    with pytest.raises(ValueError, match="one batch per network"):
        ensemble.stack_inputs([torch.zeros(3, 1, 2)])
    with pytest.raises(ValueError, match="k must be in 0 .. 1"):
        ensemble.network(2)


# --------------------------------------------------------------------------------------
# Comparisons, verdicts, sweeps and pictures
# --------------------------------------------------------------------------------------


def test_compare_matches_parameters_and_is_reproducible():
    task = cmp.make_task("adding", 5, test_size=16)
    first = cmp.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
                        evaluations=3)
    second = cmp.compare(task, lstm_hidden_size=6, seeds=(0, 1), steps=6, batch_size=8,
                         evaluations=3)
    assert first.kinds == list(cmp.KINDS) and first.steps == [2, 4, 6]
    for kind in cmp.KINDS:
        assert first.scores[kind].shape == (3, 2)
        np.testing.assert_array_equal(first.scores[kind], second.scores[kind])
        assert first.parameters[kind] == cmp.model_parameter_count(
            kind, 2, first.hidden_sizes[kind], 1)
    assert first.hidden_sizes == cmp.matched_hidden_sizes(2, 1, 6)
    np.testing.assert_array_equal(first.final("GRU"), first.scores["GRU"][-1])


@pytest.mark.parametrize("first, second, expected", [
    ([0.9, 0.95, 0.99], [0.1, 0.2, 0.3], "first"),
    ([0.1, 0.2, 0.3], [0.9, 0.95, 0.99], "second"),
    ([0.96, 0.97, 0.99], [0.95, 0.99, 0.98], "both"),
    ([0.1, 0.0, 0.3], [0.2, 0.1, 0.3], "neither"),
    ([0.99, 0.1, 0.98], [0.97, 0.96, 0.99], "mixed"),
    ([0.95, 0.6], [0.58, 0.2], "mixed"),  # one seed solves; the margin is not met
])
def test_verdict(first, second, expected):
    assert cmp.verdict(first, second, solved=0.9) == expected


def test_verdict_rejects_empty_scores():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        cmp.verdict([], [1.0], solved=0.5)


@pytest.mark.parametrize("match", ["parameters", "hidden_size"])
def test_data_size_sweep_shapes_and_sizes(match):
    task = cmp.make_task("adding", 4, test_size=16)
    result = cmp.data_size_sweep(task, (4, 16), lstm_hidden_size=5, match=match,
                                 seeds=(0, 1, 2), steps=3, batch_size=4)
    assert result.sizes == [4, 16] and result.match == match
    for kind in ("LSTM", "GRU"):
        assert result.scores[kind].shape == (2, 3)
    if match == "hidden_size":
        assert result.hidden_sizes == {"LSTM": 5, "GRU": 5}
    else:
        assert result.hidden_sizes == cmp.matched_hidden_sizes(2, 1, 5, kinds=("LSTM", "GRU"))
    with pytest.raises(ValueError, match="match must be one of"):
        cmp.data_size_sweep(task, (4,), match="flops")


def test_explore_is_a_pure_function_and_draws():
    import matplotlib.pyplot as plt

    first = cmp.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    second = cmp.explore("anbn", 3, 4, steps=4, seeds=(0,), evaluations=2, batch_size=4)
    for kind in first.kinds:
        np.testing.assert_array_equal(first.scores[kind], second.scores[kind])
    fig, ax = plt.subplots()
    cmp.draw_comparison(ax, first)
    assert len(ax.lines) == 3 * 2 + 2  # seeds and median per kind, chance, training range
    plt.close(fig)
    grid = cmp.comparison_small_multiples([first, second, first, second], columns=3)
    assert len(grid.axes) == 6 and not grid.axes[-1].axison
    plt.close(grid)
    with pytest.raises(TypeError, match="comparison must be a Comparison"):
        cmp.draw_comparison(ax, {"LSTM": [1]})


def test_a_diverged_run_is_drawn_at_the_floor_and_marked():
    import matplotlib.pyplot as plt

    task = cmp.make_task("adding", 4, test_size=8)
    assert cmp.score_floor(task) == pytest.approx(-0.9)  # 0 - (0.9 - 0)
    steps = [10, 20, 30]
    scores = {"RNN": np.array([[0.1, 0.0], [0.2, -50.0], [0.3, np.nan]]),
              "GRU": np.array([[0.5, 0.6], [0.9, 0.95], [0.99, 0.98]])}
    comparison = cmp.Comparison(task=task, seeds=(0, 1), hidden_sizes={"RNN": 9, "GRU": 5},
                                parameters={}, steps=steps, scores=scores, seconds={},
                                settings={})
    fig, ax = plt.subplots()
    cmp.draw_comparison(ax, comparison)
    bottom, top = ax.get_ylim()
    assert -1.0 < bottom < -0.9 and top > 0.99  # the other curves keep their scale
    lowest = min(np.min(np.asarray(line.get_ydata(), dtype=float)) for line in ax.lines)
    assert lowest == pytest.approx(-0.9)
    markers = [c for c in ax.collections if len(c.get_offsets())]
    assert len(markers) == 1 and len(markers[0].get_offsets()) == 2  # -50 and NaN
    assert "below the axis (diverged)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    # Medians, not means: one diverged seed of two does not drag the thick line to -25.
    rnn_median = [line for line in ax.lines if line.get_linewidth() == 2.0][0].get_ydata()
    assert rnn_median[1] == pytest.approx(np.median([0.2, -0.9]))
    grid = cmp.comparison_small_multiples([comparison])
    labels = [t.get_text() for t in grid.legends[0].get_texts()]
    assert "below the axis (diverged)" in labels
    plt.close(grid)
    with pytest.raises(TypeError, match="task must be a Task"):
        cmp.score_floor("adding")


def test_explorer_uses_core_widgets_only():
    import ipywidgets as widgets

    box = cmp.comparison_explorer()
    assert isinstance(box, widgets.VBox)
    leaves = [w for child in box.children
              for w in (child.children if isinstance(child, widgets.HBox) else [child])]
    assert {type(w).__name__ for w in leaves} == {"Dropdown", "IntSlider", "Button", "Label",
                                                  "Output"}


def test_the_comparison_explorer_disables_its_controls_while_training_and_flags_stale_figures(
        monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    box = cmp.comparison_explorer()
    leaves = [w for child in box.children
              for w in (child.children if isinstance(child, widgets.HBox) else [child])]
    button = next(w for w in leaves if isinstance(w, widgets.Button))
    status = next(w for w in leaves if isinstance(w, widgets.Label))
    sliders = [w for w in leaves if isinstance(w, widgets.IntSlider)]
    seen = []

    def fake_explore(**values):
        seen.append((button.disabled, all(s.disabled for s in sliders), status.value))
        raise RuntimeError("stopped for the test")

    real_explore = cmp.explore
    monkeypatch.setattr(cmp, "explore", fake_explore)
    button.click()
    disabled, sliders_disabled, during = seen[0]
    assert disabled and sliders_disabled and during.startswith("Training")
    assert not button.disabled and "stopped for the test" in status.value

    comparison = real_explore("adding", length=4, lstm_hidden_size=4, steps=2)
    monkeypatch.setattr(cmp, "explore", lambda **values: comparison)
    button.click()
    assert status.value == "The figure shows these settings."
    sliders[0].value = sliders[0].value + 2
    assert status.value.startswith("Settings changed")
    sliders[0].value = sliders[0].value - 2
    assert status.value == "The figure shows these settings."


def test_timings_are_not_compared_across_clocks():
    assert math.isinf(cmp.Timing((0.0, 0.0, 0.0), "wall").spread)
