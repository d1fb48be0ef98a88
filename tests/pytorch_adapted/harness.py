"""What the tests adapted from PyTorch share: the class swap and PyTorch's test harness.

``SWAP`` maps each ``torch.nn`` recurrent module to its ``throughtime.torch_cells`` twin.
``library_module_db()`` returns torch 2.13's own ``ModuleInfo`` entries for those six
modules (their sample inputs, error inputs and flags, from
``torch.testing._internal.common_modules.module_db``) with ``module_cls`` swapped for the
library's class.

Importing ``torch.testing._internal.common_utils`` freezes ``torch.backends``' global
flags for the whole process (PyTorch's suite sets them only inside context managers).
This project's other tests set ``torch.backends.cudnn`` flags directly, and pytest imports
every test module into the same process, so the flags are thawed right after the import.
"""

from __future__ import annotations

import copy
import unittest

import torch
import torch.testing._internal.common_utils  # noqa: F401  (freezes the flags; see above)
from torch import nn
from torch.testing._internal.common_methods_invocations import DecorateInfo
from torch.testing._internal.common_modules import ModuleInfo, module_db

from throughtime import torch_cells

setattr(torch.backends, "__allow_nonbracketed_mutation_flag", True)

SWAP = {
    nn.RNNCell: torch_cells.RNNCell,
    nn.LSTMCell: torch_cells.LSTMCell,
    nn.GRUCell: torch_cells.GRUCell,
    nn.RNN: torch_cells.RNN,
    nn.LSTM: torch_cells.LSTM,
    nn.GRU: torch_cells.GRU,
}


class LibraryModuleInfo(ModuleInfo):
    """A ``torch.nn`` module's ``ModuleInfo`` whose ``module_cls`` is the library's class."""

    @property
    def name(self) -> str:
        return f"torch_cells.{self.module_cls.__name__}"


def covering_subset(samples: list) -> list:
    """The fewest samples, picked greedily in order, in which every value of every
    constructor argument, and every number of forward arguments (an initial state given
    or not), appears at least once."""
    def features(sample) -> set:
        constructor = sample.constructor_input
        found = {("arg", index, repr(value)) for index, value in enumerate(constructor.args)}
        found |= {("kwarg", key, repr(value)) for key, value in constructor.kwargs.items()}
        found.add(("forward arguments", len(sample.forward_input.args)))
        return found

    uncovered = set().union(*(features(sample) for sample in samples))
    chosen = []
    while uncovered:
        best = max(samples, key=lambda sample: len(features(sample) & uncovered))
        chosen.append(best)
        uncovered -= features(best)
    return chosen


def library_module_db(*, covering_samples: bool = False) -> list[ModuleInfo]:
    """torch 2.13's ModuleInfo of nn.RNN, LSTM, GRU and their cells, classes swapped.

    Their ``decorators`` are dropped: they mark cuDNN's and MPS's known failures (double
    backward, non-contiguous hx), which concern ``torch.nn``'s kernels, not these classes.
    One documented difference is marked instead: the error inputs that ``nn.RNNCell`` and
    ``nn.GRUCell`` share build ``RNNCell(10, 20, 'relu')`` and ``GRUCell(10, 20, 'relu')``,
    where 'relu' lands in the third positional argument, ``bias``. ``torch.nn``'s cells
    accept any value there; the library's refuse a non-bool ``bias`` with a ``TypeError``
    (as ``torch.nn``'s layers do), so ``test_errors`` fails on that input for these two
    cells: it is marked as an expected failure, and the library's own tests check the two
    cells' other error inputs and this refusal.

    With ``covering_samples``, each layer's sample inputs are cut to a covering subset
    (``covering_subset``): the gradient checks run on it, to keep the suite's run time
    within bounds (``gradgradcheck`` of every sample and every parameter would take
    minutes, for ``torch.nn``'s modules as for these).
    """
    infos = []
    for info in module_db:
        if info.module_cls in SWAP:
            ours = copy.copy(info)
            ours.__class__ = LibraryModuleInfo
            ours.module_cls = SWAP[info.module_cls]
            ours.decorators = ()
            if info.module_cls in (nn.RNNCell, nn.GRUCell):
                ours.decorators = (DecorateInfo(unittest.expectedFailure, "TestModule",
                                                "test_errors"),)
            if covering_samples:
                ours.module_inputs_func = _covering(info.module_inputs_func)
            infos.append(ours)
    assert len(infos) == len(SWAP), "torch's module_db lacks a recurrent module"
    return infos


def _covering(module_inputs_func):
    def subset(*args, **kwargs):
        samples = list(module_inputs_func(*args, **kwargs))
        return samples if len(samples) <= 4 else covering_subset(samples)
    return subset
