"""The gradient-norm curve (``gradients``) against autograd and exact math, the bound of
Pascanu et al. on every configuration, its figures (``plotting``) and its explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from throughtime.explorers import gradient_norm_explorer  # noqa: E402
from throughtime.gradients import (  # noqa: E402
    DERIVATIVE_BOUNDS,
    GradientNormCurve,
    derivative_bound,
    gradient_log_norms,
    gradient_norm_curve,
    gradient_norm_problem,
    scaled_orthogonal,
)
from throughtime.plotting import (  # noqa: E402
    draw_gradient_norm_curve,
    gradient_norm_small_multiples,
)

TORCH_ACTIVATIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda a: a}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_derivative_bounds_are_the_maxima_of_the_derivatives():
    a = torch.linspace(-8, 8, 160_001, dtype=torch.float64, requires_grad=True)
    for name, f in TORCH_ACTIVATIONS.items():
        (slope,) = torch.autograd.grad(f(a).sum(), a)
        assert slope.max().item() == pytest.approx(derivative_bound(name), abs=1e-12)
    assert DERIVATIVE_BOUNDS == {"tanh": 1.0, "sigmoid": 0.25, "linear": 1.0}
    with pytest.raises(ValueError, match="activation must be one of"):
        derivative_bound("relu")


@pytest.mark.parametrize("scale", [0.0, 0.3, 1.0, 2.5])
def test_scaled_orthogonal_has_all_singular_values_equal_to_the_scale(scale):
    w = scaled_orthogonal(16, scale, np.random.default_rng(0))
    assert w.shape == (16, 16)
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), scale, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(w)), scale, atol=1e-10)


def test_scaled_orthogonal_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="scale must be >= 0"):
        scaled_orthogonal(4, -1.0, rng)
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        scaled_orthogonal(0, 1.0, rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        scaled_orthogonal(4, 1.0, 0)


def autograd_log_norms(params, xs, g, activation):
    """ln ||dL/dh_t|| - ln ||dL/dh_T|| by torch autograd on a hand-written loop."""
    f = TORCH_ACTIVATIONS[activation]
    w_ih = torch.tensor(params["weight_ih"])
    w_hh = torch.tensor(params["weight_hh"], requires_grad=True)
    h = torch.zeros(g.shape, dtype=torch.float64)
    states = []
    for x in torch.tensor(xs):
        h = f(x @ w_ih.T + h @ w_hh.T)
        h.retain_grad()
        states.append(h)
    (h * torch.tensor(g)).sum().backward()
    norms = np.array([s.grad.norm().item() for s in states])
    return np.log(norms[::-1] / norms[-1])


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "linear"])
@pytest.mark.parametrize(("scale", "input_scale"), [(0.7, 1.0), (1.5, 0.1), (3.0, 3.0)])
def test_log_norms_equal_autograd(activation, scale, input_scale):
    params, xs, g = gradient_norm_problem(scale, activation, 25, hidden_size=8,
                                          input_scale=input_scale, batch_size=3, seed=4)
    measured = gradient_log_norms(params, xs, g, activation)
    np.testing.assert_allclose(measured, autograd_log_norms(params, xs, g, activation),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", [0.5, 0.9, 3.0])
def test_linear_orthogonal_network_follows_scale_to_the_power_k(scale):
    """With f linear and W = scale * Q, dL/dh_{T-k} = g (scale Q)^k: norm exactly scale^k."""
    curve = gradient_norm_curve(scale, "linear", 200)
    np.testing.assert_allclose(curve.log_ratio, np.arange(200) * np.log(scale), atol=1e-9)
    assert curve.measured_rate == pytest.approx(np.log(scale), abs=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("input_scale", [0.0, 1.0, 5.0])
def test_every_step_obeys_the_bound(activation, scale, input_scale):
    curve = gradient_norm_curve(scale, activation, 80, input_scale=input_scale)
    assert (curve.step_rates <= curve.bound_rate + 1e-9).all()
    assert curve.measured_rate <= curve.bound_rate + 1e-9
    assert (curve.log_ratio <= curve.log_bound + 1e-9).all()


def test_sufficient_condition_vanishes_and_saturation_vanishes_above_it():
    # gamma * sigma_max < 1: the gradient vanishes, whatever the inputs.
    for activation, scale in [("tanh", 0.9), ("sigmoid", 3.5), ("linear", 0.9)]:
        assert gradient_norm_curve(scale, activation, 100).measured_rate < 0
    # tanh with sigma_max = 2 > 1 grows with small inputs and vanishes with saturating ones.
    assert gradient_norm_curve(2.0, "tanh", 100, input_scale=0.1).measured_rate > 0
    assert gradient_norm_curve(2.0, "tanh", 100, input_scale=5.0).measured_rate < 0


def test_long_curves_neither_underflow_nor_overflow():
    small = gradient_norm_curve(0.5, "sigmoid", 1000)
    large = gradient_norm_curve(8.0, "linear", 1000)
    assert np.isfinite(small.log_ratio).all() and small.log_ratio[-1] < -1500
    assert np.isfinite(large.log_ratio).all()
    assert large.log_ratio[-1] == pytest.approx(999 * np.log(8.0), rel=1e-12)
    assert small.ratio[-1] >= 0 and np.isfinite(large.ratio).all()


def test_zero_gradient_and_zero_scale():
    curve = gradient_norm_curve(0.0, "tanh", 10)
    assert curve.log_ratio[0] == 0 and np.isneginf(curve.log_ratio[1:]).all()
    assert np.isneginf(curve.bound_rate)
    params, xs, g = gradient_norm_problem(1.0, "tanh", 5)
    with pytest.raises(ValueError, match="g must not be all zeros"):
        gradient_log_norms(params, xs, np.zeros_like(g), "tanh")


def test_curve_is_reproducible_and_seed_dependent():
    a = gradient_norm_curve(1.2, "tanh", 40, seed=3)
    b = gradient_norm_curve(1.2, "tanh", 40, seed=3)
    c = gradient_norm_curve(1.2, "tanh", 40, seed=4)
    np.testing.assert_array_equal(a.log_ratio, b.log_ratio)
    assert not np.array_equal(a.log_ratio, c.log_ratio)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"scale": -0.5}, ValueError, "scale must be >= 0"),
        ({"activation": "relu"}, ValueError, "activation must be one of"),
        ({"T": 1}, ValueError, "T must be an integer >= 2"),
        ({"T": 5000}, ValueError, "T must be at most 1000"),
        ({"input_scale": -1.0}, ValueError, "input_scale must be >= 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"seed": -2}, ValueError, "seed must be an integer >= 0"),
        ({"hidden_size": 2.5}, TypeError, "hidden_size must be an integer"),
    ],
)
def test_curve_rejects_bad_arguments(kwargs, error, words):
    arguments = {"scale": 1.0, "activation": "tanh", "T": 10, **kwargs}
    with pytest.raises(error, match=words):
        gradient_norm_curve(**arguments)


def test_draw_puts_the_curve_and_the_bound_into_the_axes():
    curve = gradient_norm_curve(0.8, "tanh", 30)
    fig, ax = plt.subplots()
    assert draw_gradient_norm_curve(ax, curve) is ax
    measured, bound = ax.get_lines()[:2]
    np.testing.assert_allclose(measured.get_ydata(), curve.ratio)
    np.testing.assert_allclose(bound.get_ydata(), 0.8 ** np.arange(30))
    assert ax.get_yscale() == "log"
    assert "tanh" in ax.get_title()
    with pytest.raises(TypeError, match="curve must be a GradientNormCurve"):
        draw_gradient_norm_curve(ax, curve.log_ratio)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        draw_gradient_norm_curve(None, curve)


def test_small_multiples_has_one_panel_per_activation_and_scale():
    fig = gradient_norm_small_multiples((0.5, 2.0), ("tanh", "sigmoid", "linear"), T=20)
    assert len(fig.axes) == 6
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    with pytest.raises(ValueError, match="activation must be one of"):
        gradient_norm_small_multiples((1.0,), ("softplus",), T=20)
    with pytest.raises(ValueError, match="must not be empty"):
        gradient_norm_small_multiples((), ("tanh",), T=20)


def test_explorer_builds_and_redraws(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(plt.gcf()))
    explorer = gradient_norm_explorer(T=30)
    assert isinstance(explorer, widgets.VBox)
    sliders = [w for box in explorer.children[:2] for w in box.children]
    kinds = {type(w).__name__ for w in sliders}
    assert kinds == {"FloatSlider", "Dropdown", "IntSlider"}
    scale_slider = sliders[0]
    before = len(calls)
    scale_slider.value = 2.0  # the callback runs and draws a new figure
    assert len(calls) == before + 1
    title = calls[-1].axes[0].get_title()
    assert "= 2" in title and isinstance(gradient_norm_curve(2.0, T=30), GradientNormCurve)
