"""Gradient tools against exact math, torch autograd and torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from throughtime import numpy_cells as nc
from throughtime.gradients import (
    clip_by_norm,
    clip_by_value,
    hidden_gradient_norms,
    jacobian_product_norms,
    numeric_gradient,
    rel_error,
    rnn_jacobians,
)

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
               "linear": lambda a: a}


# --------------------------------------------------------------------------------------
# numeric_gradient
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 3, 2)])
def test_numeric_gradient_of_known_functions(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    original = x.copy()
    # d/dx sum(sin(x) x^2) = cos(x) x^2 + 2 x sin(x)
    grad = numeric_gradient(lambda v: np.sum(np.sin(v) * v**2), x)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    assert rel_error(grad, np.cos(x) * x**2 + 2 * x * np.sin(x)) <= 1e-7
    assert np.array_equal(x, original)  # restored bit for bit


def test_numeric_gradient_of_a_quadratic_form_through_a_closure():
    """f(w) = w^T A w read through a dict (as the cells read params): grad = (A + A^T) w."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    store = {"w": rng.normal(size=4)}
    grad = numeric_gradient(lambda _: store["w"] @ a @ store["w"], store["w"])
    assert rel_error(grad, (a + a.T) @ store["w"]) <= 1e-8
    # A quadratic has no third derivative: centred differences are exact up to rounding.
    assert np.max(np.abs(grad - (a + a.T) @ store["w"])) <= 1e-8


def test_numeric_gradient_restores_x_when_f_fails():
    x = np.arange(3.0)

    def failing(v):
        if v[1] != 1.0:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numeric_gradient(failing, x)
    assert np.array_equal(x, np.arange(3.0))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: numeric_gradient(np.sum, np.arange(3)), TypeError, "x must have dtype float32"),
        (lambda: numeric_gradient(np.sum, [1.0, 2.0]), TypeError, "x must be a numpy array"),
        (lambda: numeric_gradient(lambda v: v * 2, np.ones(3)), TypeError,
         "f must return a real scalar, got a numpy array of shape"),
        (lambda: numeric_gradient("sum", np.ones(3)), TypeError, "f must be a callable"),
        (lambda: numeric_gradient(np.sum, np.ones(3), eps=0), ValueError,
         "eps must be positive, got 0.0"),
        (lambda: numeric_gradient(np.sum, np.ones((0, 3))),
         ValueError, "x has an empty axis"),
    ],
)
def test_numeric_gradient_rejects_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numeric_gradient_rejects_read_only_arrays():
    x = np.ones(3)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="x must be writeable"):
        numeric_gradient(np.sum, x)


# --------------------------------------------------------------------------------------
# rel_error
# --------------------------------------------------------------------------------------


def test_rel_error_properties():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 10))
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(5), np.zeros(5)) == 0.0  # no 0/0
    assert rel_error(np.zeros(5), np.zeros(5), floor=0) == 0.0
    assert rel_error(a, b) == rel_error(b, a)  # symmetric
    assert 0.0 <= rel_error(a, b) <= 1.0
    assert rel_error(a, -a) == 1.0  # opposite signs: the largest error
    assert rel_error(a, 1e6 * a) == pytest.approx((1e6 - 1) / (1e6 + 1))
    # Scale invariant above the floor
    assert rel_error(1e3 * a, 1e3 * b) == pytest.approx(rel_error(a, b), rel=1e-12)
    # Written out: max |a - b| / max(|a| + |b|, floor) over the entries.
    expected = np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8))
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-15)
    # Below the floor, entries are compared in absolute terms.
    assert rel_error(np.array([1e-17]), np.array([0.0])) == pytest.approx(1e-9)
    assert rel_error(np.array([1e-17]), np.array([0.0]), floor=0) == 1.0
    assert rel_error(3.0, 1.0) == pytest.approx(0.5)


def test_rel_error_accepts_dicts_and_tensors():
    a = {"w": np.array([1.0, 2.0]), "b": np.array([3.0])}
    b = {"w": np.array([1.0, 2.0]), "b": np.array([1.0])}
    assert rel_error(a, b) == pytest.approx(0.5)
    assert rel_error(torch.tensor([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="a and b must be dicts with the same keys"):
        rel_error(a, {"w": a["w"]})
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got a \(2,\) and "
                                         r"b \(3,\)"):
        rel_error(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="floor must be >= 0"):
        rel_error(1.0, 1.0, floor=-1)
    with pytest.raises(TypeError, match="a must hold real numbers"):
        rel_error("abc", 1.0)


# --------------------------------------------------------------------------------------
# Clipping against torch.nn.utils
# --------------------------------------------------------------------------------------


def _random_grads(rng, dtype=np.float64, scale=3.0):
    shapes = [(4, 3), (4,), (2, 2, 2), (1,)]
    return [(scale * rng.normal(size=s)).astype(dtype) for s in shapes]


def _torch_clip_norm(grads, max_norm, norm_type):
    params = [torch.nn.Parameter(torch.from_numpy(g.copy())) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    return [p.grad.numpy() for p in params], float(total)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, float("inf")])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_by_norm_equals_torch(norm_type, max_norm, dtype):
    rng = np.random.default_rng(3)
    grads = _random_grads(rng, dtype)
    copies = [g.copy() for g in grads]
    clipped, total = clip_by_norm(grads, max_norm, norm_type=norm_type)
    expected, expected_total = _torch_clip_norm(grads, max_norm, norm_type)
    tolerance = 1e-6 if dtype == np.float32 else 1e-13
    assert total == pytest.approx(expected_total, rel=tolerance)
    assert isinstance(clipped, list) and len(clipped) == len(grads)
    for ours, theirs in zip(clipped, expected, strict=True):
        assert ours.dtype == dtype
        assert rel_error(ours, theirs) <= tolerance
    assert all(np.array_equal(g, c) for g, c in zip(grads, copies, strict=True))  # untouched
    # The clipped global norm is at most max_norm, and the direction is kept.
    norms = [np.linalg.norm(c.ravel().astype(np.float64), ord=norm_type) for c in clipped]
    assert np.linalg.norm(norms, ord=norm_type) <= max_norm * (1 + 1e-6) or max_norm == 1e6
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    flat_clipped = np.concatenate([c.ravel() for c in clipped]).astype(np.float64)
    cosine = flat @ flat_clipped / (np.linalg.norm(flat) * np.linalg.norm(flat_clipped))
    assert cosine == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("clip_value", [0.5, 2.0, 100.0])
def test_clip_by_value_equals_torch(clip_value):
    rng = np.random.default_rng(4)
    grads = _random_grads(rng)
    copies = [g.copy() for g in grads]
    params = [torch.nn.Parameter(torch.from_numpy(g.copy())) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_(params, clip_value)
    clipped, total = clip_by_value(grads, clip_value)
    for ours, p in zip(clipped, params, strict=True):
        assert np.array_equal(ours, p.grad.numpy())
    assert all(np.array_equal(g, c) for g, c in zip(grads, copies, strict=True))  # untouched
    _, expected_total = _torch_clip_norm(grads, 1.0, 2.0)
    assert total == pytest.approx(expected_total, rel=1e-13)


def test_the_three_four_example():
    """(3, 4) with threshold 1: (0.6, 0.8) by norm (direction kept), (1, 1) by value."""
    by_norm, norm = clip_by_norm([np.array([3.0, 4.0])], 1.0)
    by_value, _ = clip_by_value([np.array([3.0, 4.0])], 1.0)
    assert norm == 5.0
    # torch's rule: 1 / (5 + 1e-6), so 0.6 up to one part in 5 million.
    np.testing.assert_allclose(by_norm[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(by_value[0], [1.0, 1.0])
    theirs, _ = _torch_clip_norm([np.array([3.0, 4.0])], 1.0, 2.0)
    np.testing.assert_array_equal(by_norm[0], theirs[0])


def test_clipping_keeps_the_container_and_accepts_tensors():
    rng = np.random.default_rng(5)
    params = nc.init_params("lstm", 3, 4, rng)
    grads = {name: 10 * value for name, value in params.items()}
    clipped, total = clip_by_norm(grads, 1.0)
    assert list(clipped) == list(grads)
    expected, expected_total = _torch_clip_norm(list(grads.values()), 1.0, 2.0)
    assert total == pytest.approx(expected_total, rel=1e-13)
    for ours, theirs in zip(clipped.values(), expected, strict=True):
        assert rel_error(ours, theirs) <= 1e-13
    as_tuple, _ = clip_by_value(tuple(grads.values()), 0.1)
    assert isinstance(as_tuple, tuple)
    single, single_total = clip_by_norm(grads["weight_hh"], 1.0)
    assert isinstance(single, np.ndarray)
    assert single_total == pytest.approx(np.linalg.norm(grads["weight_hh"]))

    tensors = [torch.from_numpy(g) for g in grads.values()]
    before = [t.clone() for t in tensors]
    clipped_tensors, tensor_total = clip_by_norm(tensors, 1.0)
    assert all(isinstance(t, torch.Tensor) for t in clipped_tensors)
    assert tensor_total == pytest.approx(expected_total, rel=1e-13)
    for ours, theirs in zip(clipped_tensors, expected, strict=True):
        assert rel_error(ours.numpy(), theirs) <= 1e-13
    assert all(torch.equal(t, b) for t, b in zip(tensors, before, strict=True))
    assert clip_by_norm([], 1.0) == ([], 0.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: clip_by_norm([np.ones(2)], 0.0), ValueError, "max_norm must be positive"),
        (lambda: clip_by_norm([np.ones(2)], "1"), TypeError, "max_norm must be a real number"),
        (lambda: clip_by_norm([np.ones(2)], 1.0, norm_type=-1), ValueError,
         "norm_type must be > 0 or inf, got -1.0"),
        (lambda: clip_by_norm([np.ones(2)], 1.0, norm_type="fro"), TypeError,
         "norm_type must be a number or inf"),
        (lambda: clip_by_norm([np.ones(2), np.arange(2)], 1.0), TypeError,
         r"grads\[1\] must have dtype float32 or float64"),
        (lambda: clip_by_norm({"w": np.ones(2), "b": [1.0]}, 1.0), TypeError,
         r"grads\['b'\] must be a numpy array"),
        (lambda: clip_by_norm([np.ones(2), np.ones(2, np.float32)], 1.0), TypeError,
         r"mixed dtypes.*grads\[1\]: float32"),
        (lambda: clip_by_value([np.ones(2)], -1.0), ValueError, "clip_value must be positive"),
    ],
)
def test_clipping_rejects_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------------------
# Gradient norms through time against autograd
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn-tanh", "rnn-relu", "rnn-sigmoid", "rnn-linear",
                                  "lstm", "gru"])
def test_hidden_gradient_norms_equal_autograd(kind):
    kind, _, nonlinearity = kind.partition("-")
    nonlinearity = nonlinearity or "tanh"
    rng = np.random.default_rng(6)
    steps, batch, inputs, hidden = 12, 2, 3, 5
    params = nc.init_params(kind, inputs, hidden, rng)
    params["weight_hh"] *= 2.0  # a little more interesting than the default scale
    xs = rng.normal(size=(steps, batch, inputs))
    h0 = rng.normal(size=(batch, hidden))
    dh_last = rng.normal(size=(batch, hidden))

    # Autograd: make h0 a leaf so the graph exists, loss = sum(dh_last * h_T).
    h0_leaf = torch.tensor(h0, requires_grad=True)
    weights = {k: torch.from_numpy(v) for k, v in params.items()}
    h, c, hs, cs = h0_leaf, torch.zeros(batch, hidden, dtype=torch.float64), [], []
    for t in range(steps):
        a = torch.from_numpy(xs[t]) @ weights["weight_ih"].T + weights["bias_ih"]
        b = h @ weights["weight_hh"].T + weights["bias_hh"]
        if kind == "rnn":
            h = ACTIVATIONS[nonlinearity](a + b)
        elif kind == "lstm":
            i, f, g, o = (a + b).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            c.retain_grad()
            cs.append(c)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            (a_r, a_z, a_n), (b_r, b_z, b_n) = a.chunk(3, dim=1), b.chunk(3, dim=1)
            r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
            h = (1 - z) * torch.tanh(a_n + r * b_n) + z * h
        h.retain_grad()
        hs.append(h)
    (h * torch.from_numpy(dh_last)).sum().backward()
    expected_h = np.array([np.linalg.norm(v.grad.numpy()) for v in hs])

    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    norms = hidden_gradient_norms(kind, params, xs, h0, dh_last=dh_last, **extra)
    assert norms.shape == (steps,)
    assert rel_error(norms, expected_h) <= 1e-10
    assert norms[-1] == pytest.approx(np.linalg.norm(dh_last))
    if kind == "lstm":
        expected_c = np.array([np.linalg.norm(v.grad.numpy()) for v in cs])
        norms_c = hidden_gradient_norms(kind, params, xs, h0, dh_last=dh_last, state="c")
        assert rel_error(norms_c, expected_c) <= 1e-10


def test_hidden_gradient_norms_default_is_ones_and_zero_state():
    rng = np.random.default_rng(8)
    params = nc.init_params("gru", 2, 3, rng)
    xs = rng.normal(size=(4, 1, 2))
    default = hidden_gradient_norms("gru", params, xs)
    explicit = hidden_gradient_norms("gru", params, xs, np.zeros((1, 3)), dh_last=np.ones((1, 3)))
    assert np.array_equal(default, explicit)
    assert default[-1] == pytest.approx(np.sqrt(3))


def test_linear_rnn_gradients_vanish_with_a_contracting_matrix():
    """With f linear, dL/dh_t = (W_hh^T)^(T-t) dL/dh_T: with an orthogonal W_hh scaled by
    rho, every step multiplies the norm by exactly rho (SCIENCE: the matrix, not the
    activation)."""
    rng = np.random.default_rng(9)
    hidden, steps = 4, 10
    q, _ = np.linalg.qr(rng.normal(size=(hidden, hidden)))
    params = nc.init_params("rnn", 2, hidden, rng)
    for rho in (0.5, 1.0, 1.5):
        params["weight_hh"] = rho * q
        norms = hidden_gradient_norms("rnn", params, rng.normal(size=(steps, 1, 2)),
                                      nonlinearity="linear")
        distance = np.arange(steps)[::-1]
        assert rel_error(norms, np.sqrt(hidden) * rho**distance) <= 1e-12


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "cnn"}, ValueError, "kind must be one of"),
        ({"kind": "gru", "nonlinearity": "relu"}, ValueError,
         "nonlinearity applies to kind='rnn' only"),
        ({"kind": "rnn", "state": "c"}, ValueError, "c0 and state='c' apply to kind='lstm'"),
        ({"kind": "lstm", "state": "x"}, ValueError, r"state must be one of \('h', 'c'\)"),
        ({"kind": "rnn", "dh_last": np.ones((2, 3))}, ValueError,
         r"dh_last must have shape \(B, H\) = \(1, 3\), got \(2, 3\)"),
        ({"kind": "rnn", "nonlinearity": "gelu"}, ValueError, "nonlinearity must be one of"),
    ],
)
def test_hidden_gradient_norms_rejects_bad_input(kwargs, error, match):
    rng = np.random.default_rng(0)
    kind = kwargs.pop("kind")
    params = nc.init_params(kind if kind in nc.GATES else "rnn", 2, 3, rng)
    with pytest.raises(error, match=match):
        hidden_gradient_norms(kind, params, rng.normal(size=(4, 1, 2)), **kwargs)


# --------------------------------------------------------------------------------------
# Recurrent Jacobians
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid", "linear"])
def test_rnn_jacobians_equal_autograd(nonlinearity):
    rng = np.random.default_rng(10)
    steps, batch, inputs, hidden = 5, 2, 3, 4
    params = nc.init_params("rnn", inputs, hidden, rng)
    params["weight_hh"] *= 3
    xs, h0 = rng.normal(size=(steps, batch, inputs)), rng.normal(size=(batch, hidden))
    weights = {k: torch.from_numpy(v) for k, v in params.items()}
    f = ACTIVATIONS[nonlinearity]

    def step(t, h):
        return f(torch.from_numpy(xs[t]) @ weights["weight_ih"].T + weights["bias_ih"]
                 + h @ weights["weight_hh"].T + weights["bias_hh"])

    jacobians = rnn_jacobians(params, xs, h0, nonlinearity)
    assert jacobians.shape == (steps, batch, hidden, hidden)
    h = torch.from_numpy(h0)
    for t in range(steps):
        full = torch.autograd.functional.jacobian(lambda v, t=t: step(t, v), h).numpy()
        # full[b, i, c, j] = d h_t[b, i] / d h_{t-1}[c, j]; examples are independent.
        expected = np.stack([full[b, :, b, :] for b in range(batch)])
        assert rel_error(jacobians[t], expected) <= 1e-12
        h = step(t, h)

    # s_k = || dh_T / dh_{T-k} ||_2 by autograd through k steps
    norms = jacobian_product_norms(params, xs, h0, nonlinearity)
    assert norms.shape == (steps + 1, batch)
    assert np.all(norms[0] == 1.0)
    states = [torch.from_numpy(h0)]
    for t in range(steps):
        states.append(step(t, states[-1]))
    for k in range(1, steps + 1):
        start = steps - k

        def run(v, start=start):
            for t in range(start, steps):
                v = step(t, v)
            return v

        full = torch.autograd.functional.jacobian(run, states[start]).numpy()
        for b in range(batch):
            expected = np.linalg.norm(full[b, :, b, :], ord=2)
            assert norms[k, b] == pytest.approx(expected, rel=1e-10, abs=1e-300)


def test_jacobian_product_norms_respect_pascanus_bound():
    """s_k <= (gamma * sigma_max(W_hh))^k, gamma = 1 for tanh and 1/4 for the sigmoid."""
    rng = np.random.default_rng(11)
    params = nc.init_params("rnn", 2, 6, rng)
    params["weight_hh"] = rng.normal(size=(6, 6))
    sigma_max = np.linalg.norm(params["weight_hh"], ord=2)
    xs = rng.normal(size=(15, 3, 2))
    k = np.arange(16)[:, None]
    for nonlinearity, gamma in (("tanh", 1.0), ("sigmoid", 0.25)):
        norms = jacobian_product_norms(params, xs, nonlinearity=nonlinearity)
        assert np.all(norms <= (gamma * sigma_max) ** k * (1 + 1e-12))


def test_jacobians_reject_bad_input():
    rng = np.random.default_rng(0)
    params = nc.init_params("lstm", 2, 3, rng)
    with pytest.raises(ValueError, match="for kind 'rnn'"):
        rnn_jacobians(params, rng.normal(size=(3, 1, 2)))
    rnn_params = nc.init_params("rnn", 2, 3, rng)
    with pytest.raises(ValueError, match=r"xs must have shape \(T, B, I\) = \(3, 1, 2\)"):
        jacobian_product_norms(rnn_params, rng.normal(size=(3, 1, 5)))
