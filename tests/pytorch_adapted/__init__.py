"""Support for the tests adapted from PyTorch's own test suite (licence: LICENSE here)."""
