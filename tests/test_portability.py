"""scripts/portability.py: kernel settings, the first failing cell, and moved glued numbers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "portability.py"
spec = importlib.util.spec_from_file_location("portability", SCRIPT)
portability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(portability)


def test_three_settings_cap_every_kernel_library():
    assert {"native", "avx2", "baseline"} <= set(portability.SETTINGS)
    for name in ("avx2", "baseline"):
        assert set(portability.SETTINGS[name]) == set(portability.KERNEL_VARIABLES)


def test_the_makefile_runs_nbval_under_the_baseline_setting():
    makefile = (ROOT / "Makefile").read_text()
    expected = " ".join(f"{k}={v}" for k, v in portability.SETTINGS["baseline"].items())
    assert f"BASELINE_KERNELS := {expected}" in makefile
    assert "$(BASELINE_KERNELS) $(BIN)/python -m pytest --nbval-lax" in makefile


def test_moved_reports_only_text_changes_as_visible():
    native = {"a": "0.12345", "b": "3.0", "c": "7", "d": "0.5"}
    other = {"a": "0.12349", "b": "3.0", "c": "8", "d": "0.5000000000001"}
    formats = {"a": {".3f"}, "b": {".1f"}, "c": {""}, "d": {".3f"}}
    changed, visible = portability.moved(native, other, formats)
    assert changed == ["a", "c"]  # d differs by less than the tolerance
    assert [v["name"] for v in visible] == ["c"]  # a is shown as 0.123 both times
    assert visible[0]["native"] == "7" and visible[0]["other"] == "8"


def test_glue_formats_reads_the_prose(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("MSE {glue:text}`mse:.3f`, seeds {glue:}`seeds`, "
                                      "again {glue:text}`mse:.1e`."),
        nbformat.v4.new_code_cell("x = 1"),
    ])
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert portability.glue_formats(path) == {"mse": {".3f", ".1e"}, "seeds": {""}}


@pytest.mark.parametrize("strict", ["1", "0"])
def test_run_one_finds_the_failing_claim_and_its_cell(tmp_path, strict):
    cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell("from throughtime.book import claim, glue\nglue('x', 0.5)"),
        nbformat.v4.new_code_cell("claim(0.5 > 1, 'x exceeds one', found=0.5)"),
        nbformat.v4.new_code_cell("glue('y', 2.0)"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    source = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, source)
    result_file = tmp_path / "result.json"
    environment = {"THROUGHTIME_STRICT": strict, "PATH": str(Path(sys.executable).parent)}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--run-one", str(source), "--output",
         str(tmp_path / "out.ipynb"), "--result", str(result_file), "--timeout", "120"],
        env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(result_file.read_text())
    if strict == "1":
        assert result["failure"]["code_cell"] == 1  # nbval's numbering: code cells only
        assert result["failure"]["cell"] == 2
        assert "ClaimFailed" in result["failure"]["error"]
        assert "x exceeds one" in result["failure"]["error"]
        assert result["glued"] == {"x": "0.5"}
    else:
        assert result["failure"] is None
        assert result["glued"] == {"x": "0.5", "y": "2.0"}
