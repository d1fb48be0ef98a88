"""Linear-recurrent against gated recurrent networks, at an equal parameter count, side by side.

The tasks are those of ``tasks.make_task`` (the adding problem, number agreement and
the counting language a^n b^n). Every model is a recurrent layer (or two) and a linear
read-out; every kind gets the parameter count of an LSTM with ``lstm_hidden_size`` units.

- ``MinNetwork``: minGRU or minLSTM layers (``linear_recurrence``) and a read-out.
- ``MinEnsemble``: K such networks, one per seed, with their parameters stacked along a
  first axis of size K, so that one call runs all of them. Network k is initialised
  exactly as ``MinNetwork`` after ``torch.manual_seed(seeds[k])``; nothing connects two
  networks, and each is clipped by its own gradient norm, so each trains as it would alone.
- ``gated_ensemble``: the same for ``torch.nn.LSTM`` and ``torch.nn.GRU`` networks
  (``ensembles.Ensemble``, block-diagonal weights).
- ``train_side_by_side``: the one training loop for every kind: Adam, a fresh batch per
  step from ``numpy.random.default_rng([seed, 1])`` (so networks with the same seed see
  the same batches whatever their kind), clipping by each network's own global norm, test
  scores at a few checkpoints.
- ``compare_recurrences``: every kind on one task from several seeds, with each kind's
  learning rate; ``tune_rates`` chooses those rates on validation data with the same
  effort for every kind; ``evidence`` gives the exact Mann-Whitney p of two kinds' scores.
- ``keep_bias``: every kind starts with the gate that keeps the state at sigma(keep_bias):
  the LSTM's forget gate, the GRU's update gate z (which keeps the state in PyTorch's
  convention), the minGRU's z and the minLSTM's normalised forget gate f / (f + i)
  (b_f = keep_bias, b_i = -keep_bias, since sigma(b) / (sigma(b) + sigma(-b)) = sigma(b)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import ensembles as cmp
from . import measure
from ._validate import check_choice, check_int, check_real, describe
from .linear_recurrence import (
    ALGORITHMS,
    MIN_GATES,
    MinGRU,
    MinLSTM,
    min_decay_increment,
    scan_cost,
    scan_schedule,
)
from .stats import mann_whitney

__all__ = [
    "MODEL_KINDS",
    "KIND_COLORS",
    "model_parameters",
    "hidden_size_for_parameters",
    "MinNetwork",
    "MinEnsemble",
    "gated_ensemble",
    "train_side_by_side",
    "evaluate_side_by_side",
    "RecurrenceComparison",
    "compare_recurrences",
    "tune_rates",
    "evidence",
    "draw_recurrence_comparison",
    "draw_scan_schedule",
]

MODEL_KINDS = {
    "LSTM": ("LSTM", 1),
    "GRU": ("GRU", 1),
    "minGRU": ("minGRU", 1),
    "minLSTM": ("minLSTM", 1),
    "minGRU, 2 layers": ("minGRU", 2),
    "minLSTM, 2 layers": ("minLSTM", 2),
}
"""The kinds of model compared: the layer and the number of stacked layers."""

KIND_COLORS = {"LSTM": "#0072B2", "GRU": "#D55E00", "minGRU": "#E69F00",
               "minLSTM": "#009E73", "minGRU, 2 layers": "#CC79A7",
               "minLSTM, 2 layers": "#56B4E9"}
"""One colour per kind (LSTM and GRU as in the comparison chapter)."""


def _check_kind(kind: Any) -> str:
    return check_choice("kind", kind, tuple(MODEL_KINDS))


def model_parameters(kind: str, input_size: int, hidden_size: int, output_size: int) -> int:
    """Parameters of a model of ``kind``: its layer(s) and a linear read-out O (H + 1).

    LSTM and GRU: G H (I + H + 2) with PyTorch's two bias vectors
    (``measure.parameter_count``). minGRU and minLSTM: G H (I + 1) for the first layer
    and G H (H + 1) for a second (``linear_recurrence.min_parameter_count``).
    """
    layer, layers = MODEL_KINDS[_check_kind(kind)]
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    output_size = check_int("output_size", output_size, minimum=1)
    readout = output_size * (hidden_size + 1)
    if layer in measure.GATES:
        return measure.parameter_count(layer, input_size, hidden_size) + readout
    gates = MIN_GATES[layer]
    return (gates * hidden_size * (input_size + 1)
            + (layers - 1) * gates * hidden_size * (hidden_size + 1) + readout)


def hidden_size_for_parameters(kind: str, budget: int, input_size: int,
                               output_size: int) -> int:
    """The hidden size whose model (``model_parameters``) comes closest to ``budget``.

    The count is a polynomial in H of degree 1 (one min layer) or 2 (the others), so the
    real root is found first and its two integer neighbours compared; ties go to the
    smaller size.
    """
    _check_kind(kind)
    budget = check_int("budget", budget, minimum=1)
    counts = [model_parameters(kind, input_size, h, output_size) for h in (1, 2, 3)]
    # counts(h) = a h^2 + b h + c from three values (exact for degree <= 2)
    a = (counts[2] - 2 * counts[1] + counts[0]) / 2
    b = counts[1] - counts[0] - 3 * a
    c = counts[0] - a - b
    if a == 0:
        root = (budget - c) / b
    else:
        root = (-b + math.sqrt(b * b - 4 * a * (c - budget))) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates), key=lambda h: abs(model_parameters(
        kind, input_size, h, output_size) - budget))


# --------------------------------------------------------------------------------------
# Minimal recurrent networks, alone and side by side
# --------------------------------------------------------------------------------------


def _set_keep_bias(layer: nn.Module, keep_bias: float) -> None:
    """The minGRU's z (blocks z, n) or the minLSTM's f / (f + i) (blocks i, f, g) at sigma(keep)."""
    hidden = layer.hidden_size
    with torch.no_grad():
        if layer.kind == "minGRU":
            layer.bias_ih[:hidden] = keep_bias
        else:
            layer.bias_ih[:hidden] = -keep_bias
            layer.bias_ih[hidden:2 * hidden] = keep_bias


class MinNetwork(nn.Module):
    """minGRU or minLSTM layers and a linear read-out: (T, B, I) -> (B, O), or (T, B, O).

    Parameters
    ----------
    kind : {"minGRU", "minLSTM"}
    input_size, hidden_size, output_size : int
    num_layers : int
        Stacked layers; layer l + 1 reads the states of layer l.
    per_step : bool
        Read out every step (T, B, O) instead of the last one (B, O).
    keep_bias : float or None
        Start the gate that keeps the state at sigma(keep_bias) in every layer (see the
        module's description); None keeps the layers' initialisation.
    method : str
        How the layers compute their recurrence (``MinGRU``'s ``method``).
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, per_step: bool = False, keep_bias: float | None = None,
                 method: str = "sequential", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_choice("kind", kind, ("minGRU", "minLSTM"))
        num_layers = check_int("num_layers", num_layers, minimum=1)
        layer_class = MinGRU if kind == "minGRU" else MinLSTM
        self.kind, self.per_step = kind, bool(per_step)
        self.layers = nn.ModuleList([
            layer_class(input_size if index == 0 else hidden_size, hidden_size, method=method,
                        dtype=dtype) for index in range(num_layers)])
        self.head = nn.Linear(hidden_size, output_size, dtype=dtype)
        if keep_bias is not None:
            keep_bias = check_real("keep_bias", keep_bias)
            for layer in self.layers:
                _set_keep_bias(layer, keep_bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        states = inputs
        for layer in self.layers:
            states, _ = layer(states)
        return self.head(states if self.per_step else states[-1])


class MinEnsemble(nn.Module):
    """K ``MinNetwork`` s, one per seed, with their parameters stacked on a first axis of size K.

    Parameters (for layer l): ``weight_ih_l{l}`` (K, G H, I_l), ``bias_ih_l{l}`` (K, G H);
    ``head_weight`` (K, O, H), ``head_bias`` (K, O). Network k is initialised exactly as
    ``MinNetwork(kind, I, H, O, ...)`` built after ``torch.manual_seed(seeds[k])``;
    ``network(k)`` returns it as a standalone module. The interface is that of
    ``ensembles.Ensemble``: inputs (T, B, K I), outputs (B, K, O) or (T, B, K, O),
    ``stack_inputs`` and ``clip_per_network``.
    """

    def __init__(self, kind: str, seeds: Sequence[int], input_size: int, hidden_size: int,
                 output_size: int, *, num_layers: int = 1, per_step: bool = False,
                 keep_bias: float | None = None, method: str = "sequential",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        seeds = [check_int("seeds[k]", seed, minimum=0) for seed in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per network)")
        self.kind, self.seeds, self.members = kind, tuple(seeds), len(seeds)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.num_layers, self.per_step, self.method = num_layers, bool(per_step), method
        self.keep_bias = keep_bias
        networks = []
        for seed in seeds:
            torch.manual_seed(seed)
            networks.append(MinNetwork(kind, input_size, hidden_size, output_size,
                                       num_layers=num_layers, per_step=per_step,
                                       keep_bias=keep_bias, method=method, dtype=dtype))
        for name, _ in self._pairs(networks[0]):
            stacked = torch.stack([dict(self._pairs(n))[name].detach() for n in networks])
            self.register_parameter(name, nn.Parameter(stacked.clone()))

    @staticmethod
    def _pairs(network: MinNetwork) -> list[tuple[str, torch.Tensor]]:
        """A network's parameters under the ensemble's names."""
        pairs = []
        for index, layer in enumerate(network.layers):
            pairs += [(f"weight_ih_l{index}", layer.weight_ih), (f"bias_ih_l{index}",
                                                                  layer.bias_ih)]
        return [*pairs, ("head_weight", network.head.weight), ("head_bias", network.head.bias)]

    def network(self, k: int) -> MinNetwork:
        """Network k as a standalone ``MinNetwork`` (a copy)."""
        k = check_int("k", k, minimum=0)
        if k >= self.members:
            raise ValueError(f"k must be in 0 .. {self.members - 1}, got {k}")
        network = MinNetwork(self.kind, self.input_size, self.hidden_size, self.output_size,
                             num_layers=self.num_layers, per_step=self.per_step,
                             method=self.method, dtype=self.head_weight.dtype)
        with torch.no_grad():
            for name, parameter in self._pairs(network):
                parameter.copy_(self.get_parameter(name)[k].detach().cpu())
        return network

    # K input batches (T, B, I), one per network, or one shared by all -> (T, B, K I): the
    # same as the gated ensemble's, which reads only ``members``.
    stack_inputs = cmp.Ensemble.stack_inputs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(T, B, K I) -> (B, K, O), or (T, B, K, O) with ``per_step``.

        The gate arithmetic runs network-major, (K, T, B, .), which keeps every tensor
        contiguous for the batched products; the scan reads it time-major through a view.
        """
        from .linear_recurrence import linear_scan

        length, batch, _ = inputs.shape
        features = inputs.reshape(length * batch, self.members, -1).transpose(0, 1)
        for index in range(self.num_layers):
            weight = self.get_parameter(f"weight_ih_l{index}")                # (K, G H, I)
            bias = self.get_parameter(f"bias_ih_l{index}")                    # (K, G H)
            pre = torch.baddbmm(bias[:, None, :], features, weight.transpose(1, 2))
            decay, increment = min_decay_increment(self.kind, pre)            # (K, T B, H)
            shape = (self.members, length, batch, self.hidden_size)
            states = linear_scan(decay.view(shape).transpose(0, 1),
                                 increment.view(shape).transpose(0, 1),
                                 algorithm=self.method)                       # (T, K, B, H)
            features = states.transpose(0, 1).reshape(self.members, length * batch, -1)
        if self.per_step:
            outputs = torch.baddbmm(self.head_bias[:, None, :], features,
                                    self.head_weight.transpose(1, 2))         # (K, T B, O)
            return outputs.view(self.members, length, batch, -1).permute(1, 2, 0, 3)
        outputs = torch.baddbmm(self.head_bias[:, None, :], states[-1],
                                self.head_weight.transpose(1, 2))             # (K, B, O)
        return outputs.transpose(0, 1)

    def clip_per_network(self, max_norm: float) -> torch.Tensor:
        """Clip each network's gradient by its own global norm; return the norms (K,)."""
        max_norm = check_real("max_norm", max_norm, positive=True)
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        squares = sum(g.reshape(self.members, -1).double().square().sum(dim=1) for g in grads)
        norms = squares.sqrt()
        factors = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for grad in grads:
            grad.mul_(factors.to(grad.dtype).reshape(-1, *[1] * (grad.ndim - 1)))
        return norms


def gated_ensemble(kind: str, seeds: Sequence[int], input_size: int, hidden_size: int,
                   output_size: int, *, per_step: bool = False,
                   keep_bias: float | None = None) -> cmp.Ensemble:
    """K ``torch.nn.LSTM`` or ``torch.nn.GRU`` networks side by side (``ensembles.Ensemble``).

    ``keep_bias`` sets the effective bias of the gate that keeps the state in every network:
    the LSTM's forget gate or the GRU's update gate (``ensembles.Ensemble``'s
    ``forget_bias`` and ``update_bias``, which ``gates.set_forget_bias`` and
    ``gates.set_update_bias`` apply); None keeps PyTorch's initialisation.
    """
    check_choice("kind", kind, ("LSTM", "GRU"))
    if keep_bias is not None:
        keep_bias = check_real("keep_bias", keep_bias)
    biases = ({"forget_bias": keep_bias} if kind == "LSTM"
              else {"forget_bias": None, "update_bias": keep_bias})
    return cmp.Ensemble(kind, seeds, input_size, hidden_size, output_size, per_step=per_step,
                        **biases)


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _per_network(part: Any, members: int) -> Any:
    """Targets or mask (B,) / (T, B) -> (B, K) / (T, B, K), the same for every network."""
    return None if part is None else part.unsqueeze(-1).expand(*part.shape, members)


def evaluate_side_by_side(model: nn.Module, task: cmp.Task, data: tuple[Any, Any, Any]
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Scores and losses (K,) of every network on ``data`` = (inputs, targets, mask)."""
    if not isinstance(task, cmp.Task):
        raise TypeError(f"task must be a tasks.Task (from tasks.make_task), got {describe(task)}")
    device = next(model.parameters()).device
    inputs, targets, mask = (_to(part, device) for part in data)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(model.stack_inputs(inputs))
        targets, mask = (_per_network(part, model.members) for part in (targets, mask))
        losses = task.loss(outputs, targets, mask).double().cpu().numpy()
        scores = task.score(outputs, targets, mask)
    model.train(was_training)
    return np.asarray(scores, dtype=float), losses


def train_side_by_side(model: nn.Module, task: cmp.Task, *, steps: int, batch_size: int = 64,
                       lr: float = 0.01, max_norm: float = 1.0, evaluations: int = 4,
                       test: tuple[Any, Any, Any] | None = None) -> tuple[list[int], np.ndarray]:
    """Train the K networks of ``model`` (``MinEnsemble`` or ``ensembles.Ensemble``) in place.

    Each step draws one batch per network from ``default_rng([seed, 1])``, computes the
    sum of the K losses (each network's gradient is its own loss's), zeroes the gradients
    between networks (``mask_gradients``, for ``ensembles.Ensemble``), clips each
    network's gradient by its own global norm and takes one Adam step. The test set
    (``task.test()`` unless ``test`` is given) is scored at ``evaluations`` checkpoints
    spread evenly, the last after the last step.

    Returns
    -------
    checkpoints : list of int
        The steps after which the test set was scored.
    scores : ndarray, shape (len(checkpoints), K)
    """
    if not isinstance(task, cmp.Task):
        raise TypeError(f"task must be a tasks.Task (from tasks.make_task), got {describe(task)}")
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_real("lr", lr, positive=True)
    max_norm = check_real("max_norm", max_norm, positive=True)
    evaluations = check_int("evaluations", evaluations, minimum=1)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generators = [np.random.default_rng([seed, 1]) for seed in model.seeds]
    test = task.test() if test is None else test
    checkpoints = sorted({max(1, round(steps * (j + 1) / evaluations))
                          for j in range(evaluations)})
    scores = []
    model.train()
    for step in range(1, steps + 1):
        parts = [task.batch(batch_size, generator) for generator in generators]
        inputs = model.stack_inputs([part[0] for part in parts]).to(device)
        targets = torch.stack([part[1] for part in parts], dim=-1).to(device)
        mask = None if parts[0][2] is None else torch.stack([p[2] for p in parts], -1).to(device)
        optimizer.zero_grad()
        task.loss(model(inputs), targets, mask).sum().backward()
        if hasattr(model, "mask_gradients"):
            model.mask_gradients()
        model.clip_per_network(max_norm)
        optimizer.step()
        if step in checkpoints:
            scores.append(evaluate_side_by_side(model, task, test)[0])
    model.eval()
    return checkpoints, np.array(scores)


# --------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------


@dataclass
class RecurrenceComparison:
    """Every kind trained on one task at an equal parameter count, from several seeds.

    Attributes
    ----------
    task : tasks.Task
    seeds : tuple of int
    hidden_sizes, parameters : dict
        H and the model's parameter count of each kind.
    steps : list of int
        Checkpoints at which the test set was scored.
    scores : dict
        ``scores[kind]``, shape (len(steps), len(seeds)).
    seconds : dict
        CPU time (``time.process_time``) of each kind's training.
    settings : dict
        Steps, batch size, each kind's learning rate, clipping, keep bias.
    models : dict
        The trained ensembles.
    """

    task: cmp.Task
    seeds: tuple[int, ...]
    hidden_sizes: dict[str, int]
    parameters: dict[str, int]
    steps: list[int]
    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    settings: dict[str, Any]
    models: dict[str, nn.Module] = field(default_factory=dict, repr=False)

    @property
    def kinds(self) -> list[str]:
        """The kinds compared, in order."""
        return list(self.scores)

    def final(self, kind: str) -> np.ndarray:
        """The final test score of every seed of ``kind``, shape (seeds,)."""
        return self.scores[kind][-1]

    def solved(self, kind: str) -> int:
        """How many seeds of ``kind`` reached the task's threshold."""
        return int((self.final(kind) >= self.task.solved).sum())


def _rates(lr: float | Mapping[str, float], kinds: Sequence[str]) -> dict[str, float]:
    if isinstance(lr, Mapping):
        missing = [kind for kind in kinds if kind not in lr]
        if missing:
            raise ValueError(f"lr must give a rate for every kind {list(kinds)}, got "
                             f"{dict(lr)!r} (missing {missing})")
        return {kind: check_real(f"lr[{kind!r}]", lr[kind], positive=True) for kind in kinds}
    return dict.fromkeys(kinds, check_real("lr", lr, positive=True))


def build_ensemble(kind: str, task: cmp.Task, hidden_size: int, seeds: Sequence[int], *,
                   keep_bias: float | None = 1.0, method: str = "sequential") -> nn.Module:
    """The K untrained networks of ``kind`` for ``task`` (``MinEnsemble`` or ``gated_ensemble``)."""
    layer, layers = MODEL_KINDS[_check_kind(kind)]
    if layer in ("LSTM", "GRU"):
        return gated_ensemble(layer, seeds, task.input_size, hidden_size, task.output_size,
                              per_step=task.per_step, keep_bias=keep_bias)
    return MinEnsemble(layer, seeds, task.input_size, hidden_size, task.output_size,
                       num_layers=layers, per_step=task.per_step, keep_bias=keep_bias,
                       method=method)


def compare_recurrences(task: cmp.Task, *, kinds: Iterable[str] = ("LSTM", "GRU", "minGRU",
                                                                    "minLSTM"),
                        lstm_hidden_size: int = 16, seeds: Iterable[int] = range(5),
                        steps: int = 200, batch_size: int = 64,
                        lr: float | Mapping[str, float] = 0.01, max_norm: float = 1.0,
                        keep_bias: float | None = 1.0, evaluations: int = 4,
                        method: str = "sequential", device: Any = "cpu"
                        ) -> RecurrenceComparison:
    """Train every kind on ``task`` with the parameter count of an LSTM of ``lstm_hidden_size``.

    Every kind trains with ``train_side_by_side`` for the same ``steps`` from the same
    ``seeds`` (same initial seeds, same batches), with its own learning rate if ``lr`` is a
    mapping, and the same ``keep_bias``. ``method`` is how the min layers compute their
    recurrence during training (``"sequential"``: fastest on a CPU).

    Returns
    -------
    RecurrenceComparison
    """
    if not isinstance(task, cmp.Task):
        raise TypeError(f"task must be a tasks.Task (from tasks.make_task), got {describe(task)}")
    kinds = [_check_kind(kind) for kind in kinds]
    seeds = tuple(check_int("seed", seed, minimum=0) for seed in seeds)
    if not kinds or not seeds:
        raise ValueError(f"kinds and seeds must not be empty, got {kinds} and {seeds}")
    rates = _rates(lr, kinds)
    budget = model_parameters("LSTM", task.input_size, lstm_hidden_size, task.output_size)
    device = torch.device(device)
    sizes, parameters, scores, seconds, models = {}, {}, {}, {}, {}
    checkpoints: list[int] = []
    test = task.test()
    for kind in kinds:
        sizes[kind] = hidden_size_for_parameters(kind, budget, task.input_size,
                                                 task.output_size)
        parameters[kind] = model_parameters(kind, task.input_size, sizes[kind],
                                            task.output_size)
        start = time.process_time()
        model = build_ensemble(kind, task, sizes[kind], seeds, keep_bias=keep_bias,
                               method=method).to(device)
        checkpoints, scores[kind] = train_side_by_side(
            model, task, steps=steps, batch_size=batch_size, lr=rates[kind],
            max_norm=max_norm, evaluations=evaluations, test=test)
        seconds[kind] = time.process_time() - start
        models[kind] = model
    settings = {"steps": steps, "batch_size": batch_size, "lr": rates, "max_norm": max_norm,
                "keep_bias": keep_bias, "lstm_hidden_size": lstm_hidden_size}
    return RecurrenceComparison(task=task, seeds=seeds, hidden_sizes=sizes,
                                parameters=parameters, steps=checkpoints, scores=scores,
                                seconds=seconds, settings=settings, models=models)


def tune_rates(task: cmp.Task, validation: tuple[Any, Any, Any],
               rates: Iterable[float] = (0.003, 0.01, 0.03), *,
               kinds: Iterable[str] = ("LSTM", "GRU", "minGRU", "minLSTM"),
               seeds: Iterable[int] = range(3), **settings: Any
               ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The same tuning effort for every kind: each rate, each seed, scored on validation data.

    Every kind trains (``compare_recurrences``) once per rate from every seed and is scored
    on ``validation`` (data no network trains on, not the test set). A kind's chosen rate
    has the smallest mean validation loss over the seeds (a non-finite loss counts as
    infinite; ties go to the earlier rate).

    Returns
    -------
    chosen : dict
        The chosen rate of each kind.
    losses : dict
        ``losses[kind]``, shape (len(rates), len(seeds)): the validation losses.
    """
    if "lr" in settings:
        raise TypeError("tune_rates sets lr itself; pass the candidates as rates")
    rates = tuple(check_real("rates[i]", rate, positive=True) for rate in rates)
    kinds, seeds = list(kinds), tuple(seeds)
    if not rates:
        raise ValueError("rates must hold at least one learning rate")
    losses = {kind: np.empty((len(rates), len(seeds))) for kind in kinds}
    for i, rate in enumerate(rates):
        result = compare_recurrences(task, kinds=kinds, seeds=seeds, lr=rate, evaluations=1,
                                     **settings)
        for kind in kinds:
            losses[kind][i] = evaluate_side_by_side(result.models[kind], task, validation)[1]
    chosen = {}
    for kind in kinds:
        finite = np.where(np.isfinite(losses[kind]), losses[kind], np.inf)
        chosen[kind] = rates[int(np.argmin(finite.mean(axis=1)))]
    return chosen, losses


def evidence(first: Sequence[float], second: Sequence[float]) -> dict[str, Any]:
    """How strongly two kinds' final scores differ: separation, exact Mann-Whitney p, margin.

    Returns a dict with ``separated`` (every seed of one kind above every seed of the
    other), ``margin`` (the worst of the better kind minus the best of the other; negative
    when they overlap), ``p`` (exact two-sided Mann-Whitney) and ``smallest_p`` (the
    smallest p these numbers of seeds allow).
    """
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    test = mann_whitney(first, second)
    margin = max(first.min() - second.max(), second.min() - first.max())
    return {"separated": bool(margin > 0), "margin": float(margin), "p": test.p,
            "smallest_p": test.smallest_p}


def draw_recurrence_comparison(ax: Any, result: RecurrenceComparison, *,
                               legend: bool = True) -> Any:
    """Test score against training steps: every seed thin, the median thick, chance dotted."""
    for kind in result.kinds:
        color = KIND_COLORS[kind]
        scores = np.asarray(result.scores[kind], dtype=float)
        for column in scores.T:
            ax.plot(result.steps, column, color=color, linewidth=0.6, alpha=0.5)
        ax.plot(result.steps, np.median(scores, axis=1), color=color, linewidth=2.0,
                label=f"{kind} (H = {result.hidden_sizes[kind]})")
    ax.axhline(result.task.chance, color="black", linestyle=":", linewidth=1.0)
    ax.set_title(result.task.label)
    ax.set_xlabel("training step")
    ax.set_ylabel(result.task.score_name)
    if legend:
        ax.legend(fontsize=10)
    return ax


def draw_scan_schedule(ax: Any, length: int, algorithm: str, *, color: str = "#0072B2",
                       title: bool = True) -> Any:
    """Draw which positions each round of a scan combines (``scan_schedule``), top to bottom.

    Positions run along the x axis (0 .. T - 1; Blelloch's padded tree up to
    2^ceil(log2 T) - 1), rounds down the y axis. An arrow from (s, round r) to
    (t, round r + 1) says that in round r position t combined its value with position s's;
    a position that nothing touches in a round keeps its value (a grey dot). The title gives
    ``scan_cost``'s depth (rounds) and work (combines). This is the callback of the chapter's
    explorer; it returns ``ax``.
    """
    length = check_int("length", length, minimum=1)
    check_choice("algorithm", algorithm, ALGORITHMS)
    schedule = scan_schedule(length, algorithm)
    cost = scan_cost(length, algorithm)
    width = length if algorithm != "blelloch" else 2 ** (length - 1).bit_length()
    rounds = len(schedule)
    for row in range(rounds + 1):
        ax.scatter(range(width), [row] * width, s=8, color="#6E6E6E", zorder=2)
    for row, edges in enumerate(schedule):
        for source, target in edges:
            start = max(source, 0) if source >= 0 else target
            ax.annotate("", xy=(target, row + 1), xytext=(start, row),
                        arrowprops={"arrowstyle": "->", "color": color, "linewidth": 0.7,
                                    "shrinkA": 2, "shrinkB": 2})
    ax.set_xlim(-0.7, width - 0.3)
    ax.set_ylim(rounds + 0.4, -0.4)
    ax.set_xlabel("position t")
    ax.set_ylabel("round")
    if title:
        names = {"sequential": "loop", "hillis_steele": "Hillis–Steele",
                 "blelloch": "Blelloch"}
        ax.set_title(f"{names[algorithm]}, T = {length}\ndepth {cost.depth}, "
                     f"work {cost.work}", fontsize=10)
    return ax
