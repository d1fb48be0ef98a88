r"""K networks trained side by side as one model: the ensemble trick.

Training many small recurrent networks one after the other spends most of its time in the
fixed cost of calling a layer, not in arithmetic. ``Ensemble`` packs K independent
networks of one kind into one wide ``torch.nn`` layer whose weight matrices are
block-diagonal inside every gate block, and keeps them apart (the gradient between
networks is zeroed, each network is clipped by its own norm), so that training the
ensemble trains each network exactly as it would be trained alone, up to rounding, in one
call of the layer per step instead of K.

- ``Ensemble``: the model (``network(k)`` gives network k back as a standalone
  ``torch.nn`` layer and read-out).
- ``train_ensemble``: one network per seed on a ``tasks.Task``, a few per ``Ensemble``
  (``GROUP_SIZE``), each group trained by ``training.train_steps``, the library's one
  training loop; ``TrainedEnsemble`` holds the networks and their test scores.

``head_to_head`` builds its comparisons, tuning and data-size sweeps on these. Kinds are
named like their ``torch.nn`` classes: ``"RNN"`` (tanh), ``"LSTM"``, ``"GRU"``
(``measure.KINDS``; lower case is accepted too). Notation: I inputs, H hidden units,
O outputs, T time steps, B sequences per batch, K networks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_int, check_real, describe
from .measure import GATES, check_kind
from .tasks import Task
from .training import _to, train_steps

__all__ = [
    "Ensemble",
    "GROUP_SIZE",
    "TrainedEnsemble",
    "train_ensemble",
    "train_kinds",
]


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
        kind = check_kind(kind)
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
    kind = check_kind(kind)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    return train_kinds({kind: hidden_size}, task, seeds, steps=steps, batch_size=batch_size,
                          lr={kind: lr}, max_norm=max_norm, forget_bias=forget_bias,
                          update_bias=update_bias, evaluations=evaluations,
                          training_sets=training_sets, group_size=group_size,
                          device=device)[kind]


def train_kinds(kinds: Mapping[str, int], task: Task, seeds: Sequence[int], *, steps: int,
                batch_size: int, lr: Mapping[str, float], max_norm: float,
                forget_bias: float | None, update_bias: float | None, evaluations: int,
                training_sets: Sequence[Any] | None, group_size: int,
                device: Any) -> dict[str, TrainedEnsemble]:
    """``train_ensemble`` for every kind of ``kinds`` ({kind: H}), from the same seeds.

    The arguments are ``train_ensemble``'s, with ``lr`` one rate per kind; network k of
    every kind sees the same batches. Returns ``{kind: TrainedEnsemble}``.
    """
    kinds = {check_kind(kind): hidden for kind, hidden in kinds.items()}
    lr = {check_kind(kind): rate for kind, rate in lr.items()}
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


