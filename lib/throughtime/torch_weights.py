"""Weights between the numpy cells' parameter dicts and ``torch.nn`` modules.

``params_from_torch`` reads a ``torch.nn.RNN``/``LSTM``/``GRU`` (or a cell, or the library's
own ``torch_cells``) into a dict of float arrays in PyTorch's layout; ``params_to_torch``
and ``load_into_torch`` go the other way, so the same weights run in numpy and in torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._validate import describe
from .numpy_cells import PARAM_NAMES, Params, _check_params

__all__ = [
    "params_from_torch",
    "params_to_torch",
    "load_into_torch",
]


# --------------------------------------------------------------------------------------
# Moving weights between numpy and torch
# --------------------------------------------------------------------------------------


def _torch_parameter_names(module: Any) -> dict[str, str]:
    """Map the book's names to the names of ``module``'s parameters (with or without _l0)."""
    import torch

    if isinstance(module, torch.nn.RNNBase):
        problems = []
        if module.num_layers != 1:
            problems.append(f"num_layers={module.num_layers} (expected 1)")
        if module.bidirectional:
            problems.append("bidirectional=True (expected False)")
        if getattr(module, "proj_size", 0):
            problems.append(f"proj_size={module.proj_size} (expected 0)")
        if problems:
            raise ValueError(f"module must be a one-layer unidirectional {type(module).__name__}"
                             f" without projection, got {', '.join(problems)}")
    names = {name for name, _ in module.named_parameters()}
    return _match_names("module", names)


def _match_names(argument: str, names: set[str]) -> dict[str, str]:
    for suffix in ("", "_l0"):
        if {name + suffix for name in PARAM_NAMES} == names:
            return {name: name + suffix for name in PARAM_NAMES}
    raise ValueError(
        f"{argument} must hold exactly the parameters {list(PARAM_NAMES)} (optionally with "
        f"the suffix _l0: a one-layer, unidirectional RNN/LSTM/GRU with bias=True), "
        f"got {sorted(names)}"
    )


def params_from_torch(source: Any) -> dict[str, np.ndarray]:
    """Copy the weights of a torch RNN/LSTM/GRU (or a cell, or a state dict) to numpy.

    Parameters
    ----------
    source : torch.nn.Module or dict of tensors
        A one-layer unidirectional ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (names ending in
        ``_l0``), an ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell`` or any module with the
        same four parameters, or a state dict of one of them.

    Returns
    -------
    dict
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` as new numpy arrays with the
        torch dtype (float32 stays float32).
    """
    import torch

    if isinstance(source, torch.nn.Module):
        names = _torch_parameter_names(source)
        tensors = dict(source.named_parameters())
    elif isinstance(source, Mapping):
        names = _match_names("source", {str(name) for name in source})
        tensors = source
    else:
        raise TypeError(
            f"source must be a torch.nn.Module or a state dict, got {describe(source)}"
        )
    params = {}
    for name, torch_name in names.items():
        tensor = tensors[torch_name]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"source[{torch_name!r}] must be a torch.Tensor, "
                            f"got {describe(tensor)}")
        if tensor.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"source[{torch_name!r}] must be float32 or float64, "
                            f"got {tensor.dtype}")
        params[name] = tensor.detach().cpu().numpy().copy()
    _check_params(params, None)
    return params


def params_to_torch(params: Params) -> dict[str, Any]:
    """Copy numpy ``params`` to new torch tensors with the same keys, shapes and dtype."""
    import torch

    _check_params(params, None)
    return {name: torch.from_numpy(np.array(params[name])) for name in PARAM_NAMES}


def load_into_torch(params: Params, module: Any) -> Any:
    """Copy numpy ``params`` into a torch module's parameters, in place, and return it.

    ``module`` is a one-layer unidirectional ``nn.RNN``/``nn.LSTM``/``nn.GRU``, a cell, or
    any module with the four parameters. Shapes and dtype must match exactly (call
    ``module.double()`` for float64 params): the copy is exact, never a silent cast.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {describe(module)}")
    _check_params(params, None)
    names = _torch_parameter_names(module)
    targets = dict(module.named_parameters())
    for name, torch_name in names.items():
        target, value = targets[torch_name], params[name]
        if tuple(target.shape) != value.shape:
            raise ValueError(
                f"params['{name}'] has shape {value.shape} but {type(module).__name__}."
                f"{torch_name} has shape {tuple(target.shape)}"
            )
        if target.dtype != torch.from_numpy(value[:0]).dtype:
            raise TypeError(
                f"params['{name}'] is {value.dtype} but {type(module).__name__}.{torch_name} is "
                f"{target.dtype}; convert one of them first (module.double() or .astype)"
            )
    with torch.no_grad():
        for name, torch_name in names.items():
            targets[torch_name].copy_(torch.from_numpy(params[name]))
    return module
