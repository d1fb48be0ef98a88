"""The CPU kernel settings under which the seed studies (and ``make portability``) run.

Each setting caps the three kernel libraries at one instruction set: PyTorch's ATen
(``ATEN_CPU_CAPABILITY``), oneDNN (``ONEDNN_MAX_CPU_ISA``) and MKL
(``MKL_ENABLE_INSTRUCTIONS``). "native" leaves the choice to the libraries.
"""

from __future__ import annotations

import os

SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def kernel_environment(setting: str) -> dict[str, str]:
    """This process's environment under one setting, for a worker: the setting's variables
    set, the other kernel variables removed (so "native" is native whatever the caller had
    set), and one thread."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    environment = {key: value for key, value in os.environ.items()
                   if key not in KERNEL_VARIABLES}
    return environment | SETTINGS[setting] | {"OMP_NUM_THREADS": "1"}
