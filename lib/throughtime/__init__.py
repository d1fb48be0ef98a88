"""throughtime: the small library behind the book *Through Time*.

Each module holds one idea and reads top to bottom:

- ``numpy_cells``: RNN, LSTM and GRU steps and sequences in numpy, with hand-written
  backward passes (backpropagation through time).
- ``torch_cells``: the same cells as ``torch.nn.Module`` s, drop-in for ``torch.nn``.
- ``gradients``: numeric gradients, relative error, clipping, gradient norms over time.
- ``training``: seeding, device choice and a small fit loop.
- ``book``: helpers the chapters use (glueing numbers into the text).

Conventions: PyTorch's parameter names, layouts and gate orders everywhere
(LSTM i, f, g, o; GRU r, z, n), and time-major sequences of shape (T, B, I).
"""

__version__ = "0.1.0"
