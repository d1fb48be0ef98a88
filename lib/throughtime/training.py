"""Seeding, device choice and a small fit loop for torch models.

``fit`` is the loop every chapter uses: mini-batches (or the whole training set at once),
an optimiser step per batch, optional clipping of the gradient by its global norm, a
validation loss after every epoch, early stopping that restores the best weights, and a
``History`` of what happened (losses per epoch, gradient norms per step) for plotting.
When the loss or the gradient stops being finite it raises ``DivergenceError``, which says
where it happened and what to try, instead of training on quietly with NaN weights.

``train_steps`` is the loop for synthetic tasks that draw a fresh batch at every step (the
adding problem): it records the loss and the gradient norm of every step and a test loss
at chosen steps, and when training diverges it stops and says at which step, because a
divergence is then the thing being studied. ``LastStateRNN`` is the small model such
experiments train: a ``torch.nn.RNN`` with a linear read-out of its last state, with the
recurrent initialisations the book compares (PyTorch's, a scaled orthogonal matrix, and
the identity of the IRNN). ``deterministic_torch`` asks PyTorch for reproducible kernels
on a GPU.
"""

from __future__ import annotations

import math
import os
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_int, check_real, describe

__all__ = [
    "seed_everything",
    "choose_device",
    "DivergenceError",
    "History",
    "fit",
    "deterministic_torch",
    "RECURRENT_INITS",
    "LastStateRNN",
    "StepHistory",
    "train_steps",
]


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, numpy and torch (CPU and CUDA) and return a numpy ``Generator``.

    Use the returned generator for new numpy code; the legacy global numpy state is
    seeded as well so that older code is reproducible too.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state, for older code)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def choose_device(prefer: str | None = None) -> torch.device:
    """Return ``cuda`` when a GPU is present (or ``prefer`` names a device), else ``cpu``."""
    if prefer is not None:
        if not isinstance(prefer, str):
            raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got {prefer!r}")
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' was asked for, but torch.cuda.is_available() is False")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------------------
# The fit loop
# --------------------------------------------------------------------------------------


class DivergenceError(FloatingPointError):
    """Training produced a loss or a gradient norm that is NaN or infinite.

    The message names the epoch and the step (both counted from 1), the last finite loss
    and what to try. The same facts are kept as attributes: ``epoch``, ``step``, ``value``
    (the offending number), ``last_finite_loss`` (``None`` if there was none) and ``history``
    (what was recorded up to the failure).
    """

    def __init__(self, what: str, value: float, epoch: int, step: int,
                 last_finite_loss: float | None, history: History):
        self.epoch, self.step, self.value = epoch, step, value
        self.last_finite_loss = last_finite_loss
        self.history = history
        last = ("no finite loss was seen before" if last_finite_loss is None
                else f"the last finite training loss was {last_finite_loss:.6g}")
        super().__init__(
            f"the {what} became {value} at epoch {epoch}, step {step} "
            f"(steps count optimiser updates from 1); {last}. Things to try: lower the "
            "learning rate (lr), clip gradients by their global norm (max_norm=1.0), check "
            "that the inputs and targets are scaled (mean 0, standard deviation 1) and "
            "finite."
        )


@dataclass
class History:
    """What ``fit`` recorded, ready for plotting.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss of each epoch (the batch losses weighted by batch size, measured
        during the epoch, with the weights of the moment).
    validation_loss : list of float
        Validation loss after each epoch (empty without validation data).
    grad_norm : list of float
        Global gradient norm ``||g|| = sqrt(sum over parameters of ||grad||^2)`` at
        every step, before clipping.
    steps : int
        Optimiser steps taken.
    best_epoch : int or None
        Epoch (from 1) with the lowest validation loss; its weights are the ones restored.
    stopped_early : bool
        True when early stopping ended training before ``epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    steps: int = 0
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of epochs run (the last one may have been cut short by ``max_steps``)."""
        return len(self.train_loss)

    @property
    def best_validation_loss(self) -> float | None:
        """Lowest validation loss, or ``None`` without validation data."""
        return min(self.validation_loss) if self.validation_loss else None


Data = Any  # a torch DataLoader (or any iterable of (inputs, targets)) or a pair of tensors


def _batch_dims(batch_dim: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(batch_dim, tuple):
        if len(batch_dim) != 2:
            raise ValueError(f"batch_dim must be an int or a pair (inputs, targets), "
                             f"got {batch_dim!r}")
        return (check_int("batch_dim[0]", batch_dim[0], minimum=0),
                check_int("batch_dim[1]", batch_dim[1], minimum=0))
    dim = check_int("batch_dim", batch_dim, minimum=0)
    return dim, dim


def _check_pair(name: str, data: Any, dims: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Check an (inputs, targets) pair of tensors with the same number of examples."""
    if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError(f"{name} must be a DataLoader or a pair (inputs, targets) of torch "
                        f"tensors, got a {type(data).__name__} of "
                        f"{[type(t).__name__ for t in data]}")
    inputs, targets = data
    for label, tensor, dim in (("inputs", inputs, dims[0]), ("targets", targets, dims[1])):
        if tensor.ndim <= dim:
            raise ValueError(f"{name}: {label} has shape {tuple(tensor.shape)}, which has no "
                             f"batch axis {dim} (set batch_dim)")
    if inputs.shape[dims[0]] != targets.shape[dims[1]]:
        raise ValueError(
            f"{name}: inputs and targets must hold the same number of examples, got "
            f"{inputs.shape[dims[0]]} (inputs axis {dims[0]}, shape {tuple(inputs.shape)}) and "
            f"{targets.shape[dims[1]]} (targets axis {dims[1]}, shape {tuple(targets.shape)}); "
            "time-major inputs (T, B, I) need batch_dim=(1, 0)"
        )
    if inputs.shape[dims[0]] == 0:
        raise ValueError(f"{name} holds no examples")
    return inputs, targets


def _batches(data: Data, dims: tuple[int, int], batch_size: int | None, shuffle: bool,
             generator: torch.Generator | None) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, targets) batches from a DataLoader or from a pair of tensors."""
    if not isinstance(data, tuple):
        yield from data
        return
    inputs, targets = data
    count = inputs.shape[dims[0]]
    if batch_size is None or batch_size >= count:
        yield inputs, targets
        return
    if shuffle:
        order = torch.randperm(count, generator=generator).to(inputs.device)
    else:
        order = torch.arange(count, device=inputs.device)
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        yield inputs.index_select(dims[0], index), targets.index_select(dims[1], index.to(
            targets.device))


def _count(targets: torch.Tensor, dim: int) -> int:
    return int(targets.shape[dim]) if targets.ndim > dim else 1


def _counted(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], sizes: list[int],
             dim: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``batches``, appending each one's number of examples to ``sizes``."""
    for inputs, targets in batches:
        sizes.append(_count(targets, dim))
        yield inputs, targets


def _progress_bar(progress: bool | str, total: int, description: str):
    """A tqdm bar, or ``None``.

    ``True`` gives tqdm's text bar on stderr. It updates in place in a terminal, in Jupyter
    and in Colab, and the book's website drops stderr (``stderr_output: remove`` in
    ``_config.yml``), so it leaves nothing behind. The notebook bar of ``tqdm.auto``
    (``progress="notebook"``) is an ipywidget: a page built by Jupyter Book shows it as a
    widget placeholder that only comes alive with a kernel, a dead widget on the static
    site, so it is never the default.
    """
    if progress is False:
        return None
    if progress == "notebook":
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=description, unit="epoch", leave=False, file=sys.stderr,
                dynamic_ncols=True)


def _global_norm(parameters: list[nn.Parameter]) -> torch.Tensor:
    """``||g|| = sqrt(sum_p ||grad_p||^2)`` over the parameters that have a gradient."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _evaluate(model: nn.Module, data: Data, loss_fn: Callable, dims: tuple[int, int],
              device: torch.device) -> float:
    """Mean loss over ``data`` (weighted by batch size), in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in _batches(data, dims, None, False, None):
            inputs, targets = inputs.to(device), targets.to(device)
            n = _count(targets, dims[1])
            total += float(loss_fn(model(inputs), targets)) * n
            count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("validation data holds no batches")
    return total / count


def fit(
    model: nn.Module,
    train: Data,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    epochs: int = 100,
    max_steps: int | None = None,
    batch_size: int | None = None,
    batch_dim: int | tuple[int, int] = 0,
    shuffle: bool = True,
    validation: Data | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    max_norm: float | None = None,
    seed: int = 0,
    progress: bool | str = True,
) -> History:
    """Train ``model`` on ``train`` and return the ``History``.

    Each step draws a batch (x, y), computes the loss L = loss_fn(model(x), y), backpropagates,
    records the global gradient norm ``||g|| = sqrt(sum over parameters of ||grad||^2)``,
    rescales the gradient to ``g * max_norm / ||g||`` when ``||g|| > max_norm`` (clipping by
    global norm, ``torch.nn.utils.clip_grad_norm_``), and takes an optimiser step. After each epoch
    the validation loss is measured; with ``patience``, training stops once it has not
    improved for ``patience`` epochs, and the weights of the best epoch are put back.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place. Batches are moved to the device of its parameters.
    train : DataLoader or (inputs, targets)
        A ``torch.utils.data.DataLoader`` (or any re-iterable of (inputs, targets) batches),
        or a pair of tensors that ``fit`` cuts into batches along ``batch_dim``.
    loss_fn : callable, optional
        ``loss_fn(predictions, targets)``, the mean over the batch; default mean squared
        error (``torch.nn.MSELoss()``).
    optimizer : torch.optim.Optimizer, optional
        Built on ``model.parameters()``; default Adam with learning rate ``lr``.
    lr : float, optional
        Learning rate of the default Adam (1e-3 when not given). Give ``lr`` or
        ``optimizer``, not both.
    epochs : int
        Maximum number of passes over ``train``.
    max_steps : int, optional
        Stop after this many optimiser steps, even in the middle of an epoch.
    batch_size : int, optional
        Batch size when ``train`` is a pair of tensors; ``None`` uses all examples at once.
    batch_dim : int or (int, int)
        Axis that indexes examples in the inputs and in the targets (a pair when they
        differ): 0 for batch-first data, ``(1, 0)`` for time-major inputs (T, B, I) with
        targets (B, ...).
    shuffle : bool
        Reshuffle the pairs of tensors every epoch (with a generator seeded by ``seed``).
    validation : DataLoader or (inputs, targets), optional
        Evaluated after each epoch (eval mode, no gradients).
    patience : int, optional
        Early stopping: stop when the validation loss has not improved for this many
        epochs. Needs ``validation``.
    restore_best : bool
        With validation data, load the weights of the epoch with the lowest validation loss
        at the end (so the returned model is the one ``History.best_epoch`` names).
    max_norm : float, optional
        Clip the gradient by its global norm to at most ``max_norm`` before each step.
    seed : int
        Seeds the shuffling generator, so two calls with the same seed, model initialisation
        and data give identical histories.
    progress : bool or "notebook"
        ``True``: a text progress bar on stderr (tqdm); ``"notebook"``: ``tqdm.auto``'s
        widget bar in Jupyter (live sessions only, see below); ``False``: none.

    Returns
    -------
    History
        Losses per epoch, gradient norms per step, the best epoch and whether training
        stopped early.

    Raises
    ------
    DivergenceError
        The training loss or the gradient norm became NaN or infinite; the message names the
        epoch, the step and the last finite loss, and suggests fixes.
    TypeError, ValueError
        An argument of the wrong kind or value; the message names it.

    Notes
    -----
    The default bar is text on stderr, not the ``tqdm.auto`` widget: a page built by Jupyter
    Book keeps the widget as a placeholder that needs a live kernel (a dead widget on the
    static site), while stderr is dropped from the built pages.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    device = parameters[0].device
    dims = _batch_dims(batch_dim)
    epochs = check_int("epochs", epochs, minimum=1)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, minimum=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    if max_norm is not None:
        max_norm = check_real("max_norm", max_norm, positive=True)
    seed = check_int("seed", seed, minimum=0)
    if progress not in (True, False, "notebook"):
        raise ValueError(f"progress must be True, False or 'notebook', got {progress!r}")
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
        if validation is None:
            raise ValueError("patience (early stopping) needs validation data: pass "
                             "validation=(inputs, targets) or a DataLoader")
    if isinstance(train, tuple):
        train = _check_pair("train", train, dims)
    elif not hasattr(train, "__iter__"):
        raise TypeError(f"train must be a DataLoader or a pair (inputs, targets), "
                        f"got {describe(train)}")
    if isinstance(validation, tuple):
        validation = _check_pair("validation", validation, dims)
    elif validation is not None and not hasattr(validation, "__iter__"):
        raise TypeError(f"validation must be a DataLoader or a pair (inputs, targets), "
                        f"got {describe(validation)}")
    if optimizer is not None and lr is not None:
        raise ValueError("give either optimizer or lr, not both (lr is for the default Adam)")
    if optimizer is None:
        lr = 1e-3 if lr is None else check_real("lr", lr, positive=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {describe(optimizer)}")
    loss_fn = nn.MSELoss() if loss_fn is None else loss_fn
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {describe(loss_fn)}")

    generator = torch.Generator().manual_seed(seed)
    history = History()
    best_loss, best_state, waited = math.inf, None, 0
    last_finite: float | None = None
    bar = _progress_bar(progress, epochs, type(model).__name__)
    model.train()
    try:
        for epoch in range(1, epochs + 1):
            sizes: list[int] = []  # examples in each batch, for the epoch's weighted mean
            batches = _counted(_batches(train, dims, batch_size, shuffle, generator), sizes,
                               dims[1])
            left = None if max_steps is None else max_steps - history.steps
            run = train_steps(model, batches, steps=left, optimizer=optimizer,
                              max_norm=max_norm, loss_fn=loss_fn)
            losses, norms = run.losses.tolist(), run.grad_norms.tolist()
            if run.diverged_at is not None:
                history.grad_norm.extend(norms[:-1])
                history.steps += run.diverged_at - 1
                if losses[:-1]:
                    last_finite = losses[-2]
                step, value, norm = history.steps + 1, losses[-1], norms[-1]
                if not math.isfinite(value):
                    raise DivergenceError("training loss", value, epoch, step, last_finite,
                                          history)
                raise DivergenceError("gradient norm", norm, epoch, step, value, history)
            if not sizes:
                raise ValueError("train holds no batches")
            history.grad_norm.extend(norms)
            history.steps += len(losses)
            last_finite = losses[-1]
            total, count = 0.0, 0
            for value, n in zip(losses, sizes, strict=True):
                total += value * n
                count += n
            history.train_loss.append(total / count)
            postfix = {"train": f"{total / count:.4g}"}
            if validation is not None:
                val_loss = _evaluate(model, validation, loss_fn, dims, device)
                history.validation_loss.append(val_loss)
                postfix["validation"] = f"{val_loss:.4g}"
                if val_loss < best_loss:
                    best_loss, waited, history.best_epoch = val_loss, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    waited += 1
            if bar is not None:
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
            if max_steps is not None and history.steps >= max_steps:
                break
            if patience is not None and waited >= patience:
                history.stopped_early = epoch < epochs
                break
    finally:
        if bar is not None:
            bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


# --------------------------------------------------------------------------------------
# Reproducible kernels
# --------------------------------------------------------------------------------------


def deterministic_torch() -> None:
    """Ask PyTorch for deterministic kernels, as far as it offers them.

    On a CPU the book's runs are reproducible already. On a GPU, cuDNN may choose
    kernels by benchmarking and some CUDA kernels accumulate in a nondeterministic order;
    this turns benchmarking off, asks cuDNN for deterministic algorithms, sets
    ``CUBLAS_WORKSPACE_CONFIG`` (needed by cuBLAS for reproducible results; it must be set
    before the first cuBLAS call, so call this early) and turns on
    ``torch.use_deterministic_algorithms`` in its warning mode, so that an operation
    without a deterministic version warns instead of failing. Seeded GPU runs then repeat on
    the same machine; they still differ from CPU runs in the last bits.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


# --------------------------------------------------------------------------------------
# A small recurrent regressor and a step-based training loop
# --------------------------------------------------------------------------------------

RECURRENT_INITS = ("default", "orthogonal", "identity")
"""The initialisations of ``LastStateRNN``'s recurrent matrix.

``"default"`` is PyTorch's U(-1/sqrt(H), 1/sqrt(H)); ``"orthogonal"`` is
``recurrent_scale`` times a random orthogonal matrix (all singular values equal to the
scale); ``"identity"`` is ``recurrent_scale`` times the identity with both bias vectors set
to zero, the IRNN of Le, Jaitly & Hinton (2015) when the nonlinearity is ReLU.
"""


class LastStateRNN(nn.Module):
    """A one-layer ``torch.nn.RNN`` whose last state h_T is read out by a linear layer.

    .. math::

        h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \\quad
        \\hat y = W_{out} h_T + b_{out}

    with f = tanh or ReLU and h_0 = 0.

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    output_size : int
        O, the size of the prediction.
    nonlinearity : {"tanh", "relu"}
    recurrent_init : {"default", "orthogonal", "identity"}
        See ``RECURRENT_INITS``. Everything else keeps PyTorch's initialisation.
    recurrent_scale : float
        The singular values of W_hh for ``"orthogonal"`` and ``"identity"``.

    Inputs are time-major, (T, B, I); the output has shape (B, O).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int = 1, *,
                 nonlinearity: str = "tanh", recurrent_init: str = "default",
                 recurrent_scale: float = 1.0) -> None:
        super().__init__()
        input_size = check_int("input_size", input_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        output_size = check_int("output_size", output_size, minimum=1)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(f"recurrent_init must be one of {RECURRENT_INITS}, got "
                             f"{recurrent_init!r}")
        recurrent_scale = check_real("recurrent_scale", recurrent_scale)
        if recurrent_scale < 0:
            raise ValueError(f"recurrent_scale must be >= 0 (it is a singular value), got "
                             f"{recurrent_scale}")
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity)
        self.readout = nn.Linear(hidden_size, output_size)
        with torch.no_grad():
            if recurrent_init == "orthogonal":
                nn.init.orthogonal_(self.rnn.weight_hh_l0)
                self.rnn.weight_hh_l0.mul_(recurrent_scale)
            elif recurrent_init == "identity":
                self.rnn.weight_hh_l0.copy_(recurrent_scale * torch.eye(hidden_size))
                self.rnn.bias_ih_l0.zero_()
                self.rnn.bias_hh_l0.zero_()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(T, B, I) -> (B, O), the read-out of h_T."""
        states, _ = self.rnn(inputs)
        return self.readout(states[-1])


@dataclass
class StepHistory:
    """What ``train_steps`` recorded.

    Attributes
    ----------
    losses : ndarray, shape (steps taken,)
        The training loss of every step, measured before that step's update (for a model
        whose loss has one entry per network, such as ``ensembles.Ensemble``, their sum).
    grad_norms : ndarray, shape (steps taken,) or (steps taken, K)
        The global gradient norm of every step, before clipping (one per network for a
        model that clips its networks apart, ``(steps taken, K)``).
    checkpoints : list of int
        The steps after which the model was scored (a step count; 0 is the start).
    test_losses : ndarray, shape (len(checkpoints),)
        The test loss at each checkpoint (empty when ``evaluate`` scored the model instead).
    diverged_at : int or None
        The first step (from 1) whose loss or gradient norm was not finite. With
        ``on_divergence="stop"`` training stopped there without updating. ``None`` when
        every step was finite.
    evaluations : list
        What ``evaluate(model)`` returned at each checkpoint (empty without ``evaluate``).
    """

    losses: np.ndarray
    grad_norms: np.ndarray
    checkpoints: list[int]
    test_losses: np.ndarray
    diverged_at: int | None
    evaluations: list[Any] = field(default_factory=list)

    @property
    def final_test_loss(self) -> float:
        """The test loss after the last update (``nan`` when no test set was given)."""
        return float(self.test_losses[-1]) if len(self.test_losses) else math.nan


def _scored(model: nn.Module, evaluate: Callable[[nn.Module], Any]) -> Any:
    """``evaluate(model)`` in eval mode and without gradients; the mode is restored after."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        value = evaluate(model)
    model.train(was_training)
    return value


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _clip(model: nn.Module, parameters: list[nn.Parameter],
          max_norm: float | None) -> torch.Tensor:
    """The gradient norm before clipping; clip to ``max_norm`` when it is given.

    A model with a ``clip_gradients(max_norm)`` method (``ensembles.Ensemble``, K networks
    in one layer) clips its own way and returns one norm per network; any other model is
    clipped by its global norm (``torch.nn.utils.clip_grad_norm_``).
    """
    own = getattr(model, "clip_gradients", None)
    if callable(own):
        return own(max_norm)
    if max_norm is None:
        return _global_norm(parameters)
    return nn.utils.clip_grad_norm_(parameters, max_norm)


ON_DIVERGENCE = ("stop", "continue")
"""What ``train_steps`` does at a step whose loss or gradient norm is not finite."""


def train_steps(model: nn.Module,
                draw_batch: Callable[[], tuple[Any, ...]] | Iterable[tuple[Any, ...]], *,
                steps: int | None = None, optimizer: str | torch.optim.Optimizer = "adam",
                lr: float = 1e-3, max_norm: float | None = None,
                loss_fn: Callable[..., torch.Tensor] | None = None,
                test: tuple[torch.Tensor, torch.Tensor] | None = None,
                checkpoints: Iterable[int] = (),
                evaluate: Callable[[nn.Module], Any] | None = None,
                on_divergence: str = "stop") -> StepHistory:
    """Train ``model`` for ``steps`` updates, each on the next batch: the library's training loop.

    Each step: take a batch (x, y, ...), L = loss_fn(model(x), y, ...) (summed when the loss
    has one entry per network), backpropagate, measure the global gradient norm
    ``||g|| = sqrt(sum over parameters of ||grad||^2)``, and, if ``max_norm`` is given and
    ``||g|| > max_norm``, rescale the gradient to ``g * max_norm / (||g|| + 1e-6)``
    (``torch.nn.utils.clip_grad_norm_``; a model with its own ``clip_gradients``, such as
    ``ensembles.Ensemble``, clips each of its networks by its own norm); then one optimiser
    update. When the loss or the norm is not finite, ``diverged_at`` says where, and with
    ``on_divergence="stop"`` training stops before updating: no error is raised, because
    in the book's experiments on exploding gradients the divergence is the result. ``fit``
    (epochs, validation, early stopping), ``runs.train_on_task`` and
    ``ensembles.train_ensemble`` train through this loop.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; batches are moved to the device of its parameters.
    draw_batch : callable or iterable
        ``draw_batch() -> (inputs, targets, ...)``, torch tensors, a new batch at every call;
        or an iterable of such batches (training then also ends when it runs out).
    steps : int, optional
        Number of updates (at least 1); needed with a callable ``draw_batch``.
    optimizer : {"adam", "sgd"} or torch.optim.Optimizer
        Adam or plain stochastic gradient descent (no momentum), with learning rate ``lr``;
        or an optimiser already built on the model's parameters (which keeps its state from
        call to call).
    lr : float
        The learning rate of a named optimiser.
    max_norm : float, optional
        Clip the gradient by its global norm (``None``: no clipping, the norm is only
        measured).
    loss_fn : callable, optional
        ``loss_fn(predictions, targets, ...)``, default mean squared error.
    test : (inputs, targets), optional
        A fixed test set, scored with ``loss_fn`` at the ``checkpoints`` and after the last
        update (or at the step where training stopped).
    checkpoints : iterable of int
        Step counts after which to score the model (0 scores the untrained model).
    evaluate : callable, optional
        Instead of ``test``: ``evaluate(model)``, called in eval mode without gradients at
        the checkpoints and after the last update; what it returns is kept in
        ``StepHistory.evaluations``.
    on_divergence : {"stop", "continue"}
        At a step whose loss or gradient norm is not finite: stop before updating, or go on
        (for K networks trained side by side, one diverged network does not stop the
        others).

    Returns
    -------
    StepHistory
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    drawn = callable(draw_batch)
    if not drawn and not hasattr(draw_batch, "__iter__"):
        raise TypeError(f"draw_batch must be a callable returning (inputs, targets) or an "
                        f"iterable of such batches, got {describe(draw_batch)}")
    if steps is not None:
        steps = check_int("steps", steps, minimum=1)
    elif drawn:
        raise ValueError("steps must be given when draw_batch is a callable (it never runs out)")
    if isinstance(optimizer, str):
        check_choice("optimizer", optimizer, ("adam", "sgd"))
        lr = check_real("lr", lr, positive=True)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got "
                        f"{describe(optimizer)}")
    if max_norm is not None:
        max_norm = check_real("max_norm", max_norm, positive=True)
    check_choice("on_divergence", on_divergence, ON_DIVERGENCE)
    loss_fn = nn.functional.mse_loss if loss_fn is None else loss_fn
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {describe(loss_fn)}")
    if test is not None:
        if not isinstance(test, tuple) or len(test) != 2 or not all(
                isinstance(t, torch.Tensor) for t in test):
            raise TypeError(f"test must be a pair (inputs, targets) of torch tensors, got "
                            f"{describe(test)}")
        if evaluate is not None:
            raise ValueError("give test or evaluate, not both")
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be callable as evaluate(model), got {describe(evaluate)}")
    wanted = sorted({check_int("checkpoints[k]", c, minimum=0) for c in checkpoints})
    if wanted and steps is not None and wanted[-1] > steps:
        raise ValueError(f"checkpoints must be at most steps = {steps}, got {wanted[-1]}")
    if wanted and test is None and evaluate is None:
        raise ValueError("checkpoints need a test set: pass test=(inputs, targets) or evaluate")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    device = parameters[0].device
    if isinstance(optimizer, str):
        make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        optimizer = make(parameters, lr=lr)
    if test is not None:
        def evaluate(m: nn.Module) -> float:
            return float(loss_fn(m(test[0].to(device)), test[1].to(device)))
    losses, norms, done, scores = [], [], [], []
    diverged_at = None
    if 0 in wanted:
        done.append(0)
        scores.append(_scored(model, evaluate))
    model.train()
    source = iter(()) if drawn else iter(draw_batch)
    step = 0
    while steps is None or step < steps:
        batch = draw_batch() if drawn else next(source, None)
        if batch is None:
            break
        step += 1
        inputs, *rest = (_to(part, device) for part in batch)
        loss = loss_fn(model(inputs), *rest)
        if loss.ndim:
            loss = loss.sum()  # one loss per network: each network's gradient is its own
        optimizer.zero_grad()
        loss.backward()
        norm = _clip(model, parameters, max_norm)
        losses.append(loss.item())
        norms.append(norm.item() if norm.ndim == 0 else norm.detach().cpu().numpy())
        finite = math.isfinite(losses[-1]) and bool(torch.isfinite(norm).all())
        if not finite and diverged_at is None:
            diverged_at = step
            if on_divergence == "stop":
                break
        optimizer.step()
        if step in wanted and step != steps:
            done.append(step)
            scores.append(_scored(model, evaluate))
    if evaluate is not None:
        done.append(len(losses) if diverged_at is None or on_divergence == "continue"
                    else diverged_at - 1)
        scores.append(_scored(model, evaluate))
    return StepHistory(losses=np.array(losses), grad_norms=np.array(norms), checkpoints=done,
                       test_losses=np.array(scores) if test is not None else np.array([]),
                       diverged_at=diverged_at,
                       evaluations=[] if test is not None else scores)
