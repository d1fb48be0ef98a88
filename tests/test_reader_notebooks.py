"""Reader notebooks (scripts/reader_notebooks.py): the chapters as Jupyter and Colab show them.

Three groups of tests:

* the conversion of MyST text, on strings, with the website's numbering given by hand;
* a small book built for the tests (two short chapters that use every construct the
  chapters use), converted as ``make notebooks`` converts the real one: its reader
  notebooks, its website's downloads and launch buttons, the setup cell of a downloaded
  notebook in a fresh environment without the library, and nbval;
* the reader notebooks of the real book, ``_build/notebooks`` (skipped until
  ``make notebooks`` has run; ``THROUGHTIME_REQUIRE_NOTEBOOKS=1`` makes them fail instead).

The browser tests render a notebook as Jupyter does (nbconvert's JupyterLab template, with
MathJax 3 configured as JupyterLab configures it) in headless Chromium; without a Chromium
they are skipped, saying so (``apt-get install chromium``, or ``THROUGHTIME_CHROMIUM``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
BUILT = Path(os.environ.get("THROUGHTIME_BOOK_DIR", ROOT)) / "_build"
MATHJAX = next((ROOT / ".venv").glob("lib/python*/site-packages/sphinx-mathjax-offline/"
                                      "static/mathjax/tex-chtml-full.js"), None)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


reader = _load("reader_notebooks")
setup_cell = _load("setup_cell")


def unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def plain_typography(text: str) -> str:
    """Text without Sphinx's smart quotes and dashes (the website's typography)."""
    for fancy, plain in (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'),
                         ("\u2014", "---"), ("\u2013", "--"), ("\u2026", "...")):
        text = text.replace(fancy, plain)
    return text


def first_code(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


# --------------------------------------------------------------------------------------
# The conversion, on strings
# --------------------------------------------------------------------------------------


def small_site() -> reader.Site:
    return reader.Site(
        url="https://example.org/book/",
        titles={"chapters/03_x": "Vanishing", "chapters/02_y": "BPTT",
                "bibliography": "Bibliography"},
        secnumbers={"chapters/03_x": {"": (3,), "#the-product": (3, 1), "#cliffs": (3, 2)}},
        sections={"chapters/03_x": [("", "Vanishing"), ("#the-product", "The product"),
                                    ("#cliffs", "Cliffs")]},
        labels={"sec-cliffs": ("chapters/03_x", "cliffs", "Cliffs")},
        equations={"eq-product": ("chapters/03_x", "3.1"), "eq-bptt": ("chapters/02_y", "2.4")},
        exercises={"ex-one": ("chapters/03_x", "3.1", "Predict")},
        citations={"hochreiter1997lstm": ("bibliography", "id2")},
        numfig_format={"section": "Section %s", "exercise": "Exercise %s"},
        book_title="Through Time",
    )


def chapter(glue: dict | None = None) -> reader.Chapter:
    return reader.Chapter("chapters/03_x", small_site(),
                          glue or {"rate": {"text/plain": "-0.43498"},
                                   "count": {"text/plain": "12345"},
                                   "kind": {"text/plain": "'GRU'"}},
                          ROOT / "references.bib")


def test_glued_values_are_written_as_the_website_formats_them():
    text = chapter().convert("A rate of {glue:text}`rate:+.3f`, {glue:text}`count:,d` steps, "
                             "the {glue:text}`kind`.")
    assert text == "A rate of -0.435, 12,345 steps, the GRU."


def test_a_number_that_starts_a_line_cannot_start_a_list():
    text = chapter({"n": {"text/plain": "4"}}).convert("There are\n{glue:text}`n:.0f`. Then")
    assert text == "There are\n4\\. Then"
    rendered = reader.parse(text)
    assert "ordered_list_open" not in [token.type for token in rendered]


def test_code_spans_and_math_keep_their_text():
    source = ("Write ``{glue:text}`rate:.3f` `` in a chapter; `a hidden cell` stays code, "
              "and $x_{glue}$ is math. A hidden cell checks it.")
    text = chapter().convert(source)
    assert "``{glue:text}`rate:.3f` ``" in text and "`a hidden cell`" in text
    assert "$x_{glue}$" in text
    assert text.endswith("A collapsed cell checks it.")


def test_equations_are_numbered_and_referred_to_by_number():
    text = chapter().convert("$$\ny = x\n$$ (eq-product)\n\n"
                             "By {eq}`eq-product` and {eq}`eq-bptt`.")
    assert "$$\ny = x \\tag{3.1}\n$$" in text
    link = "https://example.org/book/chapters/02_y.html#equation-eq-bptt"
    assert f"By (3.1) and [(2.4)]({link})." in text


def test_references_become_links_to_the_website_and_targets_disappear():
    text = chapter().convert("(sec-cliffs)=\nSee {ref}`sec-cliffs`, {numref}`sec-cliffs`, "
                             "{ref}`the wall <sec-cliffs>` and {ref}`ex-one`.")
    assert "(sec-cliffs)=" not in text
    link = "https://example.org/book/chapters/03_x.html#cliffs"
    assert f"See [Cliffs]({link}), [Section 3.2]({link}), [the wall]({link})" in text
    assert "and Exercise 3.1 (Predict)." in text


def test_citations_read_author_year_and_link_to_the_bibliography():
    convert = chapter()
    text = convert.convert("The LSTM {cite}`hochreiter1997lstm` and the GRU "
                           "{cite:t}`cho2014learning`.")
    bibliography = "https://example.org/book/bibliography.html"
    assert f"([Hochreiter and Schmidhuber, 1997]({bibliography}#id2))" in text
    assert "[Cho et al. (2014)](https://example.org/book/bibliography.html)" in text
    references = convert.references()
    assert references.startswith("## References")
    assert references.index("Cho") < references.index("Hochreiter")  # sorted by author
    assert "Long short-term memory" in references


def test_exercises_become_numbered_headings_with_folded_solutions():
    convert = chapter({"third": {"text/plain": "0.3333"}})
    convert.heading_level = 2
    text = convert.convert(
        "```{exercise} Predict\n:label: ex-one\n\nGuess {glue:text}`third:.2f`.\n```\n\n"
        "````{solution} ex-one\n:class: dropdown\n\nIt is $1/3$.\n```python\nx = 1\n```\n````")
    assert text.startswith("### Exercise 3.1 (Predict)\n\nGuess 0.33.")
    summary = "<summary><b>Solution to Exercise 3.1 (Predict)</b> (click to open)</summary>"
    assert f"<details>\n{summary}" in text
    assert "It is $1/3$.\n```python\nx = 1\n```\n\n</details>" in text
    assert ":label:" not in text and ":class:" not in text and "```{" not in text


def test_headings_get_the_website_numbers():
    convert = chapter()
    text = convert.convert("# Vanishing\n\nIntro.\n\n## The product\n\nText.", top=True)
    assert text.startswith("# 3. Vanishing\n") and "## 3.1. The product" in text


def test_a_heading_the_website_does_not_have_is_an_error():
    with pytest.raises(reader.ConversionError, match="does not match the website's section"):
        chapter().convert("# Something else", top=True)


def test_only_blocks_keep_the_notebook_wording_and_admonitions_become_quotes():
    text = chapter().convert("```{only} html\nPress the launch button.\n```\n\n"
                             "```{only} notebook\nRun the cells in order.\n```\n\n"
                             ":::{note}\nMind the **gap**.\n:::")
    assert "launch button" not in text and "Run the cells in order." in text
    assert "> **Note**\n>\n> Mind the **gap**." in text


def test_constructs_without_a_notebook_form_are_named():
    convert = chapter()
    convert.where = "cell 7"
    with pytest.raises(reader.ConversionError,
                       match=r"03_x.ipynb, cell 7: the directive \{tab-set\}"):
        convert.convert("```{tab-set}\nx\n```")
    with pytest.raises(reader.ConversionError, match=r"the role \{kbdx\}"):
        convert.convert("Press {kbdx}`Ctrl`.")
    with pytest.raises(reader.ConversionError, match="no value was glued under 'missing'"):
        convert.convert("{glue:text}`missing:.2f`")
    with pytest.raises(reader.ConversionError, match="not in references.bib"):
        convert.convert("{cite}`nobody2099`")


def test_the_raw_construct_counter_finds_each_construct():
    counts = reader.count_raw("{glue:text}`a:.1f` {cite}`b` {eq}`c` {ref}`d`\n(label)=\n"
                              "```{exercise} T\n:label: e\n```\n$$\nx\n$$ (eq-x)\n")
    assert all(counts[name] >= 1 for name in reader.RAW_PATTERNS), counts


def test_collapsed_cells_are_titled_for_colab_and_hidden_for_jupyterlab():
    setup = new_code_cell(setup_cell.render("a/b", "main"), metadata={"tags": ["remove-cell"]})
    check = new_code_cell("assert 1 + 1 == 2", metadata={"tags": ["remove-cell"]})
    plot = new_code_cell("plt.plot([1, 2])", metadata={"tags": ["hide-input"]},
                         outputs=[nbformat.v4.new_output("display_data",
                                                         data={"image/png": "iVBOR"})])
    live = new_code_cell("from throughtime.explorers import gradient_norm_explorer\n"
                         "gradient_norm_explorer()", metadata={"tags": ["remove-cell"]})
    answer = new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    wheel = "throughtime @ https://example.org/course/_static/throughtime-0.1.0-py3-none-any.whl"
    old_form = new_code_cell("import subprocess\nsubprocess.run(['pip', 'install', "
                             "'git+https://github.com/c/d@dev'])\nfrom throughtime import book")
    course = new_code_cell(setup_cell.render_requirement(wheel))
    reader.convert_code_cell(setup, first=True, exercise=None, install_from=("c/d", "dev"))
    reader.convert_code_cell(old_form, first=True, exercise=None, install_from=("c/d", "dev"))
    reader.convert_code_cell(course, first=True, exercise=None, install_from=("c/d", "dev"))
    for cell in (check, plot, live, answer):
        reader.convert_code_cell(cell, first=False, exercise="Exercise 3.2")
    # The URL the chapter installs from stays (a course may use a wheel); the text is canonical.
    assert "git+https://github.com/a/b@main" in setup.source
    assert setup_cell.MARKER in old_form.source and "github.com/c/d@dev" in old_form.source
    assert f'LIBRARY = "{wheel}"' in course.source
    for cell, title in ((setup, "Setup"), (check, "Check"), (plot, "Code for the figure below"),
                        (answer, "Reference answer to Exercise 3.2")):
        assert cell.source.startswith(f"# @title {title}"), cell.source
        assert cell.metadata["cellView"] == "form"
        assert cell.metadata["jupyter"]["source_hidden"] is True
    assert "check" in check.metadata["tags"] and "live" in live.metadata["tags"]
    assert "cellView" not in live.metadata and "jupyter" not in live.metadata


# --------------------------------------------------------------------------------------
# A small book, built and converted as `make notebooks` does
# --------------------------------------------------------------------------------------

FIRST_TEXT = """# First steps

This chapter cites {cite}`hochreiter1997lstm` and {cite:t}`cho2014learning`. A third is
{glue:text}`third:.3f`, a count {glue:text}`count:,d` and a kind {glue:text}`kind`; a hidden
cell checks all three.

(fixture-numbers)=
## Numbers

The square

$$
y = x^2
$$ (eq-fixture-square)

is {eq}`eq-fixture-square`, and {numref}`fixture-numbers` is {ref}`fixture-numbers`.

```{only} html
Press the launch button at the top of the page.
```

```{only} notebook
Run the cells in order.
```

```{note}
Two places: {glue:text}`third:.2f`.
```"""

EXERCISE_TEXT = """## Exercises

```{exercise} Square it
:label: ex-fixture-square

Write `square(x)`.
```

```{solution} ex-fixture-square
:class: dropdown

Multiply $x$ by itself; a third squared is {glue:text}`third_squared:.4f`.
```"""


def fixture_chapters(repo: str, branch: str) -> dict[str, nbformat.NotebookNode]:
    setup = setup_cell.render(repo, branch)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = new_notebook(cells=[
        new_code_cell(setup, metadata={"tags": ["remove-cell"]}),
        new_markdown_cell(FIRST_TEXT),
        new_code_cell("from throughtime.book import glue\n\nthird = 1 / 3\n"
                      "print(f'third = {third:.6f}')"),
        new_code_cell("assert abs(third - 1 / 3) < 1e-12\nglue('third', third)\n"
                      "glue('count', 12345)\nglue('kind', 'GRU')\nglue('third_squared', third**2)",
                      metadata={"tags": ["remove-cell"]}),
        new_code_cell("import matplotlib.pyplot as plt\n\nplt.plot([0, 1], [0, 1])\nplt.show()",
                      metadata={"tags": ["hide-input"]}),
        new_code_cell("import ipywidgets\n\nipywidgets.IntSlider(3)",
                      metadata={"tags": ["remove-cell"]}),
        new_markdown_cell(EXERCISE_TEXT),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n"
                      "    ### END SOLUTION"),
        new_code_cell("assert square(3) == 9"),
    ], metadata={"kernelspec": kernel})
    second = new_notebook(cells=[
        new_code_cell(setup, metadata={"tags": ["remove-cell"]}),
        new_markdown_cell("# Second steps\n\nEquation {eq}`eq-fixture-square` of "
                          "{doc}`01_first`, and its section {ref}`fixture-numbers`."),
    ], metadata={"kernelspec": kernel})
    return {"01_first": first, "02_second": second}


class Book:
    def __init__(self, base: Path) -> None:
        self.root = base / "book"
        self.build = base / "out" / "_build"
        self.notebooks = self.build / "notebooks" / "chapters"
        self.html = self.build / "html"
        self.log = ""

    def reader(self, name: str) -> nbformat.NotebookNode:
        return nbformat.read(self.notebooks / f"{name}.ipynb", as_version=4)


def build_environment() -> dict[str, str]:
    return {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "THROUGHTIME_STRICT": "1",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Book:
    """The small book, built with Jupyter Book (warnings are errors) and converted; once per
    test session, also when pytest-xdist spreads the tests over several workers."""
    from filelock import FileLock

    worker = getattr(request.config, "workerinput", {}).get("workerid")
    if worker is None:
        return build_small_book(Book(tmp_path_factory.mktemp("reader-book")))
    shared = tmp_path_factory.getbasetemp().parent / "reader-book"  # this session's workers
    with FileLock(str(shared) + ".lock"):
        made = Book(shared)
        if (shared / "built").exists():
            made.log = (shared / "built").read_text()
            return made
        if shared.exists():
            shutil.rmtree(shared)
        build_small_book(made)
        (shared / "built").write_text(made.log)
        return made


def build_small_book(made: Book) -> Book:
    root = made.root
    (root / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "references.bib", "bibliography.md", "requirements.txt"):
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "_static", root / "_static")
    shutil.copytree(ROOT / "_ext", root / "_ext")  # the book's Sphinx extension
    (root / "intro.md").write_text("# A small book\n\nFor the tests.\n")
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "Chapters", "numbered": True,
         "chapters": [{"file": "chapters/01_first"}, {"file": "chapters/02_second"}]},
        {"caption": "Reference", "chapters": [{"file": "bibliography"}]}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for name, notebook in fixture_chapters(*setup_cell.configured_repository(ROOT)).items():
        nbformat.write(notebook, root / "chapters" / f"{name}.ipynb")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(root), "--path-output", str(made.build.parent),
         "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, env=build_environment(), timeout=900)
    if result.returncode != 0:
        pytest.fail(f"the small book did not build:\n{result.stdout[-4000:]}\n"
                    f"{result.stderr[-4000:]}", pytrace=False)
    converted = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reader_notebooks.py"), "--root", str(root),
         "--build", str(made.build), "--report"],
        capture_output=True, text=True, env=build_environment(), timeout=300)
    if converted.returncode != 0:
        pytest.fail(f"reader_notebooks.py failed:\n{converted.stdout}\n{converted.stderr}",
                    pytrace=False)
    made.log = converted.stdout
    return made


def test_the_small_book_converts_and_reports_its_raw_constructs(book: Book):
    assert sorted(p.name for p in book.notebooks.iterdir()) == ["01_first.ipynb",
                                                               "02_second.ipynb"]
    assert "01_first.ipynb" in book.log and "raw MyST constructs" in book.log
    assert (book.notebooks.parent / "README.md").exists()
    requirements = (book.notebooks.parent / "requirements.txt").read_text()
    assert "throughtime @ git+https://github.com/" in requirements and "torch==" in requirements


def test_no_myst_is_left_in_the_prose(book: Book):
    for name in ("01_first", "02_second"):
        text = reader.markdown_text(book.reader(name))
        counts = reader.count_raw(text)
        assert sum(counts.values()) == 0, f"{name}: {counts}"
        for construct in ("{only}", "```{", "{doc}", "{numref}", "(fixture-numbers)="):
            assert construct not in text, f"{name}: {construct!r} left in the prose"


def test_every_glued_number_of_the_website_is_in_the_prose(book: Book):
    site = BeautifulSoup((book.html / "chapters" / "01_first.html").read_text(), "html.parser")
    pasted = [span.get_text() for span in site.select("main span.pasted-text")]
    assert pasted == ["0.333", "12,345", "GRU", "0.33", "0.1111"], pasted
    prose = unescape(reader.markdown_text(book.reader("01_first")))
    position = 0
    for value in pasted:
        found = prose.find(value, position)
        assert found >= 0, f"{value!r} (as on the website) is not in the prose, in order"
        position = found + len(value)
    assert "The numbers in the text come from the book's own run" in prose


def test_numbers_of_equations_sections_and_exercises_are_the_websites(book: Book):
    site = BeautifulSoup((book.html / "chapters" / "01_first.html").read_text(), "html.parser")
    equation = site.select_one("span.eqno").get_text().strip("#")
    heading = next(h.get_text().strip("#") for h in site.select("main h2")
                   if "Numbers" in h.get_text())
    exercise = site.select_one("div.exercise p.admonition-title").get_text()
    assert (equation, heading) == ("(1.1)", "1.1. Numbers")
    assert re.sub(r"\s+", " ", exercise) == "Exercise 1.1 (Square it)"
    prose = reader.markdown_text(book.reader("01_first"))
    assert "\\tag{1.1}" in prose and "is (1.1), and [Section 1.1](" in prose
    assert "## 1.1. Numbers" in prose and "### Exercise 1.1 (Square it)" in prose
    assert re.search(r"<details>\n<summary><b>Solution to Exercise 1\.1 \(Square it\)</b>",
                     prose)
    second = reader.markdown_text(book.reader("02_second"))
    assert "# 2. Second steps" in second
    assert f"{reader.site_url(yaml.safe_load((ROOT / '_config.yml').read_text()))}" \
        "chapters/01_first.html#equation-eq-fixture-square" in second


def test_citations_link_to_anchors_of_the_websites_bibliography(book: Book):
    bibliography = BeautifulSoup((book.html / "bibliography.html").read_text(), "html.parser")
    notebook = book.reader("01_first")
    prose = reader.markdown_text(notebook)
    links = re.findall(r"\(\[Hochreiter and Schmidhuber, 1997\]\(([^)]+)\)\)", prose)
    assert len(links) == 1, prose
    anchor = links[0].rsplit("#", 1)[1]
    entry = bibliography.find(id=anchor)
    assert entry is not None and "Long short-term memory" in entry.get_text()
    assert re.search(r"\[Cho et al\. \(2014\)\]\(", prose)
    assert notebook.cells[-1].source.startswith("## References")
    assert "Learning phrase representations" in notebook.cells[-1].source


def test_cells_hidden_on_the_website_are_collapsed_and_marked(book: Book):
    cells = book.reader("01_first").cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    setup, printing, check, plot, live, answer, run_check = code
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# 1. First steps")
    assert cells[1] == setup, "the title and the note on numbers come before the setup cell"
    for cell, title in ((setup, "Setup"), (check, "Check"), (plot, "Code for the figure below"),
                        (answer, "Reference answer to Exercise 1.1")):
        assert cell.source.startswith(f"# @title {title}")
        assert cell.metadata["jupyter"]["source_hidden"] and cell.metadata["cellView"] == "form"
    assert "check" in check.metadata.tags and "live" in live.metadata.tags
    assert "jupyter" not in printing.metadata and "jupyter" not in live.metadata
    assert live.outputs == [], "a widget without its state renders as an error message"
    assert any("image/png" in o.get("data", {}) for o in plot.outputs), "figures stay"
    assert printing.outputs[0]["text"] == "third = 0.333333\n"
    assert not any("scrapbook" in o.get("metadata", {}) for c in code for o in c.outputs)


def test_website_wording_becomes_notebook_wording(book: Book):
    prose = reader.markdown_text(book.reader("01_first"))
    assert "Run the cells in order." in prose
    assert re.search(r"a collapsed\s+cell checks all three", prose)
    for phrase in reader.WEBSITE_ONLY_PHRASES:
        assert phrase not in prose.lower(), phrase


def test_the_websites_download_is_the_reader_notebook_with_outputs(book: Book):
    download = book.html / "_sources" / "chapters" / "01_first.ipynb"
    assert download.read_text() == (book.notebooks / "01_first.ipynb").read_text()
    downloaded = nbformat.read(download, as_version=4)
    assert downloaded.metadata["through_time"]["reader_notebook"] is True
    assert any(cell.get("outputs") for cell in downloaded.cells if cell.cell_type == "code")


def test_launch_buttons_open_the_reader_notebooks_branch(book: Book):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo, _ = setup_cell.configured_repository(ROOT)
    branch = config["sphinx"]["config"]["html_theme_options"]["repository_branch"]
    page = BeautifulSoup((book.html / "chapters" / "01_first.html").read_text(), "html.parser")
    hrefs = [a["href"] for a in page.find_all("a", href=True)]
    assert (f"https://colab.research.google.com/github/{repo}/blob/{branch}/"
            "chapters/01_first.ipynb") in hrefs
    assert any(href.startswith(f"https://mybinder.org/v2/gh/{repo}/{branch}?") for href in hrefs)


def test_a_chapter_changed_since_the_build_is_refused(book: Book, tmp_path: Path):
    changed = nbformat.read(book.root / "chapters" / "01_first.ipynb", as_version=4)
    changed.cells[2].source += "\nprint('new')"
    path = tmp_path / "01_first.ipynb"
    nbformat.write(changed, path)
    with pytest.raises(reader.ConversionError, match="run `make book` first"):
        reader.executed_notebook(path, book.build, "chapters/01_first")


# -- the setup cell of a downloaded notebook, in a fresh environment without the library --

FAKE_PIP = '''"""Stands in for pip: records its arguments, installs the local checkout or fails."""
import json, os, pathlib, sys, sysconfig
pathlib.Path(os.environ["FAKE_PIP_RECORD"]).write_text(json.dumps(sys.argv[1:]))
if os.environ.get("FAKE_PIP_FAIL"):
    print("ERROR: Could not find a version that satisfies the requirement (no network)",
          file=sys.stderr)
    sys.exit(1)
import shutil  # what installing the wheel does: the package's files into site-packages
site_packages = pathlib.Path(sysconfig.get_paths()["purelib"])
shutil.copytree(pathlib.Path(os.environ["FAKE_PIP_SOURCE"]) / "throughtime",
                site_packages / "throughtime")
'''


def fresh_environment(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new venv without pip or the library; numpy, torch, ... reachable as Colab has them."""
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    # A path line, not the .pth files of our venv: its editable install of the library stays out.
    Path(purelib.stdout.strip(), "preinstalled.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    fake = tmp_path / "fake-pip" / "pip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(FAKE_PIP)
    environment = {**build_environment(), "PYTHONPATH": str(fake.parent),
                   "FAKE_PIP_RECORD": str(tmp_path / "pip-arguments.json"),
                   "FAKE_PIP_SOURCE": str(ROOT / "lib")}
    environment.pop("THROUGHTIME_STRICT")
    return python, environment


def run_setup_cell(python: Path, environment: dict[str, str], source: str
                   ) -> subprocess.CompletedProcess:
    program = source + "\nimport throughtime.training\nprint('imported', throughtime.__name__)\n"
    return subprocess.run([str(python), "-c", program], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_a_downloaded_notebook_installs_the_library_where_it_is_missing(book: Book,
                                                                         tmp_path: Path):
    downloaded = nbformat.read(book.html / "_sources" / "chapters" / "01_first.ipynb",
                               as_version=4)
    python, environment = fresh_environment(tmp_path)
    missing = subprocess.run([str(python), "-c", "import throughtime"], capture_output=True,
                             text=True, env=environment)
    assert missing.returncode != 0 and "No module named 'throughtime'" in missing.stderr
    result = run_setup_cell(python, environment, first_code(downloaded).source)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Installing the book's library" in result.stdout and "imported throughtime" in (
        result.stdout)
    repo, branch = setup_cell.configured_repository(ROOT)
    arguments = json.loads((tmp_path / "pip-arguments.json").read_text())
    assert arguments == ["install", "--quiet",
                         f"throughtime @ git+https://github.com/{repo}@{branch}"]


def test_the_setup_cell_says_what_to_do_when_pip_fails(book: Book, tmp_path: Path):
    downloaded = nbformat.read(book.html / "_sources" / "chapters" / "01_first.ipynb",
                               as_version=4)
    python, environment = fresh_environment(tmp_path)
    result = run_setup_cell(python, {**environment, "FAKE_PIP_FAIL": "1"},
                            first_code(downloaded).source)
    assert result.returncode != 0
    assert "ModuleNotFoundError: Could not install the book's library" in result.stderr
    assert "pip said: ERROR: Could not find a version" in result.stderr
    assert "pip install -e <its folder>" in result.stderr and "restart the kernel" in (
        result.stderr)


def test_the_setup_cell_installs_nothing_where_the_library_is_importable():
    repo, branch = setup_cell.configured_repository(ROOT)
    result = subprocess.run([sys.executable, "-c", setup_cell.render(repo, branch)],
                            capture_output=True, text=True, env=build_environment(), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Installing" not in result.stdout


def test_a_reader_notebook_runs_top_to_bottom_under_nbval(book: Book, tmp_path: Path):
    shutil.copy2(book.notebooks / "01_first.ipynb", tmp_path / "01_first.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(tmp_path / "01_first.ipynb")],
        capture_output=True, text=True, cwd=tmp_path, env=build_environment(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b7 passed\b", result.stdout), result.stdout[-500:]  # 7 code cells


# --------------------------------------------------------------------------------------
# Rendered as Jupyter renders Markdown, in headless Chromium
# --------------------------------------------------------------------------------------

MATHJAX_CONFIG = """<script>
window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
                        displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
                        processEscapes: true, processEnvironments: true}};
</script>"""


def jupyter_html(notebook: nbformat.NotebookNode) -> str:
    """The notebook as JupyterLab's template shows it, with MathJax 3 from this machine."""
    from nbconvert import HTMLExporter

    url = MATHJAX.as_uri()
    exporter = HTMLExporter(template_name="lab", mathjax_url=url)
    body, _ = exporter.from_notebook_node(notebook)
    loader = f'<script src="{url}">'
    assert loader in body, "nbconvert's template no longer loads MathJax as expected"
    return body.replace(loader, MATHJAX_CONFIG + loader, 1)


def find_chromium() -> str | None:
    for candidate in (os.environ.get("THROUGHTIME_CHROMIUM"), "chromium", "chromium-browser",
                      "/usr/bin/chromium"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None or MATHJAX is None:
        pytest.skip("rendering a notebook as Jupyter does needs Chromium (`apt-get install "
                    "chromium`, or THROUGHTIME_CHROMIUM=/path/to/chromium) and MathJax from "
                    "sphinx-mathjax-offline (`make install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


def rendered_markdown(browser, notebook: nbformat.NotebookNode, path: Path) -> dict:
    """Text of the Markdown cells as a browser shows them, details opened, math typeset."""
    path.write_text(jupyter_html(notebook))
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") or route.request.url.startswith("data:") else route.abort())
    page.goto(path.as_uri())
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    result = page.evaluate("""() => {
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        const cells = [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')];
        return {text: cells.map(c => c.innerText).join('\\n\\n'),
                errors: document.querySelectorAll('mjx-merror').length,
                math: document.querySelectorAll('mjx-container').length,
                headings: [...document.querySelectorAll('.jp-MarkdownCell h3')]
                          .map(h => h.innerText)};
    }""")
    page.close()
    return result


def assert_reads_like_the_website(result: dict, name: str) -> None:
    counts = reader.count_raw(result["text"])
    assert sum(counts.values()) == 0, f"{name}: raw MyST in the rendered notebook: {counts}"
    assert result["errors"] == 0, f"{name}: {result['errors']} MathJax error(s)"
    for raw in ("$$", "\\tag", "\\frac", ":label:", ":class:", "{only}"):
        assert raw not in result["text"], f"{name}: {raw!r} shows in the rendered notebook"


def test_the_small_books_notebook_renders_like_the_website(book: Book, browser,
                                                            tmp_path: Path):
    result = rendered_markdown(browser, book.reader("01_first"), tmp_path / "first.html")
    assert_reads_like_the_website(result, "01_first")
    assert result["math"] == 2  # the numbered equation, and $x$ in the solution
    assert "Exercise 1.1 (Square it)" in result["headings"]
    assert "a third squared is 0.1111" in result["text"]  # inside the opened <details>
    assert "(Hochreiter and Schmidhuber, 1997)" in result["text"]


# --------------------------------------------------------------------------------------
# The real book's reader notebooks (after `make notebooks`)
# --------------------------------------------------------------------------------------

BUILT_NOTEBOOKS = sorted((BUILT / "notebooks" / "chapters").glob("*.ipynb"))


@pytest.fixture
def built(request: pytest.FixtureRequest) -> Path:
    path = request.param
    if path is None:
        message = (f"no reader notebooks in {BUILT / 'notebooks'}: run `make notebooks` "
                   "(the built book's reader notebooks are tested after it)")
        if os.environ.get("THROUGHTIME_REQUIRE_NOTEBOOKS"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def _built_params():
    return pytest.mark.parametrize("built", BUILT_NOTEBOOKS or [None], indirect=True,
                                   ids=[p.stem for p in BUILT_NOTEBOOKS] or ["not-built"])


@_built_params()
def test_built_reader_notebook_has_no_myst_and_no_website_wording(built: Path):
    notebook = nbformat.read(built, as_version=4)
    text = reader.markdown_text(notebook)
    counts = reader.count_raw(text)
    assert sum(counts.values()) == 0, f"{built.name}: {counts}"
    for phrase in reader.WEBSITE_ONLY_PHRASES:
        assert phrase not in text.lower(), f"{built.name}: website wording {phrase!r}"
    assert setup_cell.MARKER in first_code(notebook).source


@_built_params()
def test_built_reader_notebook_has_every_glued_number_of_the_website(built: Path):
    page = BUILT / "html" / "chapters" / f"{built.stem}.html"
    if not page.exists():
        pytest.skip(f"{page} is missing")
    site = BeautifulSoup(page.read_text(), "html.parser")
    # A glued phrase (not a number) may carry the website's wording, which the notebook changes.
    pasted = [reader.apply_wording(plain_typography(span.get_text()))
              for span in site.select("main span.pasted-text")]
    assert pasted, f"{page} shows no glued number"
    prose = plain_typography(unescape(reader.markdown_text(nbformat.read(built, as_version=4))))
    position = 0
    for value in pasted:
        found = prose.find(value, position)
        assert found >= 0, f"{built.name}: {value!r}, as on the website, is not in the prose"
        position = found + len(value)


@_built_params()
def test_built_reader_notebook_renders_like_the_website(built: Path, browser, tmp_path: Path):
    result = rendered_markdown(browser, nbformat.read(built, as_version=4),
                               tmp_path / f"{built.stem}.html")
    assert_reads_like_the_website(result, built.name)
