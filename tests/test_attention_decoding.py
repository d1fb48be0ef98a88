"""The tiny causal attention with a key/value cache, and the counts of decoding costs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from throughtime import attention_decoding as ad
from throughtime.linear_recurrence import MinGRU, MinLSTM


def _flops(function, *args):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        function(*args)
    return counter.get_total_flops()


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_decoding_with_the_cache_equals_the_masked_forward(heads):
    torch.manual_seed(heads)
    model = ad.TinyCausalAttention(3, 8, 2, heads=heads, dtype=torch.float64)
    inputs = torch.randn(7, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = model(inputs)
        cache = model.empty_cache(2, 10)
        decoded = torch.stack([model.decode(x, cache) for x in inputs])
    torch.testing.assert_close(decoded, expected, rtol=1e-12, atol=1e-13)
    assert cache.length == 7


def test_forward_is_causal():
    torch.manual_seed(0)
    model = ad.TinyCausalAttention(2, 4, 1, dtype=torch.float64)
    inputs = torch.randn(6, 1, 2, dtype=torch.float64)
    changed = inputs.clone()
    changed[4:] += 1.0
    with torch.no_grad():
        torch.testing.assert_close(model(inputs)[:4], model(changed)[:4])
        assert not torch.allclose(model(inputs)[4:], model(changed)[4:])


def test_cache_and_state_bytes():
    for dtype, size in ((torch.float32, 4), (torch.float64, 8)):
        model = ad.TinyCausalAttention(3, 8, 2, heads=2, dtype=dtype)
        cache = model.empty_cache(3, 20)
        with torch.no_grad():
            for _ in range(5):
                model.decode(torch.zeros(3, 3, dtype=dtype), cache)
        assert cache.nbytes() == ad.cache_bytes(5, 8, batch_size=3, bytes_per_number=size)
    assert ad.cache_bytes(0, 8) == 0
    assert ad.cache_bytes(10, 8, layers=3) == 3 * ad.cache_bytes(10, 8)
    # The state of a layer: h (and c for an LSTM), whatever the context.
    layer = nn.LSTM(3, 5)
    _, (h, c) = layer(torch.zeros(9, 1, 3))
    assert ad.state_bytes(5, kind="LSTM") == (h.numel() + c.numel()) * 4
    states, h_n = MinGRU(3, 5)(torch.zeros(9, 1, 3))
    assert ad.state_bytes(5, kind="minGRU") == h_n.numel() * 4


@pytest.mark.parametrize("context", [1, 5, 17])
def test_decode_flops_of_attention_match_torch_flop_counter(context):
    model = ad.TinyCausalAttention(3, 8, 2, heads=2)
    cache = model.empty_cache(2, 32)
    with torch.no_grad():
        for _ in range(context - 1):
            model.decode(torch.zeros(2, 3), cache)
    counted = _flops(model.decode, torch.zeros(2, 3), cache)
    assert counted == ad.decode_flops("attention", 3, 8, 2, context=context, batch_size=2)


@pytest.mark.parametrize("kind,cls", [("minGRU", MinGRU), ("minLSTM", MinLSTM)])
def test_decode_flops_of_a_min_layer_match_torch_flop_counter(kind, cls):
    layer, head = cls(3, 6), nn.Linear(6, 2)

    def step(x, h):
        return head(layer.step(x, h))

    counted = _flops(step, torch.zeros(4, 3), torch.zeros(4, 6))
    assert counted == ad.decode_flops(kind, 3, 6, 2, batch_size=4)
    # No term depends on the context.
    assert ad.decode_flops(kind, 3, 6, 2, context=1000) == ad.decode_flops(kind, 3, 6, 2)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_decode_flops_of_a_gated_layer_match_its_matrix_products(kind):
    cell, head = getattr(nn, f"{kind}Cell")(3, 6), nn.Linear(6, 2)
    x, h = torch.zeros(4, 3), torch.zeros(4, 6)
    # The cell's two products written out as linear layers: W_ih x and W_hh h.
    weights = (cell.weight_ih, cell.weight_hh)

    def products(x, h):
        nn.functional.linear(x, weights[0])
        head(nn.functional.linear(h, weights[1])[:, :6])

    assert _flops(products, x, h) == ad.decode_flops(kind, 3, 6, 2, batch_size=4)


def test_attention_flops_grow_linearly_with_context():
    counts = [ad.decode_flops("attention", 2, 16, 1, context=c) for c in (1, 2, 3, 100)]
    assert counts[1] - counts[0] == counts[2] - counts[1] == 4 * 16
    assert counts[3] - counts[0] == 99 * 4 * 16


def test_time_per_token_measures_each_context():
    prepared = []

    def step(context):
        prepared.append(context)
        return lambda: sum(range(context))

    times = ad.time_per_token(step, [10, 1000], repeats=3, warmup=1)
    assert prepared == [10, 1000]
    assert set(times) == {10, 1000} and all(t >= 0 for t in times.values())


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="heads"):
        ad.TinyCausalAttention(2, 6, 1, heads=4)
    model = ad.TinyCausalAttention(2, 4, 1)
    with pytest.raises(ValueError, match="inputs"):
        model(torch.zeros(3, 2))
    cache = model.empty_cache(1, 2)
    with pytest.raises(ValueError, match="x"):
        model.decode(torch.zeros(1, 3), cache)
    with pytest.raises(TypeError, match="cache"):
        model.decode(torch.zeros(1, 2), None)
    with torch.no_grad():
        model.decode(torch.zeros(1, 2), cache)
        model.decode(torch.zeros(1, 2), cache)
        with pytest.raises(ValueError, match="full"):
            model.decode(torch.zeros(1, 2), cache)
    with pytest.raises(ValueError, match="context"):
        ad.decode_flops("attention", 2, 4, 1, context=0)
    with pytest.raises(ValueError, match="kind"):
        ad.decode_flops("transformer", 2, 4, 1)
    with pytest.raises(ValueError, match="context"):
        ad.cache_bytes(-1, 4)
    with pytest.raises(ValueError, match="kind"):
        ad.state_bytes(4, kind="attention")
    with pytest.raises(TypeError, match="step"):
        ad.time_per_token(3, [1])
