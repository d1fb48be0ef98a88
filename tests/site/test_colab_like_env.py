"""The library in a Colab-like environment (ipywidgets 7.7, torch preinstalled).

It builds a fresh virtual environment with pip, which takes minutes, so it runs only when
asked: ``THROUGHTIME_ENV_CHECK=1 pytest tests/site -m colab_like`` (or ``make check-colab``,
which runs scripts/colab_like_check.py directly). It needs no built website.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from site_support import REPOSITORY_ROOT

pytestmark = [
    pytest.mark.colab_like,
    pytest.mark.skipif(
        os.environ.get("THROUGHTIME_ENV_CHECK") != "1",
        reason="the Colab-like environment check runs with THROUGHTIME_ENV_CHECK=1",
    ),
]


def test_library_works_with_colab_like_packages() -> None:
    result = subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / "scripts" / "colab_like_check.py")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "colab-like check passed" in result.stdout
