"""Linear recurrences: every scan against the loop, gradients, minGRU and minLSTM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from throughtime import linear_recurrence as lr


def _problem(shape, seed=0, dtype=np.float64, positive=True):
    rng = np.random.default_rng(seed)
    decay = rng.uniform(0.05, 0.99, size=shape) if positive else rng.uniform(-1, 1, size=shape)
    increment = rng.normal(size=shape)
    h0 = rng.normal(size=shape[1:])
    return decay.astype(dtype), increment.astype(dtype), h0.astype(dtype)


def _loop(decay, increment, h0):
    """The recurrence written out here, element by element, independently of the library."""
    states = np.zeros_like(increment)
    flat_decay = decay.reshape(decay.shape[0], -1)
    flat_increment = increment.reshape(decay.shape[0], -1)
    flat_states = states.reshape(decay.shape[0], -1)
    for j in range(flat_decay.shape[1]):
        h = h0.reshape(-1)[j]
        for t in range(decay.shape[0]):
            h = flat_decay[t, j] * h + flat_increment[t, j]
            flat_states[t, j] = h
    return states


SHAPES = [(1, 1), (1, 3), (2, 1), (7, 2, 3), (8, 1, 4), (9, 3, 2), (16, 2), (33, 2, 2),
          (100, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_scan_equals_the_loop_in_float64(shape):
    decay, increment, h0 = _problem(shape, seed=len(shape) + shape[0])
    expected = _loop(decay, increment, h0)
    np.testing.assert_allclose(lr.scan_sequential(decay, increment, h0), expected,
                               rtol=0, atol=1e-14)
    for scan in (lr.scan_hillis_steele, lr.scan_blelloch, lr.scan_cumulative_product):
        np.testing.assert_allclose(scan(decay, increment, h0), expected, rtol=1e-10,
                                   atol=1e-12, err_msg=scan.__name__)
    np.testing.assert_allclose(lr.scan_log_space(np.log(decay), increment, h0), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_scans_with_decays_of_either_sign_and_zero_h0(seed):
    # Hillis-Steele and Blelloch need only associativity: any real decay works.
    rng = np.random.default_rng(100 + seed)
    length = int(rng.integers(1, 40))
    decay, increment, _ = _problem((length, 3), seed=seed, positive=False)
    expected = _loop(decay, increment, np.zeros(3))
    for scan in (lr.scan_sequential, lr.scan_hillis_steele, lr.scan_blelloch):
        np.testing.assert_allclose(scan(decay, increment), expected, rtol=1e-10, atol=1e-12)


def test_scans_do_not_modify_their_inputs():
    decay, increment, h0 = _problem((10, 2), seed=3)
    copies = decay.copy(), increment.copy(), h0.copy()
    for scan in (lr.scan_sequential, lr.scan_hillis_steele, lr.scan_blelloch):
        scan(decay, increment, h0)
    for before, after in zip(copies, (decay, increment, h0), strict=True):
        np.testing.assert_array_equal(before, after)


def test_cumulative_product_fails_on_long_sequences_and_log_space_does_not():
    decay = np.full((3000, 1), 0.5)
    increment = np.ones((3000, 1))
    # h_t -> 2, the fixed point of h = h / 2 + 1.
    assert np.isnan(lr.scan_cumulative_product(decay, increment)[-1, 0])
    np.testing.assert_allclose(lr.scan_log_space(np.log(decay), increment)[-1], [2.0])
    np.testing.assert_allclose(lr.scan_hillis_steele(decay, increment)[-1], [2.0])


def test_combine_is_composition_and_associative():
    rng = np.random.default_rng(0)
    maps = [(rng.normal(size=4), rng.normal(size=4)) for _ in range(3)]
    h = rng.normal(size=4)
    decay, increment = lr.combine(*maps[0], *maps[1])
    step = maps[1][0] * (maps[0][0] * h + maps[0][1]) + maps[1][1]
    np.testing.assert_allclose(decay * h + increment, step, rtol=1e-14)
    left = lr.combine(*lr.combine(*maps[0], *maps[1]), *maps[2])
    right = lr.combine(*maps[0], *lr.combine(*maps[1], *maps[2]))
    np.testing.assert_allclose(left, right, rtol=1e-13)
    swapped = lr.combine(*maps[1], *maps[0])
    assert not np.allclose(swapped[1], increment), "the order of the two maps matters"


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8, 13, 64, 100])
def test_scan_cost_agrees_with_the_schedule(length):
    for algorithm in lr.ALGORITHMS:
        cost = lr.scan_cost(length, algorithm)
        schedule = lr.scan_schedule(length, algorithm)
        assert len(schedule) == cost.depth, (algorithm, length)
    rounds = int(np.ceil(np.log2(length))) if length > 1 else 0
    assert lr.scan_cost(length, "sequential") == (length, length)
    assert lr.scan_cost(length, "hillis_steele").depth == rounds
    # Hillis-Steele: round j combines the positions t >= 2^j.
    assert lr.scan_cost(length, "hillis_steele").work == sum(
        max(length - 2 ** j, 0) for j in range(rounds))
    hs = lr.scan_schedule(length, "hillis_steele")
    assert sum(len(r) for r in hs) == lr.scan_cost(length, "hillis_steele").work
    # Blelloch: work linear in T (at most about 3 T), depth 2 ceil(log2 T) + 1.
    blelloch = lr.scan_cost(length, "blelloch")
    assert blelloch.depth == 2 * rounds + 1
    assert blelloch.work <= 3 * 2 ** rounds


def test_hillis_steele_schedule_reaches_every_prefix():
    # Following the edges, position t must end up having read every earlier position.
    length = 13
    reach = [{t} for t in range(length)]
    for round_ in lr.scan_schedule(length, "hillis_steele"):
        previous = [set(r) for r in reach]
        for source, target in round_:
            reach[target] |= previous[source]
    assert all(reach[t] == set(range(t + 1)) for t in range(length))


def test_scan_backward_against_autograd_through_the_loop():
    decay, increment, h0 = _problem((11, 2, 3), seed=5)
    grad_states = np.random.default_rng(6).normal(size=decay.shape)
    tensors = [torch.tensor(a, requires_grad=True) for a in (decay, increment, h0)]
    h, states = tensors[2], []
    for t in range(decay.shape[0]):
        h = tensors[0][t] * h + tensors[1][t]
        states.append(h)
    (torch.stack(states) * torch.tensor(grad_states)).sum().backward()
    forward = lr.scan_sequential(decay, increment, h0)
    got = lr.scan_backward(decay, forward, grad_states, h0)
    for mine, tensor in zip(got, tensors, strict=True):
        np.testing.assert_allclose(mine, tensor.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (6, 2), (9, 1, 3), (16, 2, 2)])
def test_linear_scan_forward_and_gradient_against_autograd(algorithm, shape):
    decay, increment, h0 = (torch.tensor(a, requires_grad=True)
                            for a in _problem(shape, seed=shape[0]))
    weights = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    states = lr.linear_scan(decay, increment, h0, algorithm=algorithm)
    grads = torch.autograd.grad((states * weights).sum(), (decay, increment, h0))
    h, reference = h0, []
    for t in range(shape[0]):
        h = decay[t] * h + increment[t]
        reference.append(h)
    reference = torch.stack(reference)
    expected = torch.autograd.grad((reference * weights).sum(), (decay, increment, h0))
    torch.testing.assert_close(states, reference, rtol=1e-12, atol=1e-13)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("algorithm", ["sequential", "hillis_steele"])
def test_linear_scan_gradcheck(algorithm):
    decay, increment, h0 = (torch.tensor(a, requires_grad=True)
                            for a in _problem((7, 2, 2), seed=9))
    assert torch.autograd.gradcheck(
        lambda d, u, h: lr.linear_scan(d, u, h, algorithm=algorithm), (decay, increment, h0))


def test_log_space_scan_forward_and_gradcheck():
    decay, increment, h0 = _problem((9, 3), seed=11)
    log_decay = torch.tensor(np.log(decay), requires_grad=True)
    u, h = torch.tensor(increment, requires_grad=True), torch.tensor(h0, requires_grad=True)
    np.testing.assert_allclose(lr.log_space_scan(log_decay, u, h).detach().numpy(),
                               _loop(decay, increment, h0), rtol=1e-10, atol=1e-12)
    # Increments away from zero: the split into positive and negative parts has a kink at 0.
    u_away = torch.tensor(np.sign(increment) * (np.abs(increment) + 0.5), requires_grad=True)
    assert torch.autograd.gradcheck(lr.log_space_scan, (log_decay, u_away, h))


def test_torch_scans_match_numpy():
    decay, increment, h0 = _problem((20, 4), seed=2)
    expected = lr.scan_sequential(decay, increment, h0)
    for algorithm in lr.TORCH_ALGORITHMS:
        got = lr.linear_scan(torch.tensor(decay), torch.tensor(increment), torch.tensor(h0),
                             algorithm=algorithm)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------------------
# minGRU and minLSTM
# --------------------------------------------------------------------------------------


def _params(kind, inputs, hidden, seed=0):
    rng = np.random.default_rng(seed)
    gates = lr.MIN_GATES[kind]
    return {"weight_ih": rng.normal(size=(gates * hidden, inputs)),
            "bias_ih": rng.normal(size=gates * hidden)}


@pytest.mark.parametrize("kind", lr.MIN_KINDS)
def test_min_forward_every_method_equals_the_written_out_equations(kind):
    xs = np.random.default_rng(1).normal(size=(12, 3, 4))
    h0 = np.random.default_rng(2).normal(size=(3, 5))
    params = _params(kind, 4, 5)
    w, b = params["weight_ih"], params["bias_ih"]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, expected = h0, []
    for x in xs:
        pre = x @ w.T + b
        if kind == "minGRU":
            z, n = sig(pre[:, :5]), pre[:, 5:]
            h = z * h + (1 - z) * n
        else:
            i, f, g = sig(pre[:, :5]), sig(pre[:, 5:10]), pre[:, 10:]
            h = f / (f + i) * h + i / (f + i) * g
        expected.append(h)
    for method in (*lr.ALGORITHMS, "log_space"):
        np.testing.assert_allclose(lr.min_forward(kind, xs, h0, params, method=method),
                                   np.array(expected), rtol=1e-10, atol=1e-12,
                                   err_msg=method)


def test_min_gru_with_tanh_candidate_is_a_gru_without_recurrent_weights():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, dtype=torch.float64)
    with torch.no_grad():
        gru.weight_hh_l0.zero_()
        gru.bias_hh_l0.zero_()
    layer = lr.MinGRU(3, 4, tanh_candidate=True, dtype=torch.float64)
    with torch.no_grad():  # PyTorch's blocks r, z, n; the minGRU keeps z, n
        layer.weight_ih.copy_(gru.weight_ih_l0[4:])
        layer.bias_ih.copy_(gru.bias_ih_l0[4:])
    xs = torch.randn(9, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(xs, h0)[0], gru(xs, h0)[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cls", [lr.MinGRU, lr.MinLSTM])
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (5, 1), (17, 2)])
def test_module_methods_agree_with_each_other_and_the_step(cls, shape):
    length, batch = shape
    torch.manual_seed(3)
    xs = torch.randn(length, batch, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, batch, 4, dtype=torch.float64)
    reference = cls(3, 4, method="autograd_loop", dtype=torch.float64)
    outputs, h_n = reference(xs, h0)
    expected_grad = torch.autograd.grad(outputs.square().sum(), xs)[0]
    for method in ("sequential", "hillis_steele", "log_space"):
        layer = cls(3, 4, method=method, dtype=torch.float64)
        layer.load_state_dict(reference.state_dict())
        got, got_n = layer(xs, h0)
        torch.testing.assert_close(got, outputs, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got_n, h_n)
        grad = torch.autograd.grad(got.square().sum(), xs)[0]
        torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-11)
    h = h0[0]
    with torch.no_grad():
        for t in range(length):
            h = reference.step(xs[t], h)
    torch.testing.assert_close(h, h_n[0].detach())


@pytest.mark.parametrize("cls", [lr.MinGRU, lr.MinLSTM])
def test_module_gradcheck_parameters(cls):
    torch.manual_seed(4)
    layer = cls(2, 3, method="hillis_steele", dtype=torch.float64)
    xs = torch.randn(6, 2, 2, dtype=torch.float64)

    def f(weight, bias):
        pre = nn.functional.linear(xs, weight, bias)
        decay, increment = lr.min_decay_increment(layer.kind, pre)
        return lr.linear_scan(decay, increment, algorithm="hillis_steele")

    assert torch.autograd.gradcheck(f, (layer.weight_ih.detach().clone().requires_grad_(),
                                        layer.bias_ih.detach().clone().requires_grad_()))


def test_parameter_count_matches_the_module():
    for cls, kind in ((lr.MinGRU, "minGRU"), (lr.MinLSTM, "minLSTM")):
        for inputs, hidden in ((1, 1), (3, 7), (25, 52)):
            module = cls(inputs, hidden)
            assert sum(p.numel() for p in module.parameters()) == \
                lr.min_parameter_count(kind, inputs, hidden)
            # Two layers: the second reads H inputs.
            second = cls(hidden, hidden)
            assert lr.min_parameter_count(kind, inputs, hidden, num_layers=2) == sum(
                p.numel() for m in (module, second) for p in m.parameters())


def test_min_lstm_state_stays_between_its_inputs():
    # The normalised gates make h_t a weighted average of h_0 and the candidates g_s.
    torch.manual_seed(0)
    layer = lr.MinLSTM(2, 3, dtype=torch.float64)
    xs = torch.randn(50, 4, 2, dtype=torch.float64)
    with torch.no_grad():
        states, _ = layer(xs)
        g = nn.functional.linear(xs, layer.weight_ih, layer.bias_ih)[..., 6:]
    assert (states <= g.amax(dim=0).clamp(min=0) + 1e-12).all()
    assert (states >= g.amin(dim=0).clamp(max=0) - 1e-12).all()


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    decay, increment, _ = _problem((4, 2))
    with pytest.raises(ValueError, match="increment"):
        lr.scan_sequential(decay, increment[:3])
    with pytest.raises(ValueError, match="h0"):
        lr.scan_hillis_steele(decay, increment, np.zeros(3))
    with pytest.raises((ValueError, TypeError), match="decay"):
        lr.scan_blelloch(np.float64(1.0), increment)
    with pytest.raises((ValueError, TypeError), match="log_decay"):
        lr.scan_log_space("not an array", increment)
    with pytest.raises(ValueError, match="length"):
        lr.scan_cost(0, "sequential")
    with pytest.raises(ValueError, match="algorithm"):
        lr.scan_cost(4, "bubble")
    with pytest.raises(ValueError, match="algorithm"):
        lr.linear_scan(torch.ones(3, 2), torch.ones(3, 2), algorithm="blelloch")
    with pytest.raises(TypeError, match="decay"):
        lr.linear_scan(np.ones((3, 2)), torch.ones(3, 2))
    with pytest.raises(ValueError, match="increment"):
        lr.linear_scan(torch.ones(3, 2), torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="h0"):
        lr.linear_scan(torch.ones(3, 2), torch.ones(3, 2), torch.ones(3))
    with pytest.raises(ValueError, match="kind"):
        lr.min_gates("minRNN", np.ones((2, 1, 1)), _params("minGRU", 1, 1))
    with pytest.raises(ValueError, match="xs"):
        lr.min_gates("minGRU", np.ones((2, 1, 3)), _params("minGRU", 2, 1))
    with pytest.raises(ValueError, match="params"):
        lr.min_gates("minGRU", np.ones((2, 1, 1)), {"weight_ih": np.ones((2, 1))})
    with pytest.raises(ValueError, match="method"):
        lr.MinGRU(2, 3, method="magic")
    with pytest.raises(ValueError, match="hidden_size"):
        lr.MinLSTM(2, 0)
    with pytest.raises(ValueError, match="tanh_candidate"):
        lr.MinLSTM(2, 3, tanh_candidate=True)
    layer = lr.MinGRU(2, 3)
    with pytest.raises(ValueError, match="input"):
        layer(torch.ones(4, 2, 5))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.ones(4, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="h0"):
        layer(torch.ones(4, 2, 2), torch.ones(2, 3))


def test_log_space_scan_gradient_when_one_sign_is_absent():
    # Every increment and h_0 negative: the positive part is empty (log 0 throughout).
    decay, increment, h0 = _problem((6, 2), seed=12)
    increment, h0 = -np.abs(increment) - 0.1, -np.abs(h0) - 0.1
    tensors = [torch.tensor(a, requires_grad=True) for a in (np.log(decay), increment, h0)]
    lr.log_space_scan(*tensors).sum().backward()
    d, u, h = (torch.tensor(a, requires_grad=True) for a in (decay, increment, h0))
    state, total = h, 0
    for t in range(6):
        state = d[t] * state + u[t]
        total = total + state.sum()
    total.backward()
    torch.testing.assert_close(tensors[0].grad, d.grad * d.detach())  # d/dlog lambda
    torch.testing.assert_close(tensors[1].grad, u.grad)
    torch.testing.assert_close(tensors[2].grad, h.grad)
