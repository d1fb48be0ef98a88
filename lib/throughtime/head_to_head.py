r"""Head-to-head: recurrent layers compared at equal budgets, tuned alike, over data sizes.

The claims usually made about the LSTM and the GRU are claims about a comparison; this
module makes the comparison fair and says when it has a winner:

- ``compare`` trains every kind at an equal parameter count (``measure.matched_hidden_sizes``)
  for the same number of steps from several seeds (each kind with its own learning rate
  if asked), the networks trained side by side (``ensembles.train_ensemble``);
- ``tune_learning_rates`` chooses those rates on validation data with the same effort for
  every kind;
- ``data_size_sweep`` compares on fixed training sets of several sizes;
- ``verdict`` says which kind won, only when every seed agrees.

Their figures are ``plotting.draw_comparison`` and ``plotting.comparison_small_multiples``;
their explorer is ``explorers.comparison_explorer``. Kinds are named like their
``torch.nn`` classes: ``"RNN"`` (tanh), ``"LSTM"``, ``"GRU"`` (``measure.KINDS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import check_choice, check_int, check_real, describe
from .ensembles import GROUP_SIZE, Ensemble, TrainedEnsemble, train_kinds
from .measure import KINDS, check_kind, matched_hidden_sizes, model_parameter_count
from .tasks import Task

__all__ = [
    "Comparison",
    "compare",
    "verdict",
    "Tuning",
    "tune_learning_rates",
    "SweepResult",
    "data_size_sweep",
]


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
    runs = train_kinds(sizes, task, seeds, steps=steps, batch_size=batch_size, lr=rates,
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
    runs = train_kinds(hidden, task, members, steps=steps, batch_size=batch_size,
                       lr=rates, max_norm=max_norm, forget_bias=forget_bias,
                       update_bias=update_bias, evaluations=1, training_sets=training_sets,
                       group_size=group_size, device=device)
    scores = {kind: run.final.reshape(len(sizes), len(seeds)) for kind, run in runs.items()}
    seconds = {kind: run.seconds for kind, run in runs.items()}
    parameters = {kind: model_parameter_count(kind, task.input_size, hidden[kind],
                                              task.output_size) for kind in kinds}
    return SweepResult(task=task, sizes=sizes, seeds=seeds, hidden_sizes=hidden,
                       parameters=parameters, scores=scores, seconds=seconds, match=match)


