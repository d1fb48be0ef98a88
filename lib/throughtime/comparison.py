r"""LSTM or GRU? Accuracy of the three recurrent layers, trained side by side.

The chapter "Choosing between LSTM and GRU" tests the claims usually made about the two
layers. Its measuring instruments (parameter and FLOP counts, timing, operator counts)
live in ``measure``; this module trains and compares:

- **Accuracy.** On a ``tasks.Task`` (``tasks.make_task``: the adding problem, number
  agreement and the counting language a^n b^n as batches, a loss and a score),
  ``Ensemble`` trains several independent networks of one kind side by side as one wide
  ``torch.nn`` layer whose weight matrices are block-diagonal; ``train_ensemble`` trains a
  few per layer;
  ``compare`` trains every kind at an equal parameter count for the same number of steps
  from several seeds (each kind with its own learning rate if asked),
  ``tune_learning_rates`` chooses those rates on validation data with the same effort for
  every kind, ``data_size_sweep`` compares on training sets of several sizes, and
  ``verdict`` says which kind won, only when every seed agrees.
- **Pictures.** ``draw_comparison`` draws one comparison into an ``Axes`` (a diverged run
  at ``score_floor``, marked, so that it does not squash the other curves);
  ``comparison_small_multiples`` puts several side by side (the static figure of the
  website); ``explorers.comparison_explorer`` is the ipywidgets version of the live
  notebook.

Kinds are named like their ``torch.nn`` classes: ``"RNN"`` (tanh), ``"LSTM"``, ``"GRU"``
(``measure.KINDS``). Notation: I inputs, H hidden units, O outputs, T time steps,
B sequences per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_int, check_real, describe
from .measure import GATES, KINDS, check_kind, matched_hidden_sizes, model_parameter_count
from .tasks import Task
from .training import train_steps

__all__ = [
    "KIND_COLORS",
    "Ensemble",
    "GROUP_SIZE",
    "TrainedEnsemble",
    "train_ensemble",
    "Comparison",
    "compare",
    "verdict",
    "Tuning",
    "tune_learning_rates",
    "SweepResult",
    "data_size_sweep",
    "score_floor",
    "draw_comparison",
    "comparison_small_multiples",
]


# --------------------------------------------------------------------------------------
# Several networks trained side by side
# --------------------------------------------------------------------------------------


class Ensemble(nn.Module):
    """K independent networks of one kind, packed into one wide ``torch.nn`` layer.

    Network k is a ``torch.nn.<kind>(I, H)`` layer and a ``torch.nn.Linear(H, O)`` read-out,
    initialised exactly as if built alone after ``torch.manual_seed(seeds[k])`` (and, for
    an LSTM, given the effective forget-gate bias ``forget_bias``; for a GRU, the effective
    update-gate bias ``update_bias``). The ensemble holds
    them in one ``torch.nn.<kind>(K I, K H)`` and one ``Linear(K H, K O)`` whose weight
    matrices are block-diagonal inside every gate block: network k reads input features
    k I .. (k + 1) I - 1 and owns hidden units k H .. (k + 1) H - 1, and every weight
    between two networks is zero. ``mask_gradients`` keeps those weights at zero, so the
    networks never interact; with ``clip_per_network`` each is clipped by its own gradient
    norm. Training the ensemble on the sum of the K losses with Adam (which updates every
    weight from its own gradient alone) then trains each network exactly as it would be
    trained alone, up to rounding, in one call of the layer per step instead of K.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    seeds : sequence of int
        One seed per network.
    input_size, hidden_size, output_size : int
        I, H and O of each network.
    forget_bias : float or None
        For an LSTM, the effective forget-gate bias of every network
        (``gates.set_forget_bias``); ``None`` keeps PyTorch's initialisation.
    update_bias : float or None
        For a GRU, the effective update-gate bias b_iz + b_hz of every network
        (``gates.set_update_bias``), the GRU's counterpart of the forget bias: z_t
        keeps the old state; ``None`` keeps PyTorch's initialisation.
    per_step : bool
        Answer at every step (outputs (T, B, K, O)) instead of after the last one
        (outputs (B, K, O)).
    dtype : torch.dtype
    """

    def __init__(self, kind: str, seeds: Sequence[int], input_size: int, hidden_size: int,
                 output_size: int, *, forget_bias: float | None = 1.0,
                 update_bias: float | None = None, per_step: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_kind(kind)
        seeds = [check_int("seeds[k]", seed, minimum=0) for seed in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per network)")
        input_size = check_int("input_size", input_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        output_size = check_int("output_size", output_size, minimum=1)
        if forget_bias is not None:
            forget_bias = check_real("forget_bias", forget_bias)
        if update_bias is not None:
            update_bias = check_real("update_bias", update_bias)
        members = len(seeds)
        self.kind, self.seeds, self.members = kind, tuple(seeds), members
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.per_step = bool(per_step)
        self.layer = getattr(nn, kind)(members * input_size, members * hidden_size, dtype=dtype)
        self.head = nn.Linear(members * hidden_size, members * output_size, dtype=dtype)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.zero_()
            for k, seed in enumerate(seeds):
                layer, head = self._network(seed, forget_bias, update_bias, dtype)
                for name, value in self._named(layer, head):
                    self.get_parameter(name)[self._block_index(name, k)] = value
        # owner[name]: which network each entry belongs to, ``members`` for none.
        self._owners = {name: self._owner(name) for name, _ in self.named_parameters()}
        self._between: dict[torch.device, torch.Tensor] = {}  # (1, K, 1, K, 1): j != k

    # -- construction -------------------------------------------------------------------

    def _network(self, seed: int, forget_bias: float | None, update_bias: float | None,
                 dtype: torch.dtype) -> tuple[nn.Module, nn.Linear]:
        """Network ``seed`` alone, initialised as ``torch.nn`` initialises it."""
        torch.manual_seed(seed)
        layer = getattr(nn, self.kind)(self.input_size, self.hidden_size, dtype=dtype)
        head = nn.Linear(self.hidden_size, self.output_size, dtype=dtype)
        if self.kind == "LSTM" and forget_bias is not None:
            from .gates import set_forget_bias

            set_forget_bias(layer, forget_bias)
        if self.kind == "GRU" and update_bias is not None:
            from .gates import set_update_bias

            set_update_bias(layer, update_bias)
        return layer, head

    def _rows(self, k: int, block: int, gates: int) -> torch.Tensor:
        """Rows of network k along an axis of G gate blocks, each holding K blocks of rows."""
        wide = self.members * block
        return torch.cat([torch.arange(g * wide + k * block, g * wide + (k + 1) * block)
                          for g in range(gates)])

    def _block_index(self, name: str, k: int) -> tuple[Any, ...]:
        """Index of network k's entries in the ensemble parameter ``name``."""
        H, I, O = self.hidden_size, self.input_size, self.output_size
        if name.startswith("layer."):
            rows = self._rows(k, H, GATES[self.kind])
            if name.startswith("layer.weight_ih"):
                return rows[:, None], torch.arange(k * I, (k + 1) * I)[None, :]
            if name.startswith("layer.weight_hh"):
                return rows[:, None], torch.arange(k * H, (k + 1) * H)[None, :]
            return (rows,)
        rows = torch.arange(k * O, (k + 1) * O)
        if name == "head.weight":
            return rows[:, None], torch.arange(k * H, (k + 1) * H)[None, :]
        return (rows,)

    @staticmethod
    def _named(layer: nn.Module, head: nn.Linear) -> list[tuple[str, Any]]:
        """One network's parameters under the names of the ensemble's parameters."""
        values = [(f"layer.{name}", parameter) for name, parameter in layer.named_parameters()]
        values += [("head.weight", head.weight), ("head.bias", head.bias)]
        return values

    def _owner(self, name: str) -> torch.Tensor:
        owner = torch.full(self.get_parameter(name).shape, self.members, dtype=torch.long)
        for k in range(self.members):
            owner[self._block_index(name, k)] = k
        return owner.reshape(-1)

    # -- use ----------------------------------------------------------------------------

    def network(self, k: int) -> tuple[nn.Module, nn.Linear]:
        """Network k as a standalone ``torch.nn.<kind>(I, H)`` and ``Linear(H, O)`` (copies)."""
        k = check_int("k", k, minimum=0)
        if k >= self.members:
            raise ValueError(f"k must be in 0 .. {self.members - 1}, got {k}")
        dtype = self.head.weight.dtype
        layer = getattr(nn, self.kind)(self.input_size, self.hidden_size, dtype=dtype)
        head = nn.Linear(self.hidden_size, self.output_size, dtype=dtype)
        with torch.no_grad():
            for name, value in self._named(layer, head):
                value.copy_(self.get_parameter(name).detach().cpu()[self._block_index(name, k)])
        return layer, head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run all K networks, each on its own slice of the inputs.

        Parameters
        ----------
        inputs : Tensor, shape (T, B, K I)
            Network k reads features k I .. (k + 1) I - 1 (``stack_inputs`` builds them).

        Returns
        -------
        Tensor
            (B, K, O) from the last step, or (T, B, K, O) with ``per_step``.
        """
        states, _ = self.layer(inputs)
        if not self.per_step:
            states = states[-1]
        outputs = self.head(states)
        return outputs.reshape(*outputs.shape[:-1], self.members, self.output_size)

    def stack_inputs(self, inputs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """K input batches (T, B, I), one per network, or one shared by all -> (T, B, K I)."""
        if isinstance(inputs, torch.Tensor):
            return inputs.repeat(1, 1, self.members)
        if len(inputs) != self.members:
            raise ValueError(f"inputs must hold one batch per network ({self.members}), "
                             f"got {len(inputs)}")
        return torch.cat(list(inputs), dim=-1)

    def _blocks(self, name: str) -> tuple[int, int, int, int]:
        """(G, R, C, K) such that parameter ``name`` is a (G, K, R, K, C) block grid.

        Every ensemble parameter stacks, for each of G gate blocks (1 for the read-out), the
        K networks' rows; a weight matrix has K column blocks too (C columns each), a bias
        vector none (C = 0). Network k owns the diagonal blocks [:, k, :, k, :].
        """
        H, I, O, K = self.hidden_size, self.input_size, self.output_size, self.members
        if name.startswith("layer."):
            gates = GATES[self.kind]
            if name.startswith("layer.weight_ih"):
                return gates, H, I, K
            if name.startswith("layer.weight_hh"):
                return gates, H, H, K
            return gates, H, 0, K
        return 1, O, (H if name == "head.weight" else 0), K

    def _diagonal(self, name: str, grad: torch.Tensor) -> torch.Tensor:
        """Network k's entries of ``grad`` along the last axis: shape (..., K)."""
        gates, rows, columns, members = self._blocks(name)
        if not columns:
            return grad.reshape(gates, members, rows).movedim(1, -1)
        grid = grad.view(gates, members, rows, members, columns)
        return torch.diagonal(grid, dim1=1, dim2=3)

    def mask_gradients(self) -> None:
        """Zero the gradients of the weights between networks (they stay exactly 0)."""
        for name, parameter in self.named_parameters():
            gates, rows, columns, members = self._blocks(name)
            if parameter.grad is None or not columns:
                continue  # a bias vector has no entries between networks
            outside = self._between.get(parameter.device)
            if outside is None:
                eye = torch.eye(members, dtype=torch.bool, device=parameter.device)
                outside = self._between[parameter.device] = ~eye[None, :, None, :, None]
            grid = parameter.grad.view(gates, members, rows, members, columns)
            grid.masked_fill_(outside, 0.0)

    def clip_per_network(self, max_norm: float | None) -> torch.Tensor:
        """Clip each network's gradient by its own global norm, like ``clip_grad_norm_``.

        Network k's gradient is multiplied by min(1, max_norm / (||g_k|| + 1e-6)), where
        ||g_k|| is the norm over all of network k's entries, the factor
        ``torch.nn.utils.clip_grad_norm_`` applies to a network trained alone. Call it after
        ``mask_gradients``: the rows of network k are scaled whole, so entries between
        networks must already be zero.

        Returns
        -------
        Tensor, shape (K,)
            The norms before clipping.
        """
        if max_norm is not None:
            max_norm = check_real("max_norm", max_norm, positive=True)
        named = [(name, p) for name, p in self.named_parameters() if p.grad is not None]
        device = named[0][1].device
        squares = torch.zeros(self.members, dtype=torch.float64, device=device)
        for name, parameter in named:
            own = self._diagonal(name, parameter.grad).double()
            squares += own.square().reshape(-1, self.members).sum(dim=0)
        norms = squares.sqrt()
        if max_norm is None:
            return norms
        factors = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for name, parameter in named:
            gates, _, _, members = self._blocks(name)
            rows = parameter.grad.view(gates, members, -1)
            rows.mul_(factors.to(parameter.dtype)[None, :, None])
        return norms

    def clip_gradients(self, max_norm: float | None = None) -> torch.Tensor:
        """Keep the networks apart and clip each by its own norm (``training.train_steps``'s hook).

        ``mask_gradients``, then ``clip_per_network(max_norm)`` (only the norms are measured
        when ``max_norm`` is ``None``).

        Returns
        -------
        Tensor, shape (K,)
            Each network's gradient norm before clipping.
        """
        self.mask_gradients()
        return self.clip_per_network(max_norm)


GROUP_SIZE = 4
"""How many networks ``train_ensemble`` packs into one ``Ensemble`` by default.

The block-diagonal layer computes every product between networks too (with zeros), so its
arithmetic grows as K^2 while the fixed cost of a call does not grow at all: a few networks
per layer save calls, many waste products. Four was about the fastest on a 2-core CPU, for
the chapter's sizes, both with the native kernels and with the baseline (SSE4.1) ones."""


@dataclass
class TrainedEnsemble:
    """What ``train_ensemble`` returns: K trained networks, in groups, and their scores.

    Attributes
    ----------
    ensembles : list of Ensemble
        The trained networks, ``group_size`` per ``Ensemble`` (the last may hold fewer),
        in the order of the seeds.
    steps : list of int
        Optimiser steps after which the test set was scored.
    scores : ndarray, shape (len(steps), K)
        The test score of every network at those steps.
    seconds : float
        CPU time of the whole run (``time.process_time``).
    """

    ensembles: list[Ensemble]
    steps: list[int]
    scores: np.ndarray
    seconds: float

    @property
    def final(self) -> np.ndarray:
        """The last scores, shape (K,)."""
        return self.scores[-1]

    @property
    def members(self) -> int:
        """K, the number of networks."""
        return sum(ensemble.members for ensemble in self.ensembles)

    def network(self, k: int) -> tuple[nn.Module, nn.Linear]:
        """Network k (in the order of the seeds) as a standalone layer and read-out (copies)."""
        k = check_int("k", k, minimum=0)
        for ensemble in self.ensembles:
            if k < ensemble.members:
                return ensemble.network(k)
            k -= ensemble.members
        raise ValueError(f"k must be in 0 .. {self.members - 1}, got {k + self.members}")

    def outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run every network on the same batch ``inputs`` (T, B, I), without gradients.

        Returns
        -------
        Tensor
            (B, K, O), or (T, B, K, O) for a task answered at every step.
        """
        device = next(self.ensembles[0].parameters()).device
        inputs = inputs.to(device)
        with torch.no_grad():
            parts = [ensemble(ensemble.stack_inputs(inputs)) for ensemble in self.ensembles]
        return torch.cat(parts, dim=-2)

    def evaluate(self, task: Task, data: tuple[Any, Any, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Score every network on ``data``, e.g. a validation set that no network trained on.

        Parameters
        ----------
        task : Task
            Gives the score and the loss.
        data : (inputs, targets, mask)
            As ``task.batch`` or ``task.test`` return them.

        Returns
        -------
        scores, losses : ndarray, shape (K,)
            ``task.score`` and ``task.loss`` of every network.
        """
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
        inputs, targets, mask = data
        outputs = self.outputs(inputs)
        device = outputs.device
        targets, mask = (None if part is None else
                         part.to(device).unsqueeze(-1).expand(*part.shape, self.members)
                         for part in (targets, mask))
        with torch.no_grad():
            losses = task.loss(outputs, targets, mask).double().cpu().numpy()
        return task.score(outputs, targets, mask), losses


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _stack_targets(parts: Sequence[Any]) -> Any:
    return None if parts[0] is None else torch.stack(list(parts), dim=-1)


def _groups(count: int, group_size: int) -> list[tuple[int, int]]:
    """As few (start, stop) ranges of at most ``group_size`` as cover ``count``, nearly equal."""
    groups = -(-count // group_size)
    bounds = [round(g * count / groups) for g in range(groups + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _train_kinds(kinds: Mapping[str, int], task: Task, seeds: Sequence[int], *, steps: int,
                 batch_size: int, lr: Mapping[str, float], max_norm: float,
                 forget_bias: float | None, update_bias: float | None, evaluations: int,
                 training_sets: Sequence[Any] | None, group_size: int,
                 device: torch.device) -> dict[str, TrainedEnsemble]:
    """Train every kind of ``kinds`` ({kind: H}), each group of networks with ``train_steps``.

    Network k of every kind draws its batches from ``default_rng([seeds[k], 1])``, so the
    kinds see the same batches.
    """
    checkpoints = sorted({max(1, round(steps * (j + 1) / evaluations))
                          for j in range(evaluations)})
    groups = _groups(len(seeds), group_size)
    test_inputs, test_targets, test_mask = (_to(part, device) for part in task.test())
    tests = []
    for first, stop in groups:
        count = stop - first
        tests.append((test_inputs.repeat(1, 1, count),
                      *(None if part is None else part.unsqueeze(-1).expand(*part.shape, count)
                        for part in (test_targets, test_mask))))

    def draw(k: int, generator: np.random.Generator) -> tuple[Any, Any, Any]:
        if training_sets is None:
            return task.batch(batch_size, generator)
        inputs, targets, mask = training_sets[k]
        rows = torch.from_numpy(generator.integers(0, inputs.shape[1], size=batch_size))
        axis = 1 if task.per_step else 0  # targets are (T, N) per step, (N, ...) otherwise
        return (inputs[:, rows], targets.index_select(axis, rows),
                None if mask is None else mask[:, rows])

    def group_batches(first: int, stop: int) -> Callable[[], tuple[Any, Any, Any]]:
        generators = [np.random.default_rng([seed, 1]) for seed in seeds[first:stop]]

        def draw_group() -> tuple[Any, Any, Any]:
            parts = [draw(first + k, generator) for k, generator in enumerate(generators)]
            return (torch.cat([part[0] for part in parts], dim=-1),
                    _stack_targets([part[1] for part in parts]),
                    _stack_targets([part[2] for part in parts]))

        return draw_group

    results = {}
    for kind, hidden_size in kinds.items():
        started = time.process_time()
        ensembles, scores = [], []
        for (first, stop), (inputs, targets, mask) in zip(groups, tests, strict=True):
            ensemble = Ensemble(kind, seeds[first:stop], task.input_size, hidden_size,
                                task.output_size, forget_bias=forget_bias,
                                update_bias=update_bias, per_step=task.per_step).to(device)
            history = train_steps(
                ensemble, group_batches(first, stop), steps=steps, lr=lr[kind],
                max_norm=max_norm, loss_fn=task.loss, checkpoints=checkpoints,
                evaluate=lambda model, i=inputs, t=targets, m=mask: task.score(model(i), t, m),
                on_divergence="continue")
            ensembles.append(ensemble.eval())
            scores.append(np.array(history.evaluations))
        results[kind] = TrainedEnsemble(ensembles=ensembles, steps=checkpoints,
                                        scores=np.concatenate(scores, axis=1),
                                        seconds=time.process_time() - started)
    return results


def train_ensemble(kind: str, task: Task, hidden_size: int, seeds: Sequence[int], *,
                   steps: int = 300, batch_size: int = 64, lr: float = 0.02,
                   max_norm: float = 1.0, forget_bias: float | None = 1.0,
                   update_bias: float | None = None, evaluations: int = 6,
                   training_sets: Sequence[Any] | None = None, group_size: int = GROUP_SIZE,
                   device: Any = "cpu") -> TrainedEnsemble:
    """Train one network per seed on ``task``, side by side, and score them as they learn.

    Every step each network gets its own batch of ``batch_size`` sequences, drawn by
    ``task.batch`` from ``numpy.random.default_rng([seed, 1])`` (so networks of different
    kinds with the same seed see the same batches), or sampled with replacement from its
    own entry of ``training_sets``. The loss is each network's task loss; the gradient of
    each network is clipped to global norm ``max_norm`` and Adam takes a step. The test
    set is scored ``evaluations`` times, evenly spaced, the last time after the final step.
    The networks train ``group_size`` at a time in one ``Ensemble`` each; the grouping
    changes only the rounding, not what each network computes.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"}
    task : Task
    hidden_size : int
        H of every network.
    seeds : sequence of int
        One network per seed.
    steps : int
    batch_size : int
    lr : float
        Adam's learning rate.
    max_norm : float
    forget_bias : float or None
        The LSTM's effective forget-gate bias (ignored for other kinds).
    update_bias : float or None
        The GRU's effective update-gate bias (ignored for other kinds).
    evaluations : int
        How many times to score the test set.
    training_sets : sequence, optional
        One fixed training set per network, each ``(inputs, targets, mask)`` as
        ``task.batch`` returns them with N sequences (N may differ between networks).
    group_size : int
        At most this many networks per ``Ensemble`` (``GROUP_SIZE`` by default); the seeds
        are split into as few groups as that allows, of nearly equal sizes.
    device : str or torch.device

    Returns
    -------
    TrainedEnsemble
    """
    check_kind(kind)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    return _train_checked({kind: hidden_size}, task, seeds, steps=steps, batch_size=batch_size,
                          lr={kind: lr}, max_norm=max_norm, forget_bias=forget_bias,
                          update_bias=update_bias, evaluations=evaluations,
                          training_sets=training_sets, group_size=group_size,
                          device=device)[kind]


def _train_checked(kinds: Mapping[str, int], task: Task, seeds: Sequence[int], *, steps: int,
                   batch_size: int, lr: Mapping[str, float], max_norm: float,
                   forget_bias: float | None, update_bias: float | None, evaluations: int,
                   training_sets: Sequence[Any] | None, group_size: int,
                   device: Any) -> dict[str, TrainedEnsemble]:
    """``_train_kinds`` after checking the arguments shared by every caller."""
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = {kind: check_real("lr", rate, positive=True) for kind, rate in lr.items()}
    max_norm = check_real("max_norm", max_norm, positive=True)
    evaluations = check_int("evaluations", evaluations, minimum=1)
    group_size = check_int("group_size", group_size, minimum=1)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed (one network per seed)")
    if training_sets is not None and len(training_sets) != len(seeds):
        raise ValueError(f"training_sets must hold one set per seed ({len(seeds)}), "
                         f"got {len(training_sets)}")
    return _train_kinds(kinds, task, seeds, steps=steps, batch_size=batch_size, lr=lr,
                        max_norm=max_norm, forget_bias=forget_bias, update_bias=update_bias,
                        evaluations=evaluations, training_sets=training_sets,
                        group_size=group_size, device=torch.device(device))


# --------------------------------------------------------------------------------------
# Comparisons at an equal parameter count
# --------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Every kind trained on one task at an equal parameter count, from several seeds.

    Attributes
    ----------
    task : Task
    seeds : tuple of int
    hidden_sizes : dict
        H of each kind.
    parameters : dict
        Parameters of each kind's model (layer and read-out).
    steps : list of int
        Steps at which the test set was scored.
    scores : dict
        ``scores[kind]``, shape (len(steps), len(seeds)): the test score of every seed.
    seconds : dict
        CPU time of each kind's training.
    settings : dict
        The training settings (steps, batch size, each kind's learning rate, ...).
    runs : dict
        ``runs[kind]``: the ``TrainedEnsemble`` (the trained networks themselves).
    """

    task: Task
    seeds: tuple[int, ...]
    hidden_sizes: dict[str, int]
    parameters: dict[str, int]
    steps: list[int]
    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    settings: dict[str, Any]
    runs: dict[str, TrainedEnsemble] = field(default_factory=dict, repr=False)

    @property
    def kinds(self) -> list[str]:
        """The kinds compared, in order."""
        return list(self.scores)

    def final(self, kind: str) -> np.ndarray:
        """The final test score of every seed of ``kind``, shape (seeds,)."""
        return self.scores[kind][-1]

    @property
    def ensembles(self) -> dict[str, Ensemble]:  # TEMPORARY, until the chapter uses runs
        return {kind: run.ensembles[0] for kind, run in self.runs.items()}


def _per_kind(name: str, value: Any, kinds: Sequence[str], *, positive: bool = False,
              optional: bool = False) -> dict[str, Any]:
    """One value for every kind: ``value`` itself, or ``value[kind]`` from a mapping."""
    if isinstance(value, Mapping):
        missing = [kind for kind in kinds if kind not in value]
        if missing:
            raise ValueError(f"{name} must give a value for every kind {list(kinds)}, "
                             f"got {dict(value)!r} (missing {missing})")
        values = {kind: value[kind] for kind in kinds}
    else:
        values = dict.fromkeys(kinds, value)
    return {kind: (None if optional and v is None else check_real(f"{name}[{kind!r}]", v,
                                                                  positive=positive))
            for kind, v in values.items()}


def compare(task: Task, *, lstm_hidden_size: int = 16, kinds: Iterable[str] = KINDS,
            seeds: Iterable[int] = (0, 1, 2), steps: int = 300, batch_size: int = 64,
            lr: float | Mapping[str, float] = 0.02, max_norm: float = 1.0,
            forget_bias: float | None = 1.0, update_bias: float | None = None,
            evaluations: int = 6, group_size: int = GROUP_SIZE,
            device: Any = "cpu") -> Comparison:
    """Train every kind on ``task`` with the parameters of an LSTM of ``lstm_hidden_size``.

    The hidden sizes come from ``matched_hidden_sizes`` (model = layer + linear read-out);
    every kind trains for the same ``steps`` from the same ``seeds`` with the same
    settings (``train_ensemble``), the seed fixing both the initial weights and the
    batches. ``lr`` is one learning rate for all, or a mapping ``{kind: rate}`` (each kind
    with its own tuned rate); ``forget_bias`` applies to the LSTM and ``update_bias`` to the
    GRU (give both the same value for the same treatment of the gate that keeps the state).

    Returns
    -------
    Comparison
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    kinds = [check_kind(kind) for kind in kinds]
    seeds = tuple(check_int("seed", seed, minimum=0) for seed in seeds)
    if not kinds or not seeds:
        raise ValueError(f"kinds and seeds must not be empty, got {kinds} and {seeds}")
    rates = _per_kind("lr", lr, kinds, positive=True)
    sizes = matched_hidden_sizes(task.input_size, task.output_size, lstm_hidden_size,
                                 kinds=kinds)
    settings = {"steps": steps, "batch_size": batch_size, "lr": rates, "max_norm": max_norm,
                "forget_bias": forget_bias, "update_bias": update_bias,
                "lstm_hidden_size": lstm_hidden_size}
    runs = _train_checked(sizes, task, seeds, steps=steps, batch_size=batch_size, lr=rates,
                          max_norm=max_norm, forget_bias=forget_bias, update_bias=update_bias,
                          evaluations=evaluations, training_sets=None, group_size=group_size,
                          device=device)
    scores = {kind: run.scores for kind, run in runs.items()}
    seconds = {kind: run.seconds for kind, run in runs.items()}
    checkpoints = runs[kinds[0]].steps
    parameters = {kind: model_parameter_count(kind, task.input_size, sizes[kind],
                                              task.output_size) for kind in kinds}
    return Comparison(task=task, seeds=seeds, hidden_sizes=sizes, parameters=parameters,
                      steps=checkpoints, scores=scores, seconds=seconds, settings=settings,
                      runs=runs)


def verdict(first: Sequence[float], second: Sequence[float], *, solved: float,
            margin: float = 0.05) -> str:
    """Compare the per-seed scores of two kinds; name a winner only when every seed agrees.

    Parameters
    ----------
    first, second : sequence of float
        Final scores, one per seed (higher is better).
    solved : float
        The score at which the task counts as solved.
    margin : float
        How much better the worst seed of the winner must be than the best seed of the
        loser.

    Returns
    -------
    str
        ``"first"`` when min(first) > max(second) + margin; ``"second"`` the other way
        round; ``"both"`` when every seed of both reaches ``solved`` (and neither wins);
        ``"neither"`` when no seed of either does; otherwise ``"mixed"``.
    """
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if first.ndim != 1 or second.ndim != 1 or not first.size or not second.size:
        raise ValueError(f"first and second must be non-empty 1-D sequences of scores, got "
                         f"shapes {first.shape} and {second.shape}")
    solved = check_real("solved", solved)
    margin = check_real("margin", margin)
    if first.min() > second.max() + margin:
        return "first"
    if second.min() > first.max() + margin:
        return "second"
    if first.min() >= solved and second.min() >= solved:
        return "both"
    if first.max() < solved and second.max() < solved:
        return "neither"
    return "mixed"


@dataclass
class Tuning:
    """A learning-rate sweep scored on validation data (``tune_learning_rates``).

    Attributes
    ----------
    task : Task
    rates : tuple of float
        The learning rates tried.
    seeds : tuple of int
    losses, scores : dict
        ``losses[kind]`` and ``scores[kind]``, shape (len(rates), len(seeds)): the
        validation loss and score of every seed after training with each rate.
    chosen : dict
        ``chosen[kind]``: the rate with the smallest mean validation loss.
    """

    task: Task
    rates: tuple[float, ...]
    seeds: tuple[int, ...]
    losses: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    chosen: dict[str, float]


def _choose_rate(rates: Sequence[float], losses: np.ndarray) -> float:
    """The rate whose row of ``losses`` (rates, seeds) has the smallest mean.

    A non-finite loss (a diverged run) counts as infinite, so its rate ranks last; ties go
    to the earlier rate.
    """
    finite = np.where(np.isfinite(losses), losses, np.inf)
    return rates[int(np.argmin(finite.mean(axis=1)))]


def tune_learning_rates(task: Task, validation: tuple[Any, Any, Any],
                        rates: Iterable[float] = (0.003, 0.01, 0.03), *,
                        kinds: Iterable[str] = KINDS, seeds: Iterable[int] = (0, 1, 2),
                        lstm_hidden_size: int = 16, **settings: Any) -> Tuning:
    """Give every kind the same tuning effort: try each learning rate, keep the best on validation.

    Every kind trains at an equal parameter count (``compare``) once per rate in ``rates``,
    from every seed, and is scored on ``validation``, data that no network trains on and
    that is not the test set. The chosen rate of a kind is the one with the smallest mean
    validation loss over the seeds: the mean, so that a rate that trains well on most seeds
    but collapses on some pays for its failures (a run with an infinite or undefined loss
    rules its rate out, unless every rate has one).

    Parameters
    ----------
    task : Task
    validation : (inputs, targets, mask)
        Validation data in the form of ``task.test()``, e.g.
        ``make_task(name, length, test_seed=another_seed).test()``.
    rates : iterable of float
        Learning rates to try, the same for every kind.
    kinds, seeds, lstm_hidden_size
        As for ``compare``.
    **settings
        Passed to ``compare`` (steps, batch_size, max_norm, forget_bias, update_bias,
        group_size, device); ``lr`` is set by the sweep.

    Returns
    -------
    Tuning
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    if "lr" in settings:
        raise TypeError("tune_learning_rates sets lr itself; pass the candidates as rates")
    rates = tuple(check_real("rates[i]", rate, positive=True) for rate in rates)
    kinds = [check_kind(kind) for kind in kinds]
    seeds = tuple(check_int("seed", seed, minimum=0) for seed in seeds)
    if not rates or not kinds or not seeds:
        raise ValueError(f"rates, kinds and seeds must not be empty, got {rates}, {kinds} "
                         f"and {seeds}")
    losses = {kind: np.empty((len(rates), len(seeds))) for kind in kinds}
    scores = {kind: np.empty((len(rates), len(seeds))) for kind in kinds}
    for i, rate in enumerate(rates):
        comparison = compare(task, lstm_hidden_size=lstm_hidden_size, kinds=kinds, seeds=seeds,
                             lr=rate, evaluations=1, **settings)
        for kind in kinds:
            scores[kind][i], losses[kind][i] = comparison.runs[kind].evaluate(task, validation)
    chosen = {kind: _choose_rate(rates, losses[kind]) for kind in kinds}
    return Tuning(task=task, rates=rates, seeds=seeds, losses=losses, scores=scores,
                  chosen=chosen)


@dataclass
class SweepResult:
    """Scores over training-set sizes (``data_size_sweep``).

    Attributes
    ----------
    task : Task
    sizes : list of int
        Training-set sizes N.
    seeds : tuple of int
    hidden_sizes, parameters : dict
        Per kind, as in ``Comparison``.
    scores : dict
        ``scores[kind]``, shape (len(sizes), len(seeds)): final test scores.
    seconds : dict
    match : {"parameters", "hidden_size"}
        How the hidden sizes were chosen.
    """

    task: Task
    sizes: list[int]
    seeds: tuple[int, ...]
    hidden_sizes: dict[str, int]
    parameters: dict[str, int]
    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    match: str = "parameters"


def data_size_sweep(task: Task, sizes: Iterable[int], *, lstm_hidden_size: int = 16,
                    match: str = "parameters",
                    kinds: Iterable[str] = ("LSTM", "GRU"), seeds: Iterable[int] = (0, 1, 2),
                    steps: int = 300, batch_size: int = 64,
                    lr: float | Mapping[str, float] = 0.02, max_norm: float = 1.0,
                    forget_bias: float | None = 1.0, update_bias: float | None = None,
                    group_size: int = GROUP_SIZE, device: Any = "cpu") -> SweepResult:
    """Train on fixed training sets of several sizes and score on the same large test set.

    For every seed one training set of max(sizes) sequences is drawn from
    ``default_rng([seed, 2])``; the smaller sets are its first N sequences, so the sets of
    one seed are nested. Every (size, seed) pair is one network, and the networks of one
    kind train side by side (``train_ensemble``) for the same number of steps, each
    sampling its batches from its own set.

    Parameters
    ----------
    task : Task
    sizes : iterable of int
        Training-set sizes N.
    lstm_hidden_size : int
        H of the LSTM.
    match : {"parameters", "hidden_size"}
        ``"parameters"``: every kind gets the LSTM's parameter count, as in ``compare``;
        ``"hidden_size"``: every kind gets H = ``lstm_hidden_size`` (a GRU then has 3/4 of
        the LSTM's recurrent parameters, the setting of the "GRU for small data" advice).
    kinds, seeds, steps, batch_size, lr, max_norm, forget_bias, update_bias, group_size, device
        As for ``compare``.

    Returns
    -------
    SweepResult
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    sizes = [check_int("size", size, minimum=1) for size in sizes]
    seeds = tuple(check_int("seed", seed, minimum=0) for seed in seeds)
    kinds = [check_kind(kind) for kind in kinds]
    if not sizes or not seeds or not kinds:
        raise ValueError(f"sizes, seeds and kinds must not be empty, got {sizes}, {seeds}, "
                         f"{kinds}")
    largest = max(sizes)
    full_sets = {seed: task.batch(largest, np.random.default_rng([seed, 2])) for seed in seeds}

    def first(part: Any, count: int, axis: int) -> Any:
        return None if part is None else part.narrow(axis, 0, count)

    members, training_sets = [], []
    for size in sizes:
        for seed in seeds:
            inputs, targets, mask = full_sets[seed]
            members.append(seed)
            training_sets.append((first(inputs, size, 1),
                                  first(targets, size, 1 if task.per_step else 0),
                                  first(mask, size, 1)))
    check_choice("match", match, ("parameters", "hidden_size"))
    rates = _per_kind("lr", lr, kinds, positive=True)
    if match == "parameters":
        hidden = matched_hidden_sizes(task.input_size, task.output_size, lstm_hidden_size,
                                      kinds=kinds)
    else:
        hidden = {kind: check_int("lstm_hidden_size", lstm_hidden_size, minimum=1)
                  for kind in kinds}
    runs = _train_checked(hidden, task, members, steps=steps, batch_size=batch_size,
                          lr=rates, max_norm=max_norm, forget_bias=forget_bias,
                          update_bias=update_bias, evaluations=1, training_sets=training_sets,
                          group_size=group_size, device=device)
    scores = {kind: run.final.reshape(len(sizes), len(seeds)) for kind, run in runs.items()}
    seconds = {kind: run.seconds for kind, run in runs.items()}
    parameters = {kind: model_parameter_count(kind, task.input_size, hidden[kind],
                                              task.output_size) for kind in kinds}
    return SweepResult(task=task, sizes=sizes, seeds=seeds, hidden_sizes=hidden,
                       parameters=parameters, scores=scores, seconds=seconds, match=match)


# --------------------------------------------------------------------------------------
# Pictures: one comparison and the static grid
# --------------------------------------------------------------------------------------

KIND_COLORS = {"RNN": "#7F7F7F", "LSTM": "#0072B2", "GRU": "#D55E00"}
"""One colour per kind in every figure of the chapter (grey, blue, vermillion)."""


def score_floor(task: Task) -> float:
    """The lowest score the figures draw: as far below the no-memory score as solving is above.

    A run below it is far worse than a network without memory (for the adding problem,
    variance explained below -0.9: a mean squared error almost twice the baseline's), which
    happens when training diverges. Drawing it to scale would squash every other curve, so
    ``draw_comparison`` draws it at this floor with a marker instead.
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (from make_task), got {describe(task)}")
    return task.chance - (task.solved - task.chance)


def draw_comparison(ax: Any, comparison: Comparison, *, legend: bool = True,
                    title: bool = True) -> Any:
    """Learning curves of one comparison: every seed thin, the median thick, chance dotted.

    A score below ``score_floor(task)`` (a diverged run) is drawn at the floor, with a
    downward triangle at each such evaluation, so that it stays visible without squashing
    the other curves; the axis then ends just below the floor.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    comparison : Comparison
    legend, title : bool

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be a Comparison (from compare), "
                        f"got {describe(comparison)}")
    steps = np.asarray(comparison.steps)
    task = comparison.task
    floor = score_floor(task)
    clipped = False
    for kind, scores in comparison.scores.items():
        color = KIND_COLORS[kind]
        below = ~(scores >= floor)  # NaN counts as below
        shown = np.where(below, floor, scores)
        ax.plot(steps, shown, color=color, linewidth=0.7, alpha=0.45)
        if below.any():
            clipped = True
            rows, _ = np.nonzero(below)
            ax.scatter(steps[rows], np.full(len(rows), floor), marker="v", s=22, color=color,
                       zorder=3, clip_on=False)
        ax.plot(steps, np.median(shown, axis=1), color=color, linewidth=2.0, marker="o",
                markersize=3, label=f"{kind} (H = {comparison.hidden_sizes[kind]})")
    ax.axhline(task.chance, color="black", linestyle=":", linewidth=1.0, label="no memory")
    if task.name == "anbn":
        ax.axhline(task.length, color="black", linestyle="--", linewidth=0.8,
                   label="largest n trained on")
    if clipped:
        top = ax.get_ylim()[1]
        ax.set_ylim(floor - 0.04 * (top - floor), top)
        ax.scatter([], [], marker="v", color="black", label="below the axis (diverged)")
    ax.set_xlabel("training step")
    ax.set_ylabel(task.score_name)
    if title:
        ax.set_title(task.label)
    if legend:
        ax.legend(fontsize=7)
    return ax


def comparison_small_multiples(comparisons: Sequence[Comparison], *, columns: int = 3,
                               panel_size: tuple[float, float] = (2.9, 2.2)) -> Any:
    """The static counterpart of the explorer: one panel per comparison, in a grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("comparisons must hold at least one Comparison")
    columns = check_int("columns", columns, minimum=1)
    columns = min(columns, len(comparisons))
    rows = math.ceil(len(comparisons) / columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(panel_size[0] * columns, panel_size[1] * rows))
    clipped = False
    for index, ax in enumerate(axes.flat):
        if index >= len(comparisons):
            ax.axis("off")
            continue
        comparison = comparisons[index]
        draw_comparison(ax, comparison, legend=False)
        ax.set_xlabel("step" if index >= len(comparisons) - columns else "")
        floor = score_floor(comparison.task)
        clipped |= any(bool((~(scores >= floor)).any()) for scores in comparison.scores.values())
    handles = [plt.Line2D([], [], color=KIND_COLORS[kind], linewidth=2, label=kind)
               for kind in comparisons[0].kinds]
    handles.append(plt.Line2D([], [], color="black", linestyle=":", label="no memory"))
    if clipped:
        handles.append(plt.Line2D([], [], color="black", marker="v", linestyle="none",
                                  label="below the axis (diverged)"))
    fig.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
