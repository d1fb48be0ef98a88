"""throughtime.book: glue records values; claim is strict in the build and gentle for readers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from throughtime import book
from throughtime.book import ClaimFailed, claim, glue, strict_mode


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv(book.STRICT_VARIABLE, "1")


@pytest.fixture
def reader(monkeypatch):
    monkeypatch.delenv(book.STRICT_VARIABLE, raising=False)


def test_glue_records_plain_numbers_and_returns_nothing():
    assert glue("test_value", np.float64(0.25)) is None
    assert book.glued["test_value"] == 0.25
    assert type(book.glued["test_value"]) is float
    glue("test_tensor", torch.tensor(3))
    assert book.glued["test_tensor"] == 3 and type(book.glued["test_tensor"]) is int


def test_glue_rejects_a_name_that_is_not_an_identifier():
    with pytest.raises(ValueError, match="identifier"):
        glue("two words", 1.0)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True),
                                             ("0", False), ("", False), ("off", False)])
def test_strict_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(book.STRICT_VARIABLE, value)
    assert strict_mode() is expected


def test_strict_mode_refuses_a_typo(monkeypatch):
    monkeypatch.setenv(book.STRICT_VARIABLE, "ture")
    with pytest.raises(ValueError, match="THROUGHTIME_STRICT.*'ture'"):
        strict_mode()


def test_a_claim_that_holds_returns_true_and_prints_nothing(strict, capsys):
    assert claim(np.array([0.1, 0.2]).max() < 0.5, "every seed is below 0.5") is True
    assert capsys.readouterr().out == ""


def test_a_failing_claim_raises_in_strict_mode(strict):
    with pytest.raises(ClaimFailed) as caught:
        claim(np.array([0.18, 0.02]).max() < 0.1, "every seed learns T = 10",
              found=np.array([0.18207648, 0.01773714]))
    message = str(caught.value)
    assert "every seed learns T = 10" in message
    assert "0.1821" in message and "0.01774" in message
    assert isinstance(caught.value, AssertionError)  # nbval and the build report it as such


def test_a_failing_claim_prints_a_notice_and_continues_for_readers(reader, capsys):
    assert claim(False, "the LSTM beats the GRU", found={"LSTM": 0.5, "GRU": 0.75}) is False
    out = capsys.readouterr().out
    assert "the LSTM beats the GRU" in out
    assert "LSTM = 0.5, GRU = 0.75" in out
    assert "seed" in out and "continues" in out


def test_claim_accepts_torch_and_numpy_booleans(strict):
    assert claim(torch.tensor(True), "a tensor boolean") is True
    assert claim(np.bool_(True), "a numpy boolean") is True


@pytest.mark.parametrize("holds", [np.array([True, False]), 1, "yes", torch.tensor([True])])
def test_claim_refuses_what_is_not_one_boolean(holds):
    with pytest.raises(TypeError, match="holds must be a single boolean"):
        claim(holds, "something")


def test_claim_needs_a_statement():
    with pytest.raises(TypeError, match="statement"):
        claim(True, "")


def test_found_is_shortened_for_long_arrays(reader, capsys):
    claim(False, "a long array", found=np.arange(100.0))
    assert "(100 values)" in capsys.readouterr().out


NOTEBOOK_CELLS = [
    "from throughtime.book import claim\nreached = []",
    "claim(1 + 1 == 3, 'one and one make three', found=1 + 1)",
    "reached.append(True)\nprint('the last cell ran')",
]


def _run_notebook(tmp_path, strict_value):
    """Execute a three-cell notebook with nbclient, the way a reader's Jupyter would."""
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    script = textwrap.dedent(f"""
        import json, os, sys
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
        os.environ.pop("THROUGHTIME_STRICT", None)
        if {strict_value!r} is not None:
            os.environ["THROUGHTIME_STRICT"] = {strict_value!r}
        notebook = nbformat.reads(sys.stdin.read(), as_version=4)
        try:
            NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
            error = None
        except CellExecutionError as exc:
            error = str(exc)
        print(json.dumps({{"error": error, "notebook": nbformat.writes(notebook)}}))
    """)
    completed = subprocess.run([sys.executable, "-c", script], input=nbformat.writes(notebook),
                               capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result["error"], nbformat.reads(result["notebook"], as_version=4)


def _text(cell):
    return "".join(output.get("text", "") for output in cell.get("outputs", []))


def test_a_reader_notebook_runs_to_the_end_past_a_failing_claim(tmp_path):
    error, notebook = _run_notebook(tmp_path, None)
    assert error is None
    assert "one and one make three" in _text(notebook.cells[1])
    assert "the last cell ran" in _text(notebook.cells[2])


def test_the_same_notebook_stops_at_the_claim_in_strict_mode(tmp_path):
    error, notebook = _run_notebook(tmp_path, "1")
    assert error is not None and "ClaimFailed" in error
    assert "one and one make three" in error and "This run found: 2" in error
    assert "the last cell ran" not in _text(notebook.cells[2])
