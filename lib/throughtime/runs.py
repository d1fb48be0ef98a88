"""Runs: one tanh RNN, LSTM or GRU trained on a long-range task from one seed, and measured.

The chapters that compare recurrent networks (the LSTM, the GRU, choosing between them)
run the same experiment with different models: a ``torch.nn`` recurrent layer reads a
sequence, a linear read-out of its last state answers, Adam trains it on fresh batches with
the gradient clipped by its global norm, and a fixed test set is scored every few steps.
``train_on_task`` is that experiment, so that every chapter measures with the same code and
the same settings.

- ``SequenceModel``: optional embedding, ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, linear
  read-out of h_T. ``make_model`` builds it for a task (and sets the LSTM's forget bias).
- ``train_on_task``: one run (one model, one seed); ``RunResult`` holds the test curve, the
  step at which the task counted as solved, and the trained model.
- ``score_on_task``: the test metric of a trained model at another length (or with another
  share of distractor nouns), for measuring how far a model generalises.
- ``run_seeds`` and ``summarize``: several kinds and seeds, and their mean and spread.

Kinds are named like their ``torch.nn`` classes, ``"RNN"`` (tanh), ``"LSTM"``, ``"GRU"``
(``measure.KINDS``); lower case (``"lstm"``) is accepted too. The training itself is
``training.fit`` over the library's one loop, ``training.train_steps``.

Tasks (``throughtime.tasks``):

``"adding"``
    Le et al.'s adding problem with T = ``length`` steps; mean squared error; solved when
    the test MSE is at most ``solved_mse`` (the no-memory baseline is 1/6).
``"agreement"``
    ``tasks.agreement_task`` with ``distance`` = ``length`` and ``distractors`` nouns of
    random number (``attractor_number="random"``: only the subject predicts the label;
    ``distance // 2`` nouns by default, or a ``distractor_share`` of the distance); cross
    entropy; solved when the test accuracy is at least ``solved_accuracy`` (chance: 0.5).

Gates: the LSTM's forget-gate bias is set to ``forget_bias`` (1 by default, Jozefowicz et al.
2015) and the GRU's update-gate bias to ``update_bias`` (PyTorch's initialisation by
default); a fair comparison gives both the same treatment.

Seeds: ``torch.manual_seed(seed)`` sets the initial weights; the training batches come from
``numpy.random.default_rng([seed, 1])``, so two kinds with the same seed see the same
batches; the test set comes from ``test_seed`` and is the same for every kind and seed. On
a GPU, cuDNN is asked for its deterministic algorithms (``torch.backends.cudnn.deterministic``)
so that a seed gives the same run each time as far as PyTorch allows; a GPU run still
differs from a CPU run in the last bits, and training can amplify them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validate import check_choice, check_int, check_real, describe
from .measure import check_kind
from .tasks import AGREEMENT_VOCABULARY, adding_problem, agreement_task
from .training import choose_device, fit

__all__ = [
    "TASKS",
    "SequenceModel",
    "make_model",
    "RunResult",
    "train_on_task",
    "score_on_task",
    "run_seeds",
    "summarize",
]

TASKS = ("adding", "agreement")
"""The tasks ``train_on_task`` knows."""


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


class SequenceModel(nn.Module):
    """A recurrent layer and a linear read-out of its last state.

    inputs (T, B, I) floats, or (T, B) token ids with ``vocabulary_size``
    -> [``nn.Embedding``] -> ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (time-major)
    -> h_T (B, H) -> ``nn.Linear`` -> outputs (B, ``output_size``).

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"} (or lower case)
    input_size : int
        Features per step, I (the embedding size when ``vocabulary_size`` is given).
    hidden_size : int
        The hidden size H.
    output_size : int
        Outputs of the read-out.
    vocabulary_size : int, optional
        Read token ids through an embedding of this many rows.

    Attributes
    ----------
    recurrent : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        The recurrent layer (one layer, time-major), whose weights ``numpy_cells``
        ``params_from_torch`` reads.
    readout : torch.nn.Linear
    embedding : torch.nn.Embedding or None
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int, *,
                 vocabulary_size: int | None = None) -> None:
        super().__init__()
        kind = check_kind(kind)
        input_size = check_int("input_size", input_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        output_size = check_int("output_size", output_size, minimum=1)
        self.kind = kind
        self.embedding = None
        if vocabulary_size is not None:
            vocabulary_size = check_int("vocabulary_size", vocabulary_size, minimum=1)
            self.embedding = nn.Embedding(vocabulary_size, input_size)
        self.recurrent = getattr(nn, kind)(input_size, hidden_size)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(T, B, I) inputs, or (T, B) token ids -> (B, output_size)."""
        if self.embedding is not None:
            inputs = self.embedding(inputs)
        states, _ = self.recurrent(inputs)
        return self.readout(states[-1])


def make_model(kind: str, task: str, hidden_size: int = 32, *, forget_bias: float | None = 1.0,
               update_bias: float | None = None, embedding_size: int = 16) -> SequenceModel:
    """The model ``train_on_task`` trains, with PyTorch's default initialisation.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"} (or lower case)
    task : {"adding", "agreement"}
        ``"adding"``: I = 2 inputs (value, marker), one output. ``"agreement"``: token ids
        through an embedding of ``embedding_size``, two outputs (logits of singular and
        plural).
    hidden_size : int
        The hidden size H.
    forget_bias : float or None
        For the LSTM, the effective forget-gate bias b_if + b_hf
        (``gates.set_forget_bias``); 1.0 as Jozefowicz et al. 2015 recommend. ``None``
        keeps PyTorch's initialisation. Ignored for the other kinds.
    update_bias : float or None
        For the GRU, the effective update-gate bias b_iz + b_hz
        (``gates.set_update_bias``), the GRU's counterpart of the forget bias: z_t
        keeps the old state, so a positive bias makes the GRU remember longer at
        initialisation. ``None`` (the default) keeps PyTorch's initialisation. Ignored for
        the other kinds.
    embedding_size : int
        Embedding size for the agreement task.

    Returns
    -------
    SequenceModel
    """
    kind = check_kind(kind)
    check_choice("task", task, TASKS)
    if task == "adding":
        model = SequenceModel(kind, 2, hidden_size, 1)
    else:
        model = SequenceModel(kind, embedding_size, hidden_size, 2,
                              vocabulary_size=AGREEMENT_VOCABULARY.size)
    if kind == "LSTM" and forget_bias is not None:
        from .gates import set_forget_bias

        set_forget_bias(model.recurrent, forget_bias)
    if kind == "GRU" and update_bias is not None:
        from .gates import set_update_bias

        set_update_bias(model.recurrent, update_bias)
    return model


# --------------------------------------------------------------------------------------
# Number agreement without a shortcut
# --------------------------------------------------------------------------------------


def _agreement_batch(distance: int, batch_size: int, rng: np.random.Generator | int,
                     distractors: int | None,
                     distractor_share: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``agreement_task`` with nouns of random number, counted as ``train_on_task`` counts them."""
    count = _distractor_count(distance, distractors, distractor_share)
    return agreement_task(distance, batch_size, rng, attractors=count,
                          attractor_number="random", as_torch=True)


def _check_share(distractor_share: float | None) -> float | None:
    if distractor_share is None:
        return None
    share = check_real("distractor_share", distractor_share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"distractor_share must be in [0, 1] (a share of the distance), "
                         f"got {share}")
    return share


def _distractor_count(distance: int, distractors: int | None,
                      distractor_share: float | None) -> int:
    """The number of nouns between subject and query, from a count or a share."""
    share = _check_share(distractor_share)
    if distractors is not None and share is not None:
        raise ValueError(f"give distractors or distractor_share, not both; got "
                         f"distractors={distractors}, distractor_share={share}")
    if share is not None:
        return int(np.floor(share * distance + 1e-9))
    return distance // 2 if distractors is None else distractors


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One training run of ``train_on_task``.

    Attributes
    ----------
    kind, task : str
    seed : int
    settings : dict
        Every setting of the run (length, hidden_size, lr, ...).
    steps : list of int
        Optimiser steps after which the test set was scored.
    metric : list of float
        The test metric at those steps: MSE (adding) or accuracy (agreement).
    solved_at : int or None
        The first of ``steps`` at which the task counted as solved, or ``None``.
    parameters : int
        Number of parameters of the recurrent layer alone (no embedding, no read-out).
    seconds : float
        CPU time of the run (``time.process_time``), evaluation included.
    model : SequenceModel
        The trained model, on the CPU, in eval mode.
    """

    kind: str
    task: str
    seed: int
    settings: dict[str, Any]
    steps: list[int] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    solved_at: int | None = None
    parameters: int = 0
    seconds: float = 0.0
    model: SequenceModel | None = None

    @property
    def final(self) -> float:
        """The last test metric measured."""
        return self.metric[-1]

    @property
    def solved(self) -> bool:
        """Whether the run reached the task's criterion."""
        return self.solved_at is not None


def _test_metric(model: nn.Module, task: str, test: tuple[torch.Tensor, torch.Tensor],
                 device: torch.device) -> float:
    inputs, targets = test
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(inputs.to(device)).cpu()
    model.train(was_training)
    if task == "adding":
        return float(((outputs - targets) ** 2).mean())
    return float((outputs.argmax(dim=1) == targets).float().mean())


def train_on_task(kind: str, task: str, *, length: int, seed: int = 0, hidden_size: int = 32,
                  steps: int = 300, batch_size: int = 64, lr: float = 0.02,
                  max_norm: float = 1.0, forget_bias: float | None = 1.0,
                  update_bias: float | None = None,
                  min_length: int | None = None, distractors: int | None = None,
                  distractor_share: float | None = None, evaluate_every: int = 25,
                  test_size: int = 512, test_seed: int = 12345, solved_mse: float = 0.01,
                  solved_accuracy: float = 0.99, stop_when_solved: bool = True,
                  device: Any = None) -> RunResult:
    """Train one model on one task from one seed, scoring a fixed test set as it goes.

    Each step draws a fresh batch, and ``training.fit`` takes an Adam step on the loss
    (MSE for the adding problem, cross entropy for agreement) with the gradient clipped to
    global norm ``max_norm``. Every ``evaluate_every`` steps the test set is scored; with
    ``stop_when_solved`` the run ends at the first score that meets the criterion.

    Parameters
    ----------
    kind : {"RNN", "LSTM", "GRU"} (or lower case)
    task : {"adding", "agreement"}
    length : int
        T for the adding problem; the subject-verb distance for agreement. The test set
        uses this length.
    seed : int
        Initial weights (``torch.manual_seed``) and training batches.
    hidden_size : int
        H, the same for every kind (so the parameter counts differ: 1 : 4 : 3).
    steps : int
        Most optimiser steps.
    batch_size : int
    lr : float
        Adam's learning rate.
    max_norm : float
        Clip the gradient to this global norm.
    forget_bias : float or None
        The LSTM's effective forget-gate bias (see ``make_model``).
    update_bias : float or None
        The GRU's effective update-gate bias (see ``make_model``); ``None`` keeps PyTorch's
        initialisation.
    min_length : int, optional
        Agreement only: each training batch gets a distance drawn uniformly from
        ``min_length`` .. ``length`` (short sequences make the task easier to start
        learning); ``None`` trains at ``length`` only.
    distractors : int, optional
        Agreement only: nouns of random number between subject and verb
        (``tasks.agreement_task`` with ``attractor_number="random"``); ``None`` means half
        of the distance.
    distractor_share : float, optional
        Agreement only, instead of ``distractors``: the share of the distance that is nouns,
        for training and test batches alike (0 trains and tests without any noun in
        between).
    evaluate_every : int
        Steps between two scorings of the test set.
    test_size : int
        Sequences in the test set.
    test_seed : int
        Seed of the test set.
    solved_mse, solved_accuracy : float
        The criteria: test MSE at most ``solved_mse`` (adding), test accuracy at least
        ``solved_accuracy`` (agreement).
    stop_when_solved : bool
        End the run when the criterion is met.
    device : str or torch.device, optional
        Where to train; ``training.choose_device()`` (a GPU when present) by default.

    Returns
    -------
    RunResult
    """
    kind = check_kind(kind)
    check_choice("task", task, TASKS)
    length = check_int("length", length, minimum=2 if task == "adding" else 0)
    seed = check_int("seed", seed, minimum=0)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    evaluate_every = check_int("evaluate_every", evaluate_every, minimum=1)
    test_size = check_int("test_size", test_size, minimum=1)
    test_seed = check_int("test_seed", test_seed, minimum=0)
    lr = check_real("lr", lr, positive=True)
    max_norm = check_real("max_norm", max_norm, positive=True)
    solved_mse = check_real("solved_mse", solved_mse, positive=True)
    solved_accuracy = check_real("solved_accuracy", solved_accuracy)
    if not isinstance(stop_when_solved, bool):
        raise TypeError(f"stop_when_solved must be True or False, got {describe(stop_when_solved)}")
    if task == "adding" and (distractors is not None or min_length is not None
                             or distractor_share is not None):
        raise ValueError(f"distractors, distractor_share and min_length apply to "
                         f"task='agreement' only, got distractors={distractors}, "
                         f"distractor_share={distractor_share}, min_length={min_length}")
    distractor_share = _check_share(distractor_share)
    if distractors is not None and distractor_share is not None:
        raise ValueError(f"give distractors or distractor_share, not both; got "
                         f"distractors={distractors}, distractor_share={distractor_share}")
    if min_length is not None:
        min_length = check_int("min_length", min_length, minimum=0)
        if min_length > length:
            raise ValueError(f"min_length must be at most length={length}, got {min_length}")
    device = choose_device() if device is None else torch.device(device)
    settings = {"length": length, "hidden_size": hidden_size, "steps": steps,
                "batch_size": batch_size, "lr": lr, "max_norm": max_norm,
                "forget_bias": forget_bias, "update_bias": update_bias,
                "min_length": min_length, "distractors": distractors,
                "distractor_share": distractor_share,
                "evaluate_every": evaluate_every, "test_size": test_size,
                "test_seed": test_seed}

    def batch(size: int, rng: np.random.Generator,
              training: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if task == "adding":
            return adding_problem(length, size, rng, as_torch=True)
        distance = length
        if training and min_length is not None:
            distance = int(rng.integers(min_length, length + 1))
        return _agreement_batch(distance, size, rng, distractors, distractor_share)

    start = time.process_time()
    if device.type == "cuda":  # cuDNN's deterministic algorithms: the same run each time
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    model = make_model(kind, task, hidden_size, forget_bias=forget_bias,
                       update_bias=update_bias).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss() if task == "adding" else nn.CrossEntropyLoss()
    test = batch(test_size, np.random.default_rng(test_seed), training=False)
    rng = np.random.default_rng([seed, 1])
    result = RunResult(kind=kind, task=task, seed=seed, settings=settings,
                       parameters=sum(p.numel() for p in model.recurrent.parameters()))
    done = 0
    while done < steps:
        count = min(evaluate_every, steps - done)
        batches = [batch(batch_size, rng) for _ in range(count)]
        fit(model, batches, loss_fn=loss_fn, optimizer=optimizer, epochs=1,
            max_norm=max_norm, batch_dim=(1, 0), progress=False, seed=seed)
        done += count
        score = _test_metric(model, task, test, device)
        result.steps.append(done)
        result.metric.append(score)
        met = score <= solved_mse if task == "adding" else score >= solved_accuracy
        if met and result.solved_at is None:
            result.solved_at = done
            if stop_when_solved:
                break
    result.model = model.cpu().eval()
    result.seconds = time.process_time() - start
    return result


def score_on_task(model: nn.Module, task: str, length: int, *, test_size: int = 512,
                  test_seed: int = 12345, distractors: int | None = None,
                  distractor_share: float | None = None, device: Any = None) -> float:
    """The test metric of a trained model on a fresh test set of another length.

    ``train_on_task`` scores one test set, at the training length; this scores another:
    ``test_size`` sequences of length ``length`` (T for the adding problem, the distance for
    agreement) drawn from ``numpy.random.default_rng(test_seed)``. Use it to see whether a
    model trained at one length works at another.

    Parameters
    ----------
    model : torch.nn.Module
        A trained ``SequenceModel`` (for example ``RunResult.model``) for ``task``.
    task : {"adding", "agreement"}
    length : int
    test_size, test_seed : int
    distractors, distractor_share : optional
        Agreement only: nouns of random number between subject and query, as in
        ``train_on_task``.
    device : str or torch.device, optional
        Where to score; the device of the model's parameters by default.

    Returns
    -------
    float
        The mean squared error (adding) or the accuracy (agreement).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    check_choice("task", task, TASKS)
    length = check_int("length", length, minimum=2 if task == "adding" else 0)
    test_size = check_int("test_size", test_size, minimum=1)
    test_seed = check_int("test_seed", test_seed, minimum=0)
    rng = np.random.default_rng(test_seed)
    if task == "adding":
        if distractors is not None or distractor_share is not None:
            raise ValueError(f"distractors and distractor_share apply to task='agreement' "
                             f"only, got distractors={distractors}, "
                             f"distractor_share={distractor_share}")
        test = adding_problem(length, test_size, rng, as_torch=True)
    else:
        test = _agreement_batch(length, test_size, rng, distractors, distractor_share)
    if device is None:
        device = next(model.parameters()).device
    return _test_metric(model, task, test, torch.device(device))


# --------------------------------------------------------------------------------------
# Several kinds and seeds
# --------------------------------------------------------------------------------------


def run_seeds(kinds: Iterable[str], seeds: Iterable[int], task: str,
              **settings: Any) -> dict[tuple[str, int], RunResult]:
    """``train_on_task`` for every kind and every seed with the same settings.

    Returns
    -------
    dict
        ``results[kind, seed]`` is a ``RunResult``, ``kind`` spelled as in
        ``measure.KINDS``.
    """
    kinds, seeds = [check_kind(kind) for kind in kinds], list(seeds)
    if not kinds or not seeds:
        raise ValueError(f"kinds and seeds must not be empty, got kinds={kinds}, seeds={seeds}")
    return {(kind, seed): train_on_task(kind, task, seed=seed, **settings)
            for kind in kinds for seed in seeds}


def summarize(results: Mapping[tuple[str, int], RunResult] | Sequence[RunResult]
              ) -> dict[str, dict[str, Any]]:
    """Per kind: how many seeds solved the task, in how many steps, and the final metric.

    Parameters
    ----------
    results : dict or sequence of RunResult
        From ``run_seeds`` (or a list of ``train_on_task`` results).

    Returns
    -------
    dict
        ``summary[kind]`` has ``"runs"``, ``"solved"`` (count), ``"solved_at"`` (list,
        ``None`` for unsolved seeds), ``"steps_mean"``, ``"steps_min"``, ``"steps_max"``
        (over the solved seeds; NaN when none solved), ``"final"`` (list of final metrics),
        ``"final_mean"`` and ``"final_std"`` (population standard deviation).
    """
    runs = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not runs or not all(isinstance(run, RunResult) for run in runs):
        raise TypeError(f"results must hold RunResult objects, got {describe(results)}")
    summary: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(run.kind for run in runs):
        mine = [run for run in runs if run.kind == kind]
        solved = [run.solved_at for run in mine if run.solved_at is not None]
        finals = np.array([run.final for run in mine])
        summary[kind] = {
            "runs": len(mine),
            "solved": len(solved),
            "solved_at": [run.solved_at for run in mine],
            "steps_mean": float(np.mean(solved)) if solved else float("nan"),
            "steps_min": float(min(solved)) if solved else float("nan"),
            "steps_max": float(max(solved)) if solved else float("nan"),
            "final": finals.tolist(),
            "final_mean": float(finals.mean()),
            "final_std": float(finals.std()),
        }
    return summary
