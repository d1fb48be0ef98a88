"""The numpy cells against torch.nn, torch autograd and finite differences.

Every reference here is computed independently of the code under test: torch.nn modules
(weights copied by the helper below, not by the library's converters), torch autograd,
centred finite differences, or a formula written out in the test.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
import torch

from throughtime import numpy_cells as nc
from throughtime.gradients import numeric_gradient, rel_error

KINDS = ("rnn", "lstm", "gru")
TORCH_LAYER = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_CELL = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def _seed(*parts) -> int:
    """A seed that depends on the test case, the same in every run (unlike hash())."""
    return zlib.crc32(repr(parts).encode())


def _shapes(count: int = 6, seed: int = 2024) -> list[tuple[int, int, int, int]]:
    """(T, B, I, H): the edge cases with sizes of 1, then seeded random shapes."""
    rng = np.random.default_rng(seed)
    fixed = [(1, 1, 1, 1), (1, 3, 2, 4), (4, 1, 1, 3), (3, 2, 5, 1)]
    randoms = [tuple(int(v) for v in rng.integers(1, 7, size=4)) for _ in range(count)]
    return fixed + randoms


SHAPES = _shapes()


def _copy_into(module: torch.nn.Module, params: dict, suffix: str) -> torch.nn.Module:
    """Copy numpy params into a torch module by hand (independent of load_into_torch)."""
    with torch.no_grad():
        for name, value in params.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(value))
    return module


def torch_layer(kind, params, nonlinearity="tanh"):
    hidden, inputs = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    module = TORCH_LAYER[kind](inputs, hidden, dtype=torch.float64, **extra)
    return _copy_into(module, params, "_l0")


def torch_cell(kind, params, nonlinearity="tanh"):
    hidden, inputs = params["weight_hh"].shape[1], params["weight_ih"].shape[1]
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    module = TORCH_CELL[kind](inputs, hidden, dtype=torch.float64, **extra)
    return _copy_into(module, params, "")


def random_params(kind, input_size, hidden_size, rng, dtype=np.float64, scale=1.0):
    gates = nc.GATES[kind]
    shapes = {"weight_ih": (gates * hidden_size, input_size),
              "weight_hh": (gates * hidden_size, hidden_size),
              "bias_ih": (gates * hidden_size,), "bias_hh": (gates * hidden_size,)}
    return {k: (scale * rng.normal(size=s)).astype(dtype) for k, s in shapes.items()}


def leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


# --------------------------------------------------------------------------------------
# Forward passes equal torch.nn
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["rnn", "rnn-relu", "lstm", "gru"])
def test_step_forward_equals_torch_cell(kind, shape):
    _, batch, inputs, hidden = shape
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(_seed((kind, shape)))
    params = random_params(kind, inputs, hidden, rng)
    x = rng.normal(size=(batch, inputs))
    h, c = rng.normal(size=(2, batch, hidden))
    cell = torch_cell(kind, params, nonlinearity)
    with torch.no_grad():
        if kind == "lstm":
            h_next, c_next, _ = nc.lstm_step(x, h, c, params)
            h_ref, c_ref = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
            assert rel_error(c_next, c_ref.numpy()) <= 1e-10
        elif kind == "gru":
            h_next, _ = nc.gru_step(x, h, params)
            h_ref = cell(torch.from_numpy(x), torch.from_numpy(h))
        else:
            h_next, _ = nc.rnn_step(x, h, params, nonlinearity=nonlinearity)
            h_ref = cell(torch.from_numpy(x), torch.from_numpy(h))
    assert h_next.shape == (batch, hidden)
    assert rel_error(h_next, h_ref.numpy()) <= 1e-10


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["rnn", "rnn-relu", "lstm", "gru"])
@pytest.mark.parametrize("zero_state", [False, True])
def test_sequence_forward_equals_torch_layer(kind, shape, zero_state):
    steps, batch, inputs, hidden = shape
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(_seed((kind, shape, zero_state)))
    params = random_params(kind, inputs, hidden, rng, scale=0.7)
    xs = rng.normal(size=(steps, batch, inputs))
    h0, c0 = rng.normal(size=(2, batch, hidden))
    if zero_state:
        h0_arg = c0_arg = None
        h0, c0 = np.zeros_like(h0), np.zeros_like(c0)
    else:
        h0_arg, c0_arg = h0, c0
    layer = torch_layer(kind, params, nonlinearity)
    with torch.no_grad():
        if kind == "lstm":
            hs, cs, _ = nc.lstm_forward(xs, h0_arg, c0_arg, params)
            out, (h_n, c_n) = layer(torch.from_numpy(xs),
                                    (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
            assert rel_error(cs[-1], c_n[0].numpy()) <= 1e-10
        elif kind == "gru":
            hs, _ = nc.gru_forward(xs, h0_arg, params)
            out, h_n = layer(torch.from_numpy(xs), torch.from_numpy(h0[None]))
        else:
            hs, _ = nc.rnn_forward(xs, h0_arg, params, nonlinearity=nonlinearity)
            out, h_n = layer(torch.from_numpy(xs), torch.from_numpy(h0[None]))
    assert hs.shape == (steps, batch, hidden)
    assert rel_error(hs, out.numpy()) <= 1e-10
    assert rel_error(hs[-1], h_n[0].numpy()) <= 1e-10


# --------------------------------------------------------------------------------------
# Backward passes equal autograd
# --------------------------------------------------------------------------------------


def _torch_rnn_step(x, h, w, nonlinearity):
    a = x @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"]
    return {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
            "linear": lambda v: v}[nonlinearity](a)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["rnn", "rnn-relu", "lstm", "gru"])
def test_step_backward_equals_autograd(kind, shape):
    _, batch, inputs, hidden = shape
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(_seed(("step-backward", kind, shape)))
    params = random_params(kind, inputs, hidden, rng)
    x, h, c = rng.normal(size=(batch, inputs)), *rng.normal(size=(2, batch, hidden))
    dh_next, dc_next = rng.normal(size=(2, batch, hidden))
    cell = torch_cell(kind, params, nonlinearity)
    tx, th, tc = leaf(x), leaf(h), leaf(c)
    if kind == "lstm":
        h_ref, c_ref = cell(tx, (th, tc))
        loss = (h_ref * torch.from_numpy(dh_next)).sum() + (c_ref * torch.from_numpy(dc_next)).sum()
        _, _, cache = nc.lstm_step(x, h, c, params)
        dx, dh, dc, grads = nc.lstm_step_backward(dh_next, dc_next, cache)
        loss.backward()
        assert rel_error(dc, tc.grad.numpy()) <= 1e-9
    else:
        h_ref = cell(tx, th)
        (h_ref * torch.from_numpy(dh_next)).sum().backward()
        if kind == "gru":
            _, cache = nc.gru_step(x, h, params)
            dx, dh, grads = nc.gru_step_backward(dh_next, cache)
        else:
            _, cache = nc.rnn_step(x, h, params, nonlinearity=nonlinearity)
            dx, dh, grads = nc.rnn_step_backward(dh_next, cache)
    assert rel_error(dx, tx.grad.numpy()) <= 1e-9
    assert rel_error(dh, th.grad.numpy()) <= 1e-9
    for name in nc.PARAM_NAMES:
        assert grads[name].shape == params[name].shape
        assert rel_error(grads[name], getattr(cell, name).grad.numpy()) <= 1e-9, name


def _sequence_backward(kind, xs, h0, c0, params, dhs, nonlinearity="tanh"):
    """(dxs, dh0, dc0 or None, grads) from the library."""
    if kind == "lstm":
        _, _, cache = nc.lstm_forward(xs, h0, c0, params)
        return nc.lstm_backward(dhs, cache)
    if kind == "gru":
        _, cache = nc.gru_forward(xs, h0, params)
        dxs, dh0, grads = nc.gru_backward(dhs, cache)
    else:
        _, cache = nc.rnn_forward(xs, h0, params, nonlinearity=nonlinearity)
        dxs, dh0, grads = nc.rnn_backward(dhs, cache)
    return dxs, dh0, None, grads


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["rnn", "rnn-relu", "lstm", "gru"])
def test_sequence_backward_equals_autograd(kind, shape):
    steps, batch, inputs, hidden = shape
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(_seed(("seq-backward", kind, shape)))
    params = random_params(kind, inputs, hidden, rng, scale=0.7)
    xs = rng.normal(size=(steps, batch, inputs))
    h0, c0 = rng.normal(size=(2, batch, hidden))
    dhs = rng.normal(size=(steps, batch, hidden))
    layer = torch_layer(kind, params, nonlinearity)
    txs, th0, tc0 = leaf(xs), leaf(h0[None]), leaf(c0[None])
    out, _ = layer(txs, (th0, tc0)) if kind == "lstm" else layer(txs, th0)
    (out * torch.from_numpy(dhs)).sum().backward()

    dxs, dh0, dc0, grads = _sequence_backward(kind, xs, h0, c0, params, dhs, nonlinearity)
    assert rel_error(dxs, txs.grad.numpy()) <= 1e-9
    assert rel_error(dh0, th0.grad[0].numpy()) <= 1e-9
    if kind == "lstm":
        assert rel_error(dc0, tc0.grad[0].numpy()) <= 1e-9
    for name in nc.PARAM_NAMES:
        assert rel_error(grads[name], getattr(layer, name + "_l0").grad.numpy()) <= 1e-9, name


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "linear", "relu", "tanh"])
def test_rnn_extra_nonlinearities_equal_autograd(nonlinearity):
    """torch.nn.RNN has no sigmoid or linear RNN: compare with an autograd loop."""
    rng = np.random.default_rng(7)
    steps, batch, inputs, hidden = 6, 3, 2, 4
    params = random_params("rnn", inputs, hidden, rng, scale=0.6)
    xs, dhs = rng.normal(size=(steps, batch, inputs)), rng.normal(size=(steps, batch, hidden))
    h0 = rng.normal(size=(batch, hidden))
    weights = {k: leaf(v) for k, v in params.items()}
    txs, th0 = leaf(xs), leaf(h0)
    h, outs = th0, []
    for t in range(steps):
        h = _torch_rnn_step(txs[t], h, weights, nonlinearity)
        outs.append(h)
    out = torch.stack(outs)
    (out * torch.from_numpy(dhs)).sum().backward()

    hs, cache = nc.rnn_forward(xs, h0, params, nonlinearity=nonlinearity)
    assert rel_error(hs, out.detach().numpy()) <= 1e-10
    h_step, _ = nc.rnn_step(xs[0], h0, params, nonlinearity=nonlinearity)
    assert rel_error(h_step, hs[0]) == 0
    dxs, dh0, grads = nc.rnn_backward(dhs, cache)
    assert rel_error(dxs, txs.grad.numpy()) <= 1e-9
    assert rel_error(dh0, th0.grad.numpy()) <= 1e-9
    for name in nc.PARAM_NAMES:
        assert rel_error(grads[name], weights[name].grad.numpy()) <= 1e-9, name


# --------------------------------------------------------------------------------------
# Backward passes equal centred finite differences
# --------------------------------------------------------------------------------------


def assert_matches_finite_differences(analytic, loss, array):
    """``analytic`` against centred differences of ``loss`` with respect to ``array``.

    Relative error <= 1e-6, where an entry below 1e-3 is held to 1e-9 in absolute terms.
    The step eps = 1e-5 is near the cube root of float64's machine epsilon, the best one.

    Centred differences carry an absolute error (rounding, about machine epsilon * |L| / eps,
    plus truncation, O(eps^2)) of about 1e-10 here, whatever the entry's size, so a purely
    relative test would fail on tiny entries of a correct gradient.
    """
    numeric = numeric_gradient(loss, array, eps=1e-5)
    error = rel_error(analytic, numeric, floor=1e-3)
    assert error <= 1e-6, f"relative error {error:.2e} against finite differences"


FD_SHAPES = [(1, 1, 1, 1), (3, 2, 3, 4), (2, 1, 2, 2)]


def _loss_function(kind, xs, h0, c0, params, dhs, nonlinearity):
    """L = sum(dhs * hs), a scalar whose gradient at hs is dhs."""
    def loss(_=None):
        if kind == "lstm":
            hs, _, _ = nc.lstm_forward(xs, h0, c0, params)
        elif kind == "gru":
            hs, _ = nc.gru_forward(xs, h0, params)
        else:
            hs, _ = nc.rnn_forward(xs, h0, params, nonlinearity=nonlinearity)
        return float(np.sum(hs * dhs))
    return loss


@pytest.mark.parametrize("shape", FD_SHAPES)
@pytest.mark.parametrize("kind", ["rnn", "rnn-sigmoid", "lstm", "gru"])
def test_sequence_backward_equals_finite_differences(kind, shape):
    steps, batch, inputs, hidden = shape
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(_seed(("fd", kind, shape)))
    params = random_params(kind, inputs, hidden, rng, scale=0.7)
    xs = rng.normal(size=(steps, batch, inputs))
    h0, c0 = rng.normal(size=(2, batch, hidden))
    dhs = rng.normal(size=(steps, batch, hidden))
    dxs, dh0, dc0, grads = _sequence_backward(kind, xs, h0, c0, params, dhs, nonlinearity)
    loss = _loss_function(kind, xs, h0, c0, params, dhs, nonlinearity)
    assert_matches_finite_differences(dxs, loss, xs)
    assert_matches_finite_differences(dh0, loss, h0)
    if kind == "lstm":
        assert_matches_finite_differences(dc0, loss, c0)
    for name in nc.PARAM_NAMES:
        assert_matches_finite_differences(grads[name], loss, params[name])


@pytest.mark.parametrize("kind", KINDS)
def test_step_backward_equals_finite_differences(kind):
    rng = np.random.default_rng(11)
    batch, inputs, hidden = 2, 3, 4
    params = random_params(kind, inputs, hidden, rng)
    x, h, c = rng.normal(size=(batch, inputs)), *rng.normal(size=(2, batch, hidden))
    dh_next, dc_next = rng.normal(size=(2, batch, hidden))

    def loss(_=None):
        if kind == "lstm":
            h_next, c_next, _ = nc.lstm_step(x, h, c, params)
            return float(np.sum(h_next * dh_next) + np.sum(c_next * dc_next))
        step = nc.gru_step if kind == "gru" else nc.rnn_step
        return float(np.sum(step(x, h, params)[0] * dh_next))

    if kind == "lstm":
        cache = nc.lstm_step(x, h, c, params)[2]
        dx, dh, dc, grads = nc.lstm_step_backward(dh_next, dc_next, cache)
        assert_matches_finite_differences(dc, loss, c)
    elif kind == "gru":
        dx, dh, grads = nc.gru_step_backward(dh_next, nc.gru_step(x, h, params)[1])
    else:
        dx, dh, grads = nc.rnn_step_backward(dh_next, nc.rnn_step(x, h, params)[1])
    assert_matches_finite_differences(dx, loss, x)
    assert_matches_finite_differences(dh, loss, h)
    for name in nc.PARAM_NAMES:
        assert_matches_finite_differences(grads[name], loss, params[name])


# --------------------------------------------------------------------------------------
# float32
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_float32_keeps_dtype_and_agrees_with_float64(kind):
    rng = np.random.default_rng(3)
    steps, batch, inputs, hidden = 5, 3, 4, 6
    params64 = nc.init_params(kind, inputs, hidden, rng)
    xs64 = rng.normal(size=(steps, batch, inputs))
    h064, c064 = 0.5 * rng.normal(size=(2, batch, hidden))
    dhs64 = rng.normal(size=(steps, batch, hidden))
    results = {}
    for dtype in (np.float32, np.float64):
        params = {k: v.astype(dtype) for k, v in params64.items()}
        xs, h0, c0, dhs = (a.astype(dtype) for a in (xs64, h064, c064, dhs64))
        if kind == "lstm":
            hs, cs, cache = nc.lstm_forward(xs, h0, c0, params)
            dxs, dh0, dc0, grads = nc.lstm_backward(dhs, cache)
            outputs = [hs, cs, dxs, dh0, dc0, *grads.values()]
        else:
            forward, backward = {"rnn": (nc.rnn_forward, nc.rnn_backward),
                                 "gru": (nc.gru_forward, nc.gru_backward)}[kind]
            hs, cache = forward(xs, h0, params)
            dxs, dh0, grads = backward(dhs, cache)
            outputs = [hs, dxs, dh0, *grads.values()]
        assert all(out.dtype == dtype for out in outputs)
        results[dtype] = outputs
    for single, double in zip(results[np.float32], results[np.float64], strict=True):
        assert np.max(np.abs(single - double)) <= 1e-5 * max(1.0, np.max(np.abs(double)))


def test_float32_steps_keep_dtype():
    rng = np.random.default_rng(4)
    for kind in KINDS:
        params = nc.init_params(kind, 2, 3, rng, dtype=np.float32)
        x = rng.normal(size=(2, 2)).astype(np.float32)
        h = np.zeros((2, 3), np.float32)
        if kind == "lstm":
            h1, c1, cache = nc.lstm_step(x, h, h, params)
            outs = [h1, c1, *nc.lstm_step_backward(h1, c1, cache)[:3]]
        else:
            step, back = (nc.gru_step, nc.gru_step_backward) if kind == "gru" else \
                (nc.rnn_step, nc.rnn_step_backward)
            h1, cache = step(x, h, params)
            dx, dh, grads = back(h1, cache)
            outs = [h1, dx, dh, *grads.values()]
        assert {o.dtype for o in outs} == {np.dtype(np.float32)}, kind


# --------------------------------------------------------------------------------------
# Truncated BPTT
# --------------------------------------------------------------------------------------


def _truncation_problem(seed=5, steps=7, batch=2, inputs=3, hidden=4):
    rng = np.random.default_rng(seed)
    params = random_params("rnn", inputs, hidden, rng, scale=0.6)
    xs = rng.normal(size=(steps, batch, inputs))
    h0 = rng.normal(size=(batch, hidden))
    dhs = rng.normal(size=(steps, batch, hidden))
    return params, xs, h0, dhs


def _assert_close(ours, reference, tolerance=1e-9):
    dxs, dh0, grads = ours
    ref_dxs, ref_dh0, ref_grads = reference
    assert rel_error(dxs, ref_dxs) <= tolerance
    assert rel_error(dh0, ref_dh0) <= tolerance
    assert rel_error(grads, ref_grads) <= tolerance


@pytest.mark.parametrize("k2", [7, 8, 100])
def test_truncated_with_long_window_equals_full(k2):
    params, xs, h0, dhs = _truncation_problem()
    _, cache = nc.rnn_forward(xs, h0, params)
    _assert_close(nc.rnn_backward_truncated(dhs, cache, k2), nc.rnn_backward(dhs, cache), 1e-12)


def test_truncated_with_one_step_is_the_local_gradient():
    """k2 = 1: da_t = dhs[t] (1 - h_t^2), dW_hh = sum_t da_t^T h_{t-1}, and so on."""
    params, xs, h0, dhs = _truncation_problem()
    hs, cache = nc.rnn_forward(xs, h0, params)
    previous = np.concatenate([h0[None], hs[:-1]])
    da = dhs * (1 - hs**2)
    expected = (
        da @ params["weight_ih"],
        da[0] @ params["weight_hh"],
        {"weight_ih": np.einsum("tbh,tbi->hi", da, xs),
         "weight_hh": np.einsum("tbh,tbk->hk", da, previous),
         "bias_ih": da.sum(axis=(0, 1)), "bias_hh": da.sum(axis=(0, 1))},
    )
    _assert_close(nc.rnn_backward_truncated(dhs, cache, 1), expected, 1e-12)


def _torch_truncated_reference(params, xs, h0, dhs, k2):
    """Each loss term t, recomputed from h_{t-k2} detached, backpropagated by autograd."""
    weights = {k: leaf(v) for k, v in params.items()}
    txs, th0 = leaf(xs), leaf(h0)
    with torch.no_grad():  # the states to restart from
        states, h = [], th0
        for t in range(len(xs)):
            h = _torch_rnn_step(txs[t], h, weights, "tanh")
            states.append(h)
    for t in range(len(xs)):
        start = t - k2 + 1
        h = th0 if start <= 0 else states[start - 1].detach()
        for s in range(max(start, 0), t + 1):
            h = _torch_rnn_step(txs[s], h, weights, "tanh")
        (h * torch.from_numpy(dhs[t])).sum().backward()
    grad_h0 = th0.grad.numpy() if th0.grad is not None else np.zeros_like(h0)
    return txs.grad.numpy(), grad_h0, {k: w.grad.numpy() for k, w in weights.items()}


@pytest.mark.parametrize("k2", [1, 2, 3, 6, 7])
def test_truncated_equals_autograd_with_detached_windows(k2):
    params, xs, h0, dhs = _truncation_problem()
    _, cache = nc.rnn_forward(xs, h0, params)
    reference = _torch_truncated_reference(params, xs, h0, dhs, k2)
    _assert_close(nc.rnn_backward_truncated(dhs, cache, k2), reference)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_segments_equal_autograd_detaching_every_k_steps(k):
    """k1 = k2 = k: one graph, the state detached every k steps, one backward."""
    params, xs, h0, dhs = _truncation_problem()
    weights = {name: leaf(v) for name, v in params.items()}
    txs, th0 = leaf(xs), leaf(h0)
    h, outs = th0, []
    for t in range(len(xs)):
        if t > 0 and t % k == 0:
            h = h.detach()
        h = _torch_rnn_step(txs[t], h, weights, "tanh")
        outs.append(h)
    (torch.stack(outs) * torch.from_numpy(dhs)).sum().backward()

    _, cache = nc.rnn_forward(xs, h0, params)
    total_dxs, total_grads = np.zeros_like(xs), {n: np.zeros_like(v) for n, v in params.items()}
    segments = nc.truncated_bptt_segments(len(xs), k, k)
    for segment in segments:
        dxs, dh_start, grads = nc.rnn_backward_segment(dhs, cache, segment)
        total_dxs += dxs
        for name in grads:
            total_grads[name] += grads[name]
        if segment.backprop_steps.start == 0:
            assert rel_error(dh_start, th0.grad.numpy()) <= 1e-9
    assert rel_error(total_dxs, txs.grad.numpy()) <= 1e-9
    assert rel_error(total_grads, {n: w.grad.numpy() for n, w in weights.items()}) <= 1e-9


@pytest.mark.parametrize(("k1", "k2"), [(1, 3), (2, 3), (2, 5), (3, 3)])
def test_each_segment_equals_autograd_on_its_window(k1, k2):
    params, xs, h0, dhs = _truncation_problem(seed=9, steps=8)
    _, cache = nc.rnn_forward(xs, h0, params)
    for segment in nc.truncated_bptt_segments(len(xs), k1, k2):
        weights = {name: leaf(v) for name, v in params.items()}
        txs, th0 = leaf(xs), leaf(h0)
        with torch.no_grad():
            h = th0
            for t in range(segment.backprop_steps.start):
                h = _torch_rnn_step(txs[t], h, weights, "tanh")
        start = leaf(h.detach().numpy())
        h, loss = start, 0
        for t in segment.backprop_steps:
            h = _torch_rnn_step(txs[t], h, weights, "tanh")
            if t in segment.loss_steps:
                loss = loss + (h * torch.from_numpy(dhs[t])).sum()
        loss.backward()
        reference = (txs.grad.numpy(), start.grad.numpy(),
                     {n: w.grad.numpy() for n, w in weights.items()})
        _assert_close(nc.rnn_backward_segment(dhs, cache, segment), reference)


def test_segments_with_k1_one_sum_to_the_truncated_gradient():
    params, xs, h0, dhs = _truncation_problem(seed=12)
    _, cache = nc.rnn_forward(xs, h0, params)
    k2 = 3
    total = [np.zeros_like(xs), np.zeros_like(h0), {n: np.zeros_like(v) for n, v in params.items()}]
    for segment in nc.truncated_bptt_segments(len(xs), 1, k2):
        dxs, dh_start, grads = nc.rnn_backward_segment(dhs, cache, segment)
        total[0] += dxs
        if segment.backprop_steps.start == 0:
            total[1] += dh_start
        for name in grads:
            total[2][name] += grads[name]
    _assert_close(nc.rnn_backward_truncated(dhs, cache, k2), total, 1e-12)


def test_truncated_bptt_schedule():
    segments = nc.truncated_bptt_segments(10, 3, 5)
    # Updates after steps 2, 5, 8 and 9 (the short last block).
    assert [s.update_at for s in segments] == [2, 5, 8, 9]
    assert [s.loss_steps for s in segments] == [range(0, 3), range(3, 6), range(6, 9),
                                                range(9, 10)]
    # Each window is the block and the k2 - k1 = 2 steps before it.
    assert [s.backprop_steps for s in segments] == [range(0, 3), range(1, 6), range(4, 9),
                                                    range(7, 10)]
    full = nc.truncated_bptt_segments(6, 6, 6)
    assert full == [nc.TruncatedSegment(5, range(0, 6), range(0, 6))]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [((10, 4, 2), ValueError, "k2 must be >= k1"), ((0, 1, 1), ValueError, "T must be"),
     ((5, 0, 1), ValueError, "k1 must be"), ((5, 1.5, 2), TypeError, "k1 must be an integer")],
)
def test_truncated_bptt_schedule_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        nc.truncated_bptt_segments(*args)


def test_truncated_rejects_bad_arguments():
    params, xs, h0, dhs = _truncation_problem()
    _, cache = nc.rnn_forward(xs, h0, params)
    with pytest.raises(ValueError, match="k2 must be an integer >= 1, got 0"):
        nc.rnn_backward_truncated(dhs, cache, 0)
    with pytest.raises(ValueError, match=r"dhs must have shape \(T, B, H\) = \(7, 2, 4\)"):
        nc.rnn_backward_truncated(dhs[:3], cache, 2)
    with pytest.raises(TypeError, match="segment must be a TruncatedSegment"):
        nc.rnn_backward_segment(dhs, cache, (0, range(1), range(1)))
    with pytest.raises(ValueError, match="does not fit a sequence of length 7"):
        nc.rnn_backward_segment(dhs, cache, nc.truncated_bptt_segments(9, 3, 3)[-1])
    lstm_params = random_params("lstm", 3, 4, np.random.default_rng(0))
    lstm_cache = nc.lstm_forward(xs, h0, None, lstm_params)[2]
    with pytest.raises(TypeError, match="cache must be the cache returned by rnn_forward"):
        nc.rnn_backward_truncated(dhs, lstm_cache, 2)


# --------------------------------------------------------------------------------------
# Initialisation and converters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_follows_torch_default(kind, dtype):
    hidden, inputs = 16, 5
    params = nc.init_params(kind, inputs, hidden, np.random.default_rng(0), dtype=dtype)
    module = TORCH_LAYER[kind](inputs, hidden)
    reference = {name: getattr(module, name + "_l0") for name in nc.PARAM_NAMES}
    bound = 1 / np.sqrt(hidden)
    for name, value in params.items():
        assert value.shape == tuple(reference[name].shape)
        assert value.dtype == dtype
        assert np.all(np.abs(value) <= bound)
        assert np.abs(reference[name].detach().numpy()).max() <= bound  # torch's bound too
    # U(-k, k) has variance k^2/3: the 16*16*G weights estimate it to within ~10 %.
    assert abs(params["weight_hh"].astype(np.float64).var() / (bound**2 / 3) - 1) < 0.15
    again = nc.init_params(kind, inputs, hidden, np.random.default_rng(0), dtype=dtype)
    assert all(np.array_equal(params[k], again[k]) for k in params)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_converters_round_trip_exactly(kind, layer, dtype):
    module = (TORCH_LAYER if layer else TORCH_CELL)[kind](3, 5, dtype=dtype)
    suffix = "_l0" if layer else ""
    params = nc.params_from_torch(module)
    for name in nc.PARAM_NAMES:
        original = getattr(module, name + suffix).detach()
        assert params[name].dtype == original.numpy().dtype
        assert np.array_equal(params[name], original.numpy())
    # The result is a copy, not a view of the module's memory.
    tensor = getattr(module, "bias_ih" + suffix).detach()
    assert not np.shares_memory(params["bias_ih"], tensor.numpy())

    from_state = nc.params_from_torch(module.state_dict())
    assert all(np.array_equal(from_state[k], params[k]) for k in params)

    other = (TORCH_LAYER if layer else TORCH_CELL)[kind](3, 5, dtype=dtype)
    assert nc.load_into_torch(params, other) is other
    for a, b in zip(module.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    tensors = nc.params_to_torch(params)
    assert all(torch.equal(tensors[k], getattr(module, k + suffix)) for k in nc.PARAM_NAMES)
    assert nc.params_from_torch(tensors).keys() == params.keys()


@pytest.mark.parametrize(
    ("module", "error", "match"),
    [
        (torch.nn.LSTM(2, 3, num_layers=2), ValueError, "num_layers=2"),
        (torch.nn.GRU(2, 3, bidirectional=True), ValueError, "bidirectional=True"),
        (torch.nn.LSTM(2, 3, proj_size=2), ValueError, "proj_size=2"),
        (torch.nn.RNN(2, 3, bias=False), ValueError, "bias=True"),
        (torch.nn.Linear(2, 3), ValueError, "module must hold exactly the parameters"),
        ("weights", TypeError, "source must be a torch.nn.Module or a state dict"),
        ({"weight_ih": torch.zeros(3, 2)}, ValueError, "source must hold exactly"),
    ],
)
def test_params_from_torch_rejects_what_it_cannot_convert(module, error, match):
    with pytest.raises(error, match=match):
        nc.params_from_torch(module)


def test_load_into_torch_rejects_mismatches():
    params = nc.init_params("lstm", 2, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"params\['weight_ih'\] is float64 but LSTM.weight_ih_l0 "
                                        r"is torch.float32.*module.double\(\)"):
        nc.load_into_torch(params, torch.nn.LSTM(2, 3))
    with pytest.raises(ValueError, match=r"params\['weight_ih'\] has shape \(12, 2\) but "
                                         r"LSTM.weight_ih_l0 has shape \(12, 4\)"):
        nc.load_into_torch(params, torch.nn.LSTM(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"params\['weight_ih'\] has shape \(12, 2\) but "
                                         r"GRU.weight_ih_l0 has shape \(9, 2\)"):
        nc.load_into_torch(params, torch.nn.GRU(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        nc.load_into_torch(params, params)


# --------------------------------------------------------------------------------------
# Stable sigmoid
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_and_correct(dtype):
    x = np.array([-1e4, -800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = nc.sigmoid(x)
    assert y.dtype == dtype
    assert y[4] == 0.5
    assert y[0] == 0.0 and y[-1] == 1.0
    assert np.all(np.diff(y) >= 0)
    reference = torch.sigmoid(torch.from_numpy(x.astype(np.float64))).numpy()
    assert np.max(np.abs(y - reference)) <= (1e-7 if dtype == np.float32 else 1e-15)
    moderate = np.linspace(-30, 30, 121, dtype=dtype)
    exact = 1 / (1 + np.exp(-moderate.astype(np.float64)))
    assert rel_error(nc.sigmoid(moderate), exact, floor=0) <= (1e-6 if dtype == np.float32
                                                              else 1e-14)
    # sigma(-x) = 1 - sigma(x)
    assert np.max(np.abs(nc.sigmoid(-moderate) - (1 - nc.sigmoid(moderate)))) <= 1e-6


def test_cells_run_without_warnings_on_huge_preactivations():
    rng = np.random.default_rng(0)
    for kind in KINDS:
        params = random_params(kind, 2, 3, rng, scale=1e4)
        xs = rng.normal(size=(3, 2, 2))
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
            warnings.simplefilter("error")
            if kind == "lstm":
                hs = nc.lstm_forward(xs, None, None, params)[0]
            elif kind == "gru":
                hs = nc.gru_forward(xs, None, params)[0]
            else:
                hs = nc.rnn_forward(xs, None, params)[0]
        assert np.all(np.isfinite(hs)) and np.all(np.abs(hs) <= 1)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def _valid(kind="rnn", dtype=np.float64):
    rng = np.random.default_rng(0)
    params = nc.init_params(kind, 3, 4, rng, dtype=dtype)
    return params, rng.normal(size=(5, 2, 3)).astype(dtype), np.zeros((2, 4), dtype)


def _replace(params, **changes):
    return {**params, **changes}


def _bad_cases():
    params, xs, h0 = _valid()
    lstm_params = _valid("lstm")[0]
    nan_xs = xs.copy()
    nan_xs[1, 0, 2] = np.nan
    no_key = {k: v for k, v in params.items() if k != "bias_hh"}
    forward = nc.rnn_forward
    return [
        # (call, error, regex on the message)
        (lambda: forward(xs[0], h0, params), ValueError,
         r"xs must be a 3-D array of shape \(T, B, I\) = \(T, B, 3\), got 2-D shape \(2, 3\)"),
        (lambda: forward(xs[:, :, :2], h0, params), ValueError,
         r"xs must have shape \(T, B, I\) = \(5, 2, 3\), got \(5, 2, 2\)"),
        (lambda: forward(xs[:0], h0, params), ValueError,
         r"xs must contain at least one time step, got shape \(0, 2, 3\)"),
        (lambda: forward(xs[:, :0], None, params), ValueError, r"xs has an empty axis.*B"),
        (lambda: forward(nan_xs, h0, params), ValueError, "xs contains 1 NaN or infinite"),
        (lambda: forward(xs.tolist(), h0, params), TypeError,
         "xs must be a numpy array, got a list"),
        (lambda: forward(torch.zeros(5, 2, 3), h0, params), TypeError,
         r"xs must be a numpy array.*\.detach\(\)\.cpu\(\)\.numpy\(\)"),
        (lambda: forward(xs.astype(np.int64), h0, params), TypeError,
         "xs must have dtype float32 or float64, got dtype int64"),
        (lambda: forward(xs.astype(np.float16), h0, params), TypeError,
         "xs must have dtype float32 or float64, got dtype float16"),
        (lambda: forward(xs.astype(np.float32), h0, params), TypeError,
         "mixed dtypes.*xs: float32"),
        (lambda: forward(xs, h0.astype(np.float32), params), TypeError,
         "mixed dtypes.*h0: float32"),
        (lambda: forward(xs, h0[:, :3], params), ValueError,
         r"h0 must have shape \(B, H\) = \(2, 4\), got \(2, 3\)"),
        (lambda: forward(xs, h0[None], params), ValueError, "h0 must be a 2-D array"),
        (lambda: forward(xs, h0, no_key), ValueError, r"missing \['bias_hh'\]"),
        (lambda: forward(xs, h0, {k + "_l0": v for k, v in params.items()}), ValueError,
         "convert it with params_from_torch"),
        (lambda: forward(xs, h0, [1, 2]), TypeError, "params must be a dict"),
        (lambda: forward(xs, h0, lstm_params), ValueError,
         r"params\['weight_hh'\] must have shape \(G\*H, H\) = \(4, 4\) for kind 'rnn'.*"
         r"got \(16, 4\); it looks like parameters for kind 'lstm'"),
        (lambda: forward(xs, h0, _replace(params, bias_ih=np.zeros(5))), ValueError,
         r"params\['bias_ih'\] must have shape \(G\*H,\) = \(4,\), got \(5,\)"),
        (lambda: forward(xs, h0, _replace(params, weight_ih=np.zeros((5, 3)))), ValueError,
         r"params\['weight_ih'\] must have shape \(G\*H, I\) = \(4, 3\), got \(5, 3\)"),
        (lambda: forward(xs, h0, _replace(params, bias_hh=params["bias_hh"].astype(np.float32))),
         TypeError, r"mixed dtypes.*params\['bias_hh'\]: float32"),
        (lambda: forward(xs, h0, _replace(params, weight_hh=np.full((4, 4), np.nan))),
         ValueError, r"params\['weight_hh'\] contains 16 NaN"),
        (lambda: forward(xs, h0, params, nonlinearity="softplus"), ValueError,
         r"nonlinearity must be one of \('tanh', 'relu', 'sigmoid', 'linear'\), got 'softplus'"),
        (lambda: nc.rnn_step(xs[0], h0[:1], params), ValueError,
         r"h must have shape \(B, H\) = \(2, 4\), got \(1, 4\)"),
        (lambda: nc.rnn_step(xs[0, :, :2], h0, params), ValueError,
         r"x must have shape \(B, I\) = \(2, 3\), got \(2, 2\)"),
        (lambda: nc.lstm_step(xs[0], h0, h0[:, :1], lstm_params), ValueError,
         r"c must have shape \(B, H\) = \(2, 4\), got \(2, 1\)"),
        (lambda: nc.lstm_forward(xs, h0, np.zeros((2, 5)), lstm_params), ValueError,
         r"c0 must have shape \(B, H\) = \(2, 4\), got \(2, 5\)"),
        (lambda: nc.gru_forward(xs, h0, params), ValueError, "for kind 'gru' .G = 3."),
        (lambda: nc.gru_step(xs[0], h0, lstm_params), ValueError,
         "for kind 'gru'.*looks like parameters for kind 'lstm'"),
        (lambda: nc.init_params("transformer", 3, 4, np.random.default_rng(0)), ValueError,
         r"kind must be one of \('rnn', 'lstm', 'gru'\), got 'transformer'"),
        (lambda: nc.init_params("rnn", 0, 4, np.random.default_rng(0)), ValueError,
         "input_size must be an integer >= 1, got 0"),
        (lambda: nc.init_params("rnn", 3, 4.0, np.random.default_rng(0)), TypeError,
         "hidden_size must be an integer"),
        (lambda: nc.init_params("rnn", 3, 4, 0), TypeError,
         "rng must be a numpy.random.Generator"),
        (lambda: nc.init_params("rnn", 3, 4, np.random.default_rng(0), dtype=np.int32),
         TypeError, "dtype must be np.float32 or np.float64"),
    ]


BAD_CASES = _bad_cases()


@pytest.mark.parametrize(("call", "error", "match"), BAD_CASES,
                         ids=[f"case{i}" for i in range(len(BAD_CASES))])
def test_bad_input_is_rejected_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("kind", KINDS)
def test_backward_rejects_bad_gradients_and_caches(kind):
    params, xs, h0 = _valid(kind)
    dhs = np.ones((5, 2, 4))
    if kind == "lstm":
        _, _, cache = nc.lstm_forward(xs, h0, None, params)
        backward = nc.lstm_backward
        _, _, step_cache = nc.lstm_step(xs[0], h0, h0, params)

        def step_backward(dh, cache):
            return nc.lstm_step_backward(dh, np.zeros((2, 4)), cache)
    else:
        forward = nc.gru_forward if kind == "gru" else nc.rnn_forward
        step = nc.gru_step if kind == "gru" else nc.rnn_step
        step_backward = nc.gru_step_backward if kind == "gru" else nc.rnn_step_backward
        backward = nc.gru_backward if kind == "gru" else nc.rnn_backward
        _, cache = forward(xs, h0, params)
        _, step_cache = step(xs[0], h0, params)
    with pytest.raises(ValueError, match=r"dhs must have shape \(T, B, H\) = \(5, 2, 4\), "
                                         r"got \(4, 2, 4\)"):
        backward(dhs[:4], cache)
    with pytest.raises(TypeError, match="dhs has dtype float32 but the parameters are float64"):
        backward(dhs.astype(np.float32), cache)
    bad = dhs.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="dhs contains 1 NaN or infinite"):
        backward(bad, cache)
    with pytest.raises(TypeError, match=f"cache must be the cache returned by {kind}_forward"):
        backward(dhs, step_cache)
    with pytest.raises(ValueError, match=r"dh_next must have shape \(B, H\) = \(2, 4\)"):
        step_backward(np.ones((2, 3)), step_cache)
    with pytest.raises(TypeError, match=f"cache must be the cache returned by {kind}_step"):
        step_backward(np.ones((2, 4)), cache)
