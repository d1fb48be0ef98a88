"""torch_cells beyond first derivatives: higher orders, vmap, torch.func, forward mode.

The fast layers' backward is a hand-derived BPTT written with in-place operations; when a
graph of the gradient is asked for, or the gradients are batched by vmap, it
differentiates a recomputation of the forward pass instead. These tests check every such
use against ``torch.nn`` (float64, same weights), against finite differences
(``gradcheck``, ``gradgradcheck`` with their batched checks), and that the hand-derived
path is still the one that ordinary training takes.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as forward_ad
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from throughtime import torch_bptt
from throughtime import torch_cells as tc

DTYPE = torch.float64
TOLERANCE = 1e-9

# name: torch.nn class, our class, constructor arguments
LAYERS = {
    "rnn_tanh": (nn.RNN, tc.RNN, {}),
    "rnn_relu": (nn.RNN, tc.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, tc.LSTM, {}),
    "lstm_projected": (nn.LSTM, tc.LSTM, {"proj_size": 2}),
    "gru": (nn.GRU, tc.GRU, {}),
}
STACKED = {"num_layers": 2, "bidirectional": True}


def make_layers(kind: str, input_size: int = 2, hidden_size: int = 3, seed: int = 0,
                **arguments) -> tuple[nn.Module, nn.Module]:
    reference_class, our_class, extra = LAYERS[kind]
    torch.manual_seed(seed)
    reference = reference_class(input_size, hidden_size, dtype=DTYPE, **(extra | arguments))
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.uniform_(-1, 1)
    ours = our_class(input_size, hidden_size, dtype=DTYPE, **(extra | arguments))
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def flat_outputs(module: nn.Module, x: torch.Tensor, *state: torch.Tensor
                 ) -> tuple[torch.Tensor, ...]:
    if state:
        output, final = module(x, state[0] if len(state) == 1 else tuple(state))
    else:
        output, final = module(x)
    return (output, *(final if isinstance(final, tuple) else (final,)))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300)).item()


def assert_close(actual, expected, what: str, tolerance: float = TOLERANCE) -> None:
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        error = relative_error(a, e)
        assert error <= tolerance, f"{what} #{index}: relative error {error:.1e}"


def initial_state(kind: str, layers: int, batch: int, hidden: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    h_size = LAYERS[kind][2].get("proj_size", hidden)
    h = torch.randn(layers, batch, h_size, dtype=DTYPE, generator=generator)
    if "lstm" not in kind:
        return (h.requires_grad_(),)
    c = torch.randn(layers, batch, hidden, dtype=DTYPE, generator=generator)
    return h.requires_grad_(), c.requires_grad_()


# --------------------------------------------------------------------------------------
# Finite differences: gradcheck and gradgradcheck, with their vmap (batched) checks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
def test_gradcheck_and_gradgradcheck_with_batched_checks(kind):
    # Small sizes, and fast_mode (random projections of the Jacobians), keep it quick.
    _, layer = make_layers(kind, 1, 3, **STACKED, seed=2)
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(2, 2, 1, dtype=DTYPE, requires_grad=True)
    state = initial_state(kind, 4, 2, 3)

    def run(x, *rest):
        states, weights = rest[: len(state)], rest[len(state):]
        return torch.func.functional_call(layer, dict(zip(names, weights, strict=True)),
                                          (x, states[0] if len(states) == 1 else states))

    def flat(*arguments):
        output, final = run(*arguments)
        return (output, *(final if isinstance(final, tuple) else (final,)))

    weights = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    inputs = (x, *state, *weights)
    assert gradcheck(flat, inputs, check_batched_grad=True, fast_mode=True)
    assert gradgradcheck(flat, inputs, check_batched_grad=True, fast_mode=True)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cell_gradgradcheck(kind):
    our_class = {"rnn_tanh": tc.RNNCell, "lstm": tc.LSTMCell, "gru": tc.GRUCell}[kind]
    torch.manual_seed(3)
    cell = our_class(2, 3, dtype=DTYPE)
    x = torch.randn(2, 2, dtype=DTYPE, requires_grad=True)
    assert gradgradcheck(lambda x: cell(x), (x,), check_batched_grad=True, fast_mode=True)


# --------------------------------------------------------------------------------------
# Second derivatives equal torch.nn's (never zeros)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("arguments", [{}, STACKED, {"batch_first": True}],
                         ids=["one_layer", "stacked_bidirectional", "batch_first"])
def test_gradient_penalty_equals_torch(kind, arguments):
    # The gradient of a loss built from a gradient (a gradient penalty, as in WGAN-GP).
    reference, ours = make_layers(kind, **arguments, seed=4)
    x = torch.randn(5, 3, 2, dtype=DTYPE, requires_grad=True)

    def penalty_gradients(module: nn.Module) -> tuple[torch.Tensor, ...]:
        outputs = flat_outputs(module, x)
        loss = sum((o.sin()).sum() for o in outputs)
        (gradient,) = torch.autograd.grad(loss, x, create_graph=True)
        penalty = gradient.pow(2).sum()
        return torch.autograd.grad(penalty, [x, *module.parameters()])

    expected, actual = penalty_gradients(reference), penalty_gradients(ours)
    assert any(e.abs().max() > 1e-3 for e in expected), "a test needs non-zero derivatives"
    assert_close(actual, expected, "second derivative")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_hessian_equals_torch(kind):
    reference, ours = make_layers(kind, seed=5)
    x = torch.randn(4, 2, 2, dtype=DTYPE)
    weight = reference.weight_hh_l0.detach()

    def loss(module: nn.Module):
        def of_weight(w: torch.Tensor) -> torch.Tensor:
            parameters = {name: p.detach() for name, p in module.named_parameters()}
            parameters["weight_hh_l0"] = w
            return torch.func.functional_call(module, parameters, (x,))[0].pow(2).sum()
        return of_weight

    expected = torch.autograd.functional.hessian(loss(reference), weight)
    assert_close([torch.autograd.functional.hessian(loss(ours), weight)], [expected],
                 "reverse-over-reverse Hessian")
    assert_close([torch.func.hessian(loss(ours))(weight)], [expected],
                 "torch.func.hessian (forward over reverse)")


# --------------------------------------------------------------------------------------
# vmap and torch.func
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYERS))
def test_per_sample_gradients_with_vmap_equal_a_loop_over_torch(kind):
    reference, ours = make_layers(kind, **STACKED, seed=6)
    samples = torch.randn(4, 5, 1, 2, dtype=DTYPE)  # 4 sequences of 5 steps, batch of one

    def loss(module: nn.Module):
        def of(parameters, sample):
            return torch.func.functional_call(module, parameters, (sample,))[0].pow(2).sum()
        return of

    parameters = {name: p.detach() for name, p in ours.named_parameters()}
    per_sample = torch.func.vmap(torch.func.grad(loss(ours)), in_dims=(None, 0))(
        parameters, samples)
    for index, sample in enumerate(samples):
        expected = torch.func.grad(loss(reference))(parameters, sample)
        assert_close([per_sample[name][index] for name in expected], list(expected.values()),
                     f"sample {index}")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_jacobians_equal_torch(kind):
    reference, ours = make_layers(kind, **STACKED, seed=7)
    x = torch.randn(3, 2, 2, dtype=DTYPE)
    expected = torch.autograd.functional.jacobian(lambda z: reference(z)[0], x)
    # is_grads_batched: vmap over the backward pass (the old, "legacy" vmap)
    vectorized = torch.autograd.functional.jacobian(lambda z: ours(z)[0], x, vectorize=True)
    assert_close([vectorized], [expected], "jacobian(vectorize=True)")
    assert_close([torch.func.jacrev(lambda z: ours(z)[0])(x)], [expected], "jacrev")
    assert_close([torch.func.jacfwd(lambda z: ours(z)[0])(x)], [expected], "jacfwd")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_vmap_over_inputs_and_over_weights(kind):
    reference, ours = make_layers(kind, seed=8)
    x = torch.randn(4, 6, 2, 2, dtype=DTYPE)  # 4 batches mapped over
    mapped = torch.func.vmap(lambda z: ours(z)[0])(x)
    assert_close([mapped], [torch.stack([reference(z)[0] for z in x])], "vmap over inputs")
    # An ensemble: three layers' weights stacked and mapped over.
    ensemble = [make_layers(kind, seed=seed)[0] for seed in (10, 11, 12)]
    stacked = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in ensemble])
               for name, _ in ours.named_parameters()}

    def run(parameters):
        return torch.func.functional_call(ours, parameters, (x[0],))[0]

    expected = torch.stack([m(x[0])[0] for m in ensemble])
    assert_close([torch.func.vmap(run)(stacked)], [expected], "vmap over weights")


@pytest.mark.parametrize("kind", ["lstm_projected", "gru"])
def test_forward_mode_equals_torch(kind):
    reference, ours = make_layers(kind, **STACKED, seed=9)
    x = torch.randn(4, 2, 2, dtype=DTYPE)
    tangent = torch.randn_like(x)
    with forward_ad.dual_level():
        expected = forward_ad.unpack_dual(reference(forward_ad.make_dual(x, tangent))[0]).tangent
        actual = forward_ad.unpack_dual(ours(forward_ad.make_dual(x, tangent))[0]).tangent
    assert_close([actual], [expected], "forward-mode tangent")
    _, jvp = torch.func.jvp(lambda z: ours(z)[0], (x,), (tangent,))
    assert_close([jvp], [expected], "torch.func.jvp")


# --------------------------------------------------------------------------------------
# The hand-derived backward is the one ordinary training uses
# --------------------------------------------------------------------------------------


def test_hand_derived_backward_runs_unless_a_graph_or_vmap_needs_the_other(monkeypatch):
    calls = []
    recompute = torch_bptt._gradients_by_autograd

    def spy(*args, **kwargs):
        calls.append(1)
        return recompute(*args, **kwargs)

    monkeypatch.setattr(torch_bptt, "_gradients_by_autograd", spy)
    for layer_class in (tc.RNN, tc.LSTM, tc.GRU):
        layer = layer_class(2, 3, num_layers=2, bidirectional=True, dtype=DTYPE)
        x = torch.randn(4, 2, 2, dtype=DTYPE, requires_grad=True)
        layer(x)[0].pow(2).sum().backward()
        assert not calls, f"{layer_class.__name__}: plain backward must be the hand-derived one"
        (gradient,) = torch.autograd.grad(layer(x)[0].pow(2).sum(), x, create_graph=True)
        assert len(calls) == 4  # two layers, two directions
        assert gradient.requires_grad
        calls.clear()


@pytest.mark.parametrize("kind", list(LAYERS))
def test_backward_twice_with_retain_graph_gives_the_same_gradients(kind):
    # The hand-written backward must not overwrite what the forward saved.
    _, layer = make_layers(kind, 3, 4, **STACKED, seed=9)
    x = torch.randn(6, 2, 3, dtype=DTYPE, requires_grad=True)
    loss = layer(x)[0].pow(2).sum()
    first = torch.autograd.grad(loss, [x, *layer.parameters()], retain_graph=True)
    second = torch.autograd.grad(loss, [x, *layer.parameters()])
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["lstm_projected", "gru", "rnn_relu"])
def test_gradients_when_only_some_inputs_need_them(kind):
    # The fast path skips the gradients nobody asked for; the others must stay right.
    reference, ours = make_layers(kind, 3, 4, seed=8)
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    for module in (reference, ours):
        module.bias_ih_l0.requires_grad_(False)
        module.weight_hh_l0.requires_grad_(False)
    expected = torch.autograd.grad(reference(x)[0].pow(2).sum(), reference.weight_ih_l0)
    actual = torch.autograd.grad(ours(x)[0].pow(2).sum(), ours.weight_ih_l0)
    assert relative_error(actual[0], expected[0]) <= TOLERANCE


def test_torch_compile_gives_the_same_numbers():
    reference, ours = make_layers("gru", 3, 4, seed=10)
    compiled = torch.compile(ours, backend="eager")
    x = torch.randn(5, 2, 3, dtype=DTYPE, requires_grad=True)
    (expected,) = torch.autograd.grad(reference(x)[0].sum(), x)
    output = compiled(x)[0]
    assert relative_error(output, reference(x)[0]) <= TOLERANCE
    (actual,) = torch.autograd.grad(output.sum(), x)
    assert relative_error(actual, expected) <= TOLERANCE
