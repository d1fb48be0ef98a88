"""The fit loop: it learns, stops early, restores the best weights, clips, and fails clearly."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from throughtime.tasks import adding_problem
from throughtime.training import (
    DivergenceError,
    History,
    LastStateRNN,
    StepHistory,
    choose_device,
    fit,
    seed_everything,
    train_steps,
)


def regression_problem(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = x @ w + 0.5 + small noise, with x (n, 3): a linear model can fit it almost exactly."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    w = torch.tensor([[1.0], [-2.0], [0.5]])
    return x, x @ w + 0.5 + 0.01 * torch.randn(n, 1, generator=generator)


def linear_model(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


# --- seeding and devices (unchanged helpers) -------------------------------------------


def test_seed_everything_returns_a_seeded_generator():
    a = seed_everything(3).normal(size=4)
    torch_a = torch.randn(2)
    b = seed_everything(3).normal(size=4)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch_a, (seed_everything(3), torch.randn(2))[1])


def test_choose_device_defaults_to_what_is_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device().type == expected
    assert choose_device("cpu") == torch.device("cpu")


# --- learning ----------------------------------------------------------------------------


def test_fit_reduces_the_loss_on_a_tiny_regression():
    x, y = regression_problem()
    model = linear_model()
    before = mse(model, x, y)
    history = fit(model, (x, y), lr=0.05, epochs=100, batch_size=16, progress=False)
    after = mse(model, x, y)
    assert after < 1e-3 < before
    assert history.epochs == 100 and history.steps == 100 * 4
    assert len(history.grad_norm) == history.steps
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.validation_loss == [] and history.best_epoch is None


def test_epoch_loss_is_the_batch_weighted_mean():
    # With lr -> tiny, the weights hardly move, so the epoch loss is the full-data MSE.
    x, y = regression_problem(n=10)
    model = linear_model()
    expected = mse(model, x, y)
    history = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=1e-12),
                  epochs=1, batch_size=4, progress=False)  # batches of 4, 4 and 2
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-6)


def test_fit_accepts_a_dataloader_and_time_major_pairs():
    x, y = regression_problem(n=32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = linear_model()
    history = fit(model, loader, lr=0.05, epochs=30, progress=False)
    assert history.steps == 30 * 4 and mse(model, x, y) < 1e-2

    class LastStep(nn.Module):  # reads a time-major (T, B, I) batch
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 1)

        def forward(self, xs):
            return self.linear(xs[-1])

    xs = torch.stack([torch.zeros_like(x), x])  # (T=2, B=32, I=3)
    torch.manual_seed(0)
    model = LastStep()
    fit(model, (xs, y), lr=0.05, epochs=60, batch_size=8, batch_dim=(1, 0), progress=False)
    assert mse(model, xs, y) < 1e-2


def test_fit_is_reproducible_given_the_seed():
    x, y = regression_problem()
    runs = []
    for _ in range(2):
        model = linear_model(seed=1)
        runs.append((fit(model, (x, y), lr=0.01, epochs=5, batch_size=8, seed=7,
                         validation=(x[:8], y[:8]), progress=False), model.weight.clone()))
    assert runs[0][0] == runs[1][0]  # identical dataclasses: every loss and norm equal
    assert torch.equal(runs[0][1], runs[1][1])
    other = fit(linear_model(seed=1), (x, y), lr=0.01, epochs=5, batch_size=8, seed=8,
                progress=False)
    assert other.train_loss != runs[0][0].train_loss  # a different shuffle


def test_progress_bars_do_not_change_the_result(capsys):
    x, y = regression_problem()
    quiet = fit(linear_model(), (x, y), lr=0.01, epochs=3, progress=False)
    shown = fit(linear_model(), (x, y), lr=0.01, epochs=3, progress=True)
    assert quiet == shown
    assert "epoch" in capsys.readouterr().err  # the text bar writes to stderr


# --- early stopping ----------------------------------------------------------------------


def test_early_stopping_stops_and_restores_the_best_weights():
    # Validation targets are the negated training targets: the better the model fits the
    # training data, the worse it does on validation, so the best epoch is an early one.
    x, y = regression_problem()
    model = linear_model()
    saved = {}

    class Spy(torch.optim.Adam):
        """Records the weights after every epoch's last step (one step per epoch here)."""

        def step(self, closure=None):
            result = super().step(closure)
            saved[len(saved) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
            return result

    history = fit(model, (x, y), optimizer=Spy(model.parameters(), lr=0.05), epochs=200,
                  validation=(x, -y), patience=5, progress=False)
    best = int(np.argmin(history.validation_loss)) + 1
    assert history.best_epoch == best
    assert history.stopped_early and history.epochs == best + 5 < 200
    assert history.best_validation_loss == min(history.validation_loss)
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[best][name]), f"{name} is not the best epoch's"
    with torch.no_grad():
        assert float(((model(x) + y) ** 2).mean()) == pytest.approx(history.best_validation_loss)


def test_without_restore_best_the_last_weights_stay():
    x, y = regression_problem()
    model = linear_model()
    history = fit(model, (x, y), lr=0.05, epochs=200, validation=(x, -y), patience=3,
                  restore_best=False, progress=False)
    with torch.no_grad():
        last = float(((model(x) + y) ** 2).mean())
    assert last > history.best_validation_loss


def test_max_steps_cuts_an_epoch_short():
    x, y = regression_problem()
    history = fit(linear_model(), (x, y), lr=0.01, epochs=10, batch_size=16, max_steps=6,
                  progress=False)
    assert history.steps == 6 and history.epochs == 2


# --- clipping ----------------------------------------------------------------------------


def test_clipping_bounds_the_gradient_the_optimiser_sees():
    x, y = regression_problem()
    y = 100 * y  # large errors, large gradients
    model = linear_model()
    seen = []

    class Recorder(torch.optim.SGD):
        def step(self, closure=None):
            grads = [p.grad for group in self.param_groups for p in group["params"]]
            seen.append(float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))))
            return super().step(closure)

    history = fit(model, (x, y), optimizer=Recorder(model.parameters(), lr=1e-3), epochs=20,
                  batch_size=16, max_norm=1.0, progress=False)
    assert len(seen) == len(history.grad_norm) == history.steps
    assert max(history.grad_norm) > 10  # before clipping: large
    for before, after in zip(history.grad_norm, seen, strict=True):
        # torch.nn.utils.clip_grad_norm_ rescales by max_norm / (norm + 1e-6)
        assert after == pytest.approx(min(before, 1.0 * before / (before + 1e-6)), rel=1e-5)


def test_recorded_norm_is_the_global_norm():
    x, y = regression_problem(n=8)
    model = linear_model()
    loss = ((model(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = math.sqrt(sum(float((g**2).sum()) for g in grads))
    history = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                  epochs=1, progress=False)
    assert history.grad_norm[0] == pytest.approx(expected, rel=1e-6)


# --- divergence --------------------------------------------------------------------------


def test_a_huge_learning_rate_raises_a_clear_divergence_error():
    x, y = regression_problem()
    model = linear_model()
    with pytest.raises(DivergenceError) as caught:
        fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=1e6), epochs=50,
            batch_size=16, progress=False)
    error = caught.value
    assert isinstance(error, FloatingPointError)
    message = str(error)
    assert f"epoch {error.epoch}, step {error.step}" in message
    assert error.step > 1 and error.last_finite_loss is not None
    assert f"{error.last_finite_loss:.6g}" in message
    for advice in ("lower the learning rate", "max_norm", "scaled"):
        assert advice in message
    assert len(error.history.grad_norm) == error.step - 1  # every finite step was recorded


def test_a_model_that_outputs_inf_fails_at_step_one():
    class Infinite(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * torch.full((x.shape[0], 1), math.inf)

    x, y = regression_problem(n=8)
    with pytest.raises(DivergenceError, match=r"epoch 1, step 1 .*no finite loss"):
        fit(Infinite(), (x, y), epochs=3, progress=False)


def test_an_infinite_gradient_is_caught_too():
    class Sqrt(nn.Module):  # sqrt has an infinite derivative at 0
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.sqrt(self.a) + 0 * x[:, :1]

    x, y = regression_problem(n=8)
    with pytest.raises(DivergenceError, match="gradient norm became"):
        fit(Sqrt(), (x, y), epochs=2, progress=False)


# --- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": -1.0}, ValueError, "lr must be positive"),
        ({"max_norm": 0.0}, ValueError, "max_norm must be positive"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"patience": 3}, ValueError, "patience .* needs validation"),
        ({"progress": "yes"}, ValueError, "progress"),
        ({"loss_fn": "mse"}, TypeError, "loss_fn must be callable"),
        ({"optimizer": "adam"}, TypeError, "optimizer must be a torch.optim.Optimizer"),
        ({"batch_dim": (0, 1, 2)}, ValueError, "batch_dim"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, pattern):
    x, y = regression_problem(n=8)
    with pytest.raises(error, match=pattern):
        fit(linear_model(), (x, y), **{"progress": False, **kwargs})


def test_bad_models_and_data_are_named():
    x, y = regression_problem(n=8)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda v: v, (x, y))
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(nn.ReLU(), (x, y))
    with pytest.raises(ValueError, match=r"same number of examples.*batch_dim=\(1, 0\)"):
        fit(linear_model(), (x, y[:5]))
    with pytest.raises(TypeError, match="pair"):
        fit(linear_model(), (x.numpy(), y.numpy()))
    with pytest.raises(TypeError, match="train must be"):
        fit(linear_model(), 3)
    model = linear_model()
    with pytest.raises(ValueError, match="either optimizer or lr"):
        fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), lr=0.1)


def test_history_is_a_plain_dataclass():
    history = History(train_loss=[2.0, 1.0], validation_loss=[3.0, 2.5])
    assert history.epochs == 2 and history.best_validation_loss == 2.5
    assert History().best_validation_loss is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_moves_batches_to_the_model_device():
    x, y = regression_problem()
    model = linear_model().to("cuda")
    history = fit(model, (x, y), lr=0.05, epochs=50, batch_size=16,
                  validation=(x, y), progress=False)  # data stay on the CPU
    assert history.train_loss[-1] < history.train_loss[0]
    assert next(model.parameters()).device.type == "cuda"


# --- the step loop and the small recurrent regressor ---------------------------------------


def adding_stream(T: int = 5, seed: int = 0):
    data = np.random.default_rng(seed)
    return lambda: adding_problem(T, 32, data, as_torch=True)


def test_last_state_rnn_reads_the_last_state_of_torch_rnn():
    torch.manual_seed(0)
    model = LastStateRNN(2, 8)
    inputs, _ = adding_problem(6, 4, 0, as_torch=True)
    states, _ = model.rnn(inputs)
    expected = states[-1] @ model.readout.weight.T + model.readout.bias
    torch.testing.assert_close(model(inputs), expected, rtol=0, atol=0)
    assert model(inputs).shape == (4, 1)


def test_last_state_rnn_default_init_is_pytorchs():
    torch.manual_seed(3)
    reference = nn.RNN(2, 8)
    torch.manual_seed(3)
    model = LastStateRNN(2, 8)
    assert torch.equal(model.rnn.weight_hh_l0, reference.weight_hh_l0)
    assert torch.equal(model.rnn.weight_ih_l0, reference.weight_ih_l0)


def test_last_state_rnn_orthogonal_and_identity_inits():
    torch.manual_seed(0)
    orthogonal = LastStateRNN(2, 16, recurrent_init="orthogonal", recurrent_scale=2.0)
    singular = torch.linalg.svdvals(orthogonal.rnn.weight_hh_l0.detach().double())
    torch.testing.assert_close(singular, torch.full((16,), 2.0, dtype=torch.float64),
                               rtol=1e-5, atol=1e-5)
    irnn = LastStateRNN(2, 16, nonlinearity="relu", recurrent_init="identity")
    assert torch.equal(irnn.rnn.weight_hh_l0, torch.eye(16))
    assert not irnn.rnn.bias_ih_l0.any() and not irnn.rnn.bias_hh_l0.any()
    assert irnn.rnn.nonlinearity == "relu"
    # The IRNN with zero input weights keeps its state: h_t = relu(h_{t-1}) = h_{t-1} >= 0.
    with torch.no_grad():
        irnn.rnn.weight_ih_l0.zero_()
        h0 = torch.rand(1, 3, 16)
        _, h_last = irnn.rnn(torch.zeros(7, 3, 2), h0)
    torch.testing.assert_close(h_last, h0)


@pytest.mark.parametrize("kwargs, message", [
    ({"nonlinearity": "sigmoid"}, "nonlinearity"),
    ({"recurrent_init": "eye"}, "recurrent_init"),
    ({"recurrent_scale": -1.0}, "recurrent_scale"),
])
def test_last_state_rnn_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LastStateRNN(2, 4, **kwargs)


def test_train_steps_learns_a_short_adding_problem_and_records_every_step():
    torch.manual_seed(0)
    model = LastStateRNN(2, 16)
    test = adding_problem(5, 500, 99, as_torch=True)
    history = train_steps(model, adding_stream(), steps=300, lr=0.02, max_norm=1.0,
                          test=test, checkpoints=[0, 100])
    assert isinstance(history, StepHistory)
    assert len(history.losses) == len(history.grad_norms) == 300
    assert history.checkpoints == [0, 100, 300] and history.diverged_at is None
    # At T = 5 the task is easy: far below the no-memory MSE 1/6 after 300 steps.
    assert history.test_losses[0] > 0.1 and history.final_test_loss < 0.05
    with torch.no_grad():
        direct = float(nn.functional.mse_loss(model(test[0]), test[1]))
    assert history.final_test_loss == pytest.approx(direct, rel=1e-6)


def test_train_steps_clipping_bounds_every_sgd_step():
    torch.manual_seed(0)
    model = LastStateRNN(2, 8, recurrent_init="orthogonal", recurrent_scale=3.0)
    before = [p.detach().clone() for p in model.parameters()]
    history = train_steps(model, adding_stream(T=20), steps=1, optimizer="sgd", lr=0.1,
                          max_norm=0.5)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                           for p, b in zip(model.parameters(), before, strict=True)))
    assert history.grad_norms[0] > 0.5  # the gradient was longer than the threshold ...
    assert float(moved) == pytest.approx(0.1 * 0.5, rel=1e-4)  # ... and the step is lr * 0.5


def test_train_steps_stops_at_the_first_non_finite_loss():
    torch.manual_seed(0)
    model = LastStateRNN(2, 4)
    batches = iter([adding_problem(3, 4, 0, as_torch=True)] * 2
                   + [(torch.full((3, 4, 2), math.nan), torch.zeros(4, 1))] * 5)
    test = adding_problem(3, 10, 1, as_torch=True)
    history = train_steps(model, lambda: next(batches), steps=7, lr=0.01, test=test,
                          checkpoints=[1, 5])
    assert history.diverged_at == 3 and len(history.losses) == 3
    assert math.isnan(history.losses[-1]) and np.isfinite(history.losses[:2]).all()
    assert history.checkpoints == [1, 2]  # the checkpoint after step 1, then where it stopped
    assert np.isfinite(history.test_losses).all()  # no update was made with the NaN gradient


@pytest.mark.parametrize("kwargs, error, message", [
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 5, "optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"steps": 5, "lr": -1.0}, ValueError, "lr"),
    ({"steps": 5, "checkpoints": [2]}, ValueError, "test set"),
    ({"steps": 5, "checkpoints": [9], "test": adding_problem(3, 4, 0, as_torch=True)},
     ValueError, "at most steps"),
    ({"steps": 5, "test": [1, 2]}, TypeError, "test must be a pair"),
])
def test_train_steps_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        train_steps(LastStateRNN(2, 4), adding_stream(), **kwargs)
    with pytest.raises(TypeError, match="draw_batch"):
        train_steps(LastStateRNN(2, 4), None, steps=1)


def test_deterministic_torch_sets_the_flags():
    # In a fresh interpreter: PyTorch's own test harness, which other test modules import,
    # freezes the cuDNN flags for the rest of its process (torch.backends.disable_global_flags).
    program = textwrap.dedent("""
        import os
        import torch
        from throughtime.training import deterministic_torch
        assert not torch.are_deterministic_algorithms_enabled()
        deterministic_torch()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert "CUBLAS_WORKSPACE_CONFIG" in os.environ
        print("flags set")
    """)
    environment = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            env=environment, timeout=120)
    assert result.returncode == 0 and "flags set" in result.stdout, result.stderr


def test_train_steps_takes_an_iterable_and_a_built_optimizer_and_equals_a_hand_loop():
    """The one loop against the four lines it stands for, written out by hand."""
    batches = [adding_problem(6, 16, seed, as_torch=True) for seed in range(5)]
    torch.manual_seed(3)
    model = LastStateRNN(2, 8)
    torch.manual_seed(3)
    by_hand = LastStateRNN(2, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    history = train_steps(model, iter(batches), optimizer=optimizer, max_norm=0.3)
    assert len(history.losses) == 5 and history.diverged_at is None  # ran out of batches
    hand_optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.05)
    for inputs, targets in batches:
        hand_optimizer.zero_grad()
        nn.functional.mse_loss(by_hand(inputs), targets).backward()
        nn.utils.clip_grad_norm_(by_hand.parameters(), 0.3)
        hand_optimizer.step()
    for mine, theirs in zip(model.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    with pytest.raises(ValueError, match="steps must be given"):
        train_steps(model, adding_stream())
    with pytest.raises(TypeError, match="optimizer must be"):
        train_steps(model, adding_stream(), steps=1, optimizer=3)


def test_train_steps_evaluate_and_going_on_after_a_divergence():
    torch.manual_seed(0)
    model = LastStateRNN(2, 4)
    good = adding_problem(4, 8, 1, as_torch=True)
    bad = (good[0], torch.full_like(good[1], math.nan))
    batches = iter([good, bad, good, good])
    seen = []
    history = train_steps(model, lambda: next(batches), steps=4, lr=0.01,
                          evaluate=lambda m: seen.append(m.training) or len(seen),
                          checkpoints=[2], on_divergence="continue")
    assert history.diverged_at == 2 and len(history.losses) == 4  # it went on
    assert history.checkpoints == [2, 4] and history.evaluations == [1, 2]
    assert seen == [False, False]  # scored in eval mode
    assert len(history.test_losses) == 0
    with pytest.raises(ValueError, match="on_divergence"):
        train_steps(model, adding_stream(), steps=1, on_divergence="ignore")
    with pytest.raises(ValueError, match="test or evaluate"):
        train_steps(model, adding_stream(), steps=1, test=good, evaluate=len)
