"""A tiny causal attention model with a key/value cache, and what one generated token costs.

A recurrent network carries its past in a state of fixed size: the next token costs the
same whatever came before. A causal self-attention layer (Vaswani et al. 2017) reads the
whole past at every token; when it generates one token at a time it keeps the keys and
values of every earlier token (the *key/value cache*), so that each new token computes
only its own query, key and value and attends over the cache. The cache grows by one key
and one value per token and per layer, and the attention over it costs a multiply-add per
cached number.

- ``TinyCausalAttention``: a read-in, one causal self-attention layer (``heads`` heads of
  size D / heads, no positional encoding: this model exists to be measured, not trained)
  and a read-out; ``forward`` runs a whole sequence with a causal mask, ``decode`` one
  token with the cache, and the two are equal.
- ``KeyValueCache``: preallocated keys and values and how many are filled.
- ``cache_bytes`` and ``state_bytes``: memory per sequence, exactly.
- ``decode_flops``: the multiply-adds of one decoding step, counted from the shapes (2 per
  multiply-add, the convention of ``torch.utils.flop_counter``), for the attention model
  and for a recurrent step.
- ``time_per_token``: the CPU time of one decoding step at several context lengths,
  medians over repeats.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._validate import check_choice, check_int, describe

__all__ = [
    "KeyValueCache",
    "TinyCausalAttention",
    "cache_bytes",
    "state_bytes",
    "decode_flops",
    "time_per_token",
]


@dataclass
class KeyValueCache:
    """Keys and values of the tokens seen so far, preallocated for ``capacity`` tokens.

    Attributes
    ----------
    keys, values : Tensor, shape (B, heads, capacity, D / heads)
    length : int
        How many positions are filled (the context length L).
    """

    keys: Tensor
    values: Tensor
    length: int = 0

    @property
    def capacity(self) -> int:
        """The most tokens the cache can hold."""
        return self.keys.shape[2]

    def filled(self) -> tuple[Tensor, Tensor]:
        """Views of the filled part: keys and values of shape (B, heads, L, D / heads)."""
        return self.keys[:, :, :self.length], self.values[:, :, :self.length]

    def nbytes(self) -> int:
        """Bytes held by the filled keys and values (what the context costs in memory)."""
        keys, values = self.filled()
        return keys.numel() * keys.element_size() + values.numel() * values.element_size()


class TinyCausalAttention(nn.Module):
    """Read-in, one causal self-attention layer, read-out: (T, B, I) -> (T, B, O).

    .. math::

        e_t = W_e x_t + b_e, \\quad q_t, k_t, v_t = W_q e_t, W_k e_t, W_v e_t
        \\ (\\text{plus biases}), \\quad
        a_t = \\sum_{s \\le t} \\operatorname{softmax}_s\\big(q_t^\\top k_s / \\sqrt{d}\\big)\\,
        v_s, \\quad y_t = W_y (W_o a_t + b_o) + b_y

    per head (d = D / heads). Parameters: ``read_in`` (D, I), ``qkv`` (3 D, D) with the
    blocks q, k, v, ``mix`` (D, D), ``read_out`` (O, D), each an ``nn.Linear`` with bias.

    Parameters
    ----------
    input_size, model_size, output_size : int
        I, D and O.
    heads : int
        Attention heads; must divide D.
    """

    def __init__(self, input_size: int, model_size: int, output_size: int, *, heads: int = 1,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        input_size = check_int("input_size", input_size, minimum=1)
        model_size = check_int("model_size", model_size, minimum=1)
        output_size = check_int("output_size", output_size, minimum=1)
        heads = check_int("heads", heads, minimum=1)
        if model_size % heads:
            raise ValueError(f"heads must divide model_size = {model_size}, got {heads}")
        self.input_size, self.model_size, self.output_size = input_size, model_size, output_size
        self.heads, self.head_size = heads, model_size // heads
        self.read_in = nn.Linear(input_size, model_size, dtype=dtype)
        self.qkv = nn.Linear(model_size, 3 * model_size, dtype=dtype)
        self.mix = nn.Linear(model_size, model_size, dtype=dtype)
        self.read_out = nn.Linear(model_size, output_size, dtype=dtype)

    def _queries_keys_values(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        embedded = self.read_in(inputs)
        return self.qkv(embedded).chunk(3, dim=-1)

    def _attend(self, queries: Tensor, keys: Tensor, values: Tensor,
                causal: bool) -> Tensor:
        """queries (B, h, Tq, d), keys/values (B, h, L, d) -> (B, h, Tq, d)."""
        scores = torch.matmul(queries, keys.transpose(-1, -2)) / math.sqrt(self.head_size)
        if causal:
            steps = scores.shape[-1]
            blocked = torch.ones(steps, steps, dtype=torch.bool, device=scores.device).triu(1)
            scores = scores.masked_fill(blocked, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), values)

    def _heads(self, tensor: Tensor) -> Tensor:
        """(T, B, D) -> (B, heads, T, d)."""
        length, batch, _ = tensor.shape
        return tensor.reshape(length, batch, self.heads, self.head_size).permute(1, 2, 0, 3)

    def _merge(self, tensor: Tensor) -> Tensor:
        """(B, heads, T, d) -> (T, B, D)."""
        batch, _, length, _ = tensor.shape
        return tensor.permute(2, 0, 1, 3).reshape(length, batch, self.model_size)

    def forward(self, inputs: Tensor) -> Tensor:
        """All positions at once with a causal mask: (T, B, I) -> (T, B, O)."""
        if not isinstance(inputs, Tensor) or inputs.ndim != 3 or \
                inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must have shape (T, B, I) with I = {self.input_size}, "
                             f"got {describe(inputs)}")
        queries, keys, values = (self._heads(part) for part in
                                 self._queries_keys_values(inputs))
        attended = self._merge(self._attend(queries, keys, values, causal=True))
        return self.read_out(self.mix(attended))

    def empty_cache(self, batch_size: int, capacity: int) -> KeyValueCache:
        """A cache for ``batch_size`` sequences of up to ``capacity`` tokens."""
        batch_size = check_int("batch_size", batch_size, minimum=1)
        capacity = check_int("capacity", capacity, minimum=1)
        weight = self.qkv.weight
        shape = (batch_size, self.heads, capacity, self.head_size)
        return KeyValueCache(torch.zeros(shape, dtype=weight.dtype, device=weight.device),
                             torch.zeros(shape, dtype=weight.dtype, device=weight.device))

    def decode(self, x: Tensor, cache: KeyValueCache) -> Tensor:
        """One more token: x (B, I) -> y (B, O); its key and value are appended to ``cache``.

        The query of the new token attends over every cached key, its own included, so
        token t of ``decode`` equals position t of ``forward``.
        """
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape (B, I) with I = {self.input_size}, got "
                             f"{describe(x)}")
        if not isinstance(cache, KeyValueCache):
            raise TypeError(f"cache must be a KeyValueCache (from empty_cache), got "
                            f"{describe(cache)}")
        if cache.length >= cache.capacity:
            raise ValueError(f"the cache is full ({cache.capacity} tokens); make a larger one "
                             "with empty_cache")
        query, key, value = (self._heads(part[None]) for part in
                             self._queries_keys_values(x))           # (B, h, 1, d)
        cache.keys[:, :, cache.length] = key[:, :, 0]
        cache.values[:, :, cache.length] = value[:, :, 0]
        cache.length += 1
        keys, values = cache.filled()
        attended = self._merge(self._attend(query, keys, values, causal=False))[0]
        return self.read_out(self.mix(attended))


def cache_bytes(context: int, model_size: int, *, layers: int = 1, batch_size: int = 1,
                bytes_per_number: int = 4) -> int:
    """Memory of a key/value cache: 2 L D numbers per layer and sequence (keys and values)."""
    context = check_int("context", context, minimum=0)
    model_size = check_int("model_size", model_size, minimum=1)
    layers = check_int("layers", layers, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    bytes_per_number = check_int("bytes_per_number", bytes_per_number, minimum=1)
    return 2 * context * model_size * layers * batch_size * bytes_per_number


def state_bytes(hidden_size: int, *, kind: str = "minGRU", layers: int = 1, batch_size: int = 1,
                bytes_per_number: int = 4) -> int:
    """Memory of a recurrent state: H numbers per layer (2 H for an LSTM: h and c)."""
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    check_choice("kind", kind, ("minGRU", "minLSTM", "GRU", "LSTM", "RNN"))
    layers = check_int("layers", layers, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    bytes_per_number = check_int("bytes_per_number", bytes_per_number, minimum=1)
    per_layer = 2 * hidden_size if kind == "LSTM" else hidden_size
    return per_layer * layers * batch_size * bytes_per_number


def decode_flops(kind: str, input_size: int, size: int, output_size: int, *,
                 context: int = 0, batch_size: int = 1) -> int:
    """Floating-point operations of the matrix products of one decoding step (2 per multiply-add).

    - ``"attention"`` (``TinyCausalAttention``, D = ``size``), with L = ``context`` tokens in
      the cache after this one is added: read-in 2 I D, q/k/v 6 D^2, mix 2 D^2, read-out
      2 D O, and the attention itself 4 L D (scores q k^T and the weighted sum of values),
      so the count grows linearly in L.
    - ``"minGRU"``, ``"minLSTM"`` (H = ``size``): 2 G H I for W_ih x and 2 H O for the
      read-out, G = 2 or 3: no term depends on the context.
    - ``"GRU"``, ``"LSTM"``: 2 G H (I + H) and the read-out, G = 3 or 4.

    Biases and elementwise operations are not counted (nor are they by
    ``torch.utils.flop_counter.FlopCounterMode``, which the tests compare with).
    """
    check_choice("kind", kind, ("attention", "minGRU", "minLSTM", "GRU", "LSTM"))
    input_size = check_int("input_size", input_size, minimum=1)
    size = check_int("size", size, minimum=1)
    output_size = check_int("output_size", output_size, minimum=1)
    context = check_int("context", context, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if kind == "attention":
        if context < 1:
            raise ValueError("context must be at least 1 for attention (the token itself)")
        per_sequence = 2 * (input_size * size + 4 * size * size + size * output_size) \
            + 4 * context * size
    else:
        gates = {"minGRU": 2, "minLSTM": 3, "GRU": 3, "LSTM": 4}[kind]
        recurrent = size if kind in ("GRU", "LSTM") else 0
        per_sequence = 2 * gates * size * (input_size + recurrent) + 2 * size * output_size
    return per_sequence * batch_size


def time_per_token(step: Callable[[int], Callable[[], Any]], contexts: Iterable[int], *,
                   repeats: int = 20, warmup: int = 3) -> dict[int, float]:
    """Median CPU seconds of one decoding step at each context length.

    ``step(context)`` prepares a model at that context (a cache filled with ``context``
    tokens, or a recurrent state) and returns a function that runs one step there and
    restores what it changed, so that every repeat measures the same step. The clock is
    ``time.process_time`` (CPU time of this process), which other programs on a shared
    machine disturb less than the wall clock.
    """
    if not callable(step):
        raise TypeError(f"step must be a callable step(context) -> run(), got {describe(step)}")
    repeats = check_int("repeats", repeats, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    medians = {}
    for context in contexts:
        context = check_int("context", context, minimum=0)
        run = step(context)
        with torch.no_grad():
            for _ in range(warmup):
                run()
            samples = []
            for _ in range(repeats):
                start = time.process_time()
                run()
                samples.append(time.process_time() - start)
        medians[context] = float(np.median(samples))
    return medians
