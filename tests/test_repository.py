"""The repository's own invariants: clean notebooks, one repository setting, the toc."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_cell = _load_script("setup_cell")


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def expected_install_url(config: dict) -> str:
    url = config["repository"]["url"].rstrip("/")
    repo = url.removeprefix("https://github.com/")
    return f"git+https://github.com/{repo}@{config['repository']['branch']}"


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapter notebooks found in chapters/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path: Path):
    notebook = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} carry outputs or execution counts; "
        f"strip them with `.venv/bin/nbstripout {path.relative_to(ROOT)}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_from_the_configured_repository(path: Path):
    notebook = json.loads(path.read_text())
    first_code = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    source = cell_source(first_code)
    repo, branch = setup_cell.configured_repository(ROOT)
    assert setup_cell.is_canonical(source, repo, branch), (
        f"{path.name}: the first code cell is not the setup cell of scripts/setup_cell.py "
        "(which installs throughtime wherever it is missing); rewrite it with "
        "`.venv/bin/python scripts/setup_cell.py`"
    )
    assert "remove-cell" in first_code["metadata"].get("tags", []), (
        f"{path.name}: the setup cell must be tagged remove-cell (hidden on the website)"
    )
    urls = re.findall(r"git\+https://github\.com/[^\"'\s]+", source)
    expected = expected_install_url(load_config())
    assert urls == [expected], (
        f"{path.name}: the setup cell installs {urls}, but _config.yml names {expected}; "
        "run `make retarget REPO=org/name BRANCH=branch`"
    )
    for package in ("numpy", "torch", "ipywidgets"):
        assert not re.search(rf"[\"']{package}\b", source), (
            f"{path.name}: the setup cell must not (re)install {package} in Colab"
        )


def test_launch_buttons_open_the_reader_notebooks_branch():
    config = load_config()
    theme = config["sphinx"]["config"]["html_theme_options"]
    launch = theme.get("repository_branch")
    assert launch, "html_theme_options.repository_branch must name the reader notebooks' branch"
    assert launch != config["repository"]["branch"], (
        "the reader notebooks must be published to a branch of their own, not over the sources"
    )
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "scripts/reader_notebooks.py" in workflow or "make notebooks" in workflow
    assert "repository_branch" in workflow, "the workflow must publish to the configured branch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_python3_kernel(path: Path):
    kernelspec = json.loads(path.read_text())["metadata"].get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec is {kernelspec}"


def toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += toc_files(item)
    return files


def test_every_chapter_is_in_the_table_of_contents():
    listed = set(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    for path in NOTEBOOKS:
        name = f"chapters/{path.stem}"
        assert name in listed, f"{name} is not listed in _toc.yml"
    for name in listed:
        candidates = [ROOT / f"{name}{ext}" for ext in (".md", ".ipynb")]
        assert any(c.exists() for c in candidates), f"_toc.yml lists {name}, which does not exist"


def test_retarget_rewrites_config_and_every_setup_cell(tmp_path: Path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "chapters", tmp_path / "chapters", ignore=shutil.ignore_patterns("_*"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retarget.py"), "my-school/rnn-course", "spring",
         "--root", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )
    config = load_config(tmp_path)
    assert config["repository"]["url"] == "https://github.com/my-school/rnn-course"
    assert config["repository"]["branch"] == "spring"
    expected = "git+https://github.com/my-school/rnn-course@spring"
    for path in sorted((tmp_path / "chapters").glob("*.ipynb")):
        assert expected in path.read_text(), f"{path.name} was not retargeted:\n{result.stdout}"
        json.loads(path.read_text())  # still valid JSON


def test_retarget_keeps_the_setup_cells_canonical_and_names_the_notebooks_branch(
        tmp_path: Path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "chapters", tmp_path / "chapters", ignore=shutil.ignore_patterns("_*"))
    subprocess.run([sys.executable, str(ROOT / "scripts" / "setup_cell.py"), "--root",
                    str(tmp_path)], capture_output=True, text=True, check=True)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retarget.py"), "my-school/rnn-course", "spring",
         "--notebooks-branch", "spring-notebooks", "--root", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )
    config = load_config(tmp_path)
    assert config["sphinx"]["config"]["html_theme_options"]["repository_branch"] == (
        "spring-notebooks")
    for path in sorted((tmp_path / "chapters").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        source = cell_source(next(c for c in notebook["cells"] if c["cell_type"] == "code"))
        assert setup_cell.is_canonical(source, "my-school/rnn-course", "spring"), path.name
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "setup_cell.py"), "--check",
                            "--root", str(tmp_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_retarget_refuses_to_publish_notebooks_over_the_sources(tmp_path: Path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retarget.py"), "my-school/rnn-course", "spring",
         "--notebooks-branch", "spring", "--root", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "--notebooks-branch must be a git branch name other than" in result.stderr
    assert (tmp_path / "_config.yml").read_text() == (ROOT / "_config.yml").read_text()


def test_retarget_rejects_a_malformed_repository(tmp_path: Path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retarget.py"), "not a repo", "main",
         "--root", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "repo must look like ORG/NAME" in result.stderr
    assert (tmp_path / "_config.yml").read_text() == (ROOT / "_config.yml").read_text()


def test_requirements_pin_every_direct_dependency_exactly():
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
    ]
    lines = [line for line in lines if line and not line.startswith("-e")]
    loose = [line for line in lines if "==" not in line]
    assert not loose, f"requirements.txt must pin exactly (==): {loose}"
    names = {line.split("==")[0].lower() for line in lines}
    for required in ("torch", "jupyter-book", "numpy", "nbval", "pytest-xdist"):
        assert required in names, f"requirements.txt does not pin {required}"
    pins = dict(line.lower().split("==") for line in lines)
    assert pins["jupyter-book"].startswith("1."), "the book needs Jupyter Book 1 (Sphinx)"
