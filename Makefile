# Through Time: the two commands a newcomer needs are `make book` and `make test`.
# Every target creates the virtualenv if it is missing and reinstalls only when
# requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

# Kernels and Jupyter data come from the virtualenv, not from ~/.local.
export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The book's models are small: one thread each is faster than two fighting over two cores
# (and two test workers run at once). bench/ sets its own thread count.
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1
# The chapters' checks (throughtime.book.claim) fail the build, nbval and CI when a statement
# does not hold; a reader's Jupyter or Colab, where this is unset, prints a notice instead.
export THROUGHTIME_STRICT := 1
# nbval runs the chapters under the most basic CPU kernels while the book build runs the
# native ones, so every test run covers two kernel sets (scripts/portability.py has more).
BASELINE_KERNELS := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2

.PHONY: install check-colab page-weight portability book notebooks pdf test test-lib test-notebooks test-site lint lab bench retarget clean distclean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Through Time)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

## make book: build the website into _build/html (warnings are errors; a failing cell fails the build)
book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo ""
	@echo "The website is in $(CURDIR)/_build/html -- open $(CURDIR)/_build/html/index.html"

## make notebooks: the reader notebooks in _build/notebooks (MyST written out for Jupyter, Colab
## and VS Code, with the build's outputs), from the book's build (runs `make book` first); they
## also become the website's .ipynb downloads, and the workflow publishes them for the launch buttons
notebooks: book
	$(BIN)/python scripts/reader_notebooks.py --build _build --out _build/notebooks

## make pdf: the whole book as one PDF, _build/pdf/through-time.pdf, made offline: the book on
## one HTML page (cells from the build's cache), printed by the system's Chromium
pdf: $(STAMP)
	$(BIN)/python scripts/book_pdf.py

## make test: library tests, every notebook under nbval, the website build and its reader
## notebooks, the browser tests of both
test: $(STAMP)
	$(MAKE) lint
	$(MAKE) test-lib
	$(MAKE) test-notebooks
	$(MAKE) notebooks
	$(MAKE) test-site

lint: $(STAMP)
	$(BIN)/ruff check lib tests bench scripts chapters

test-lib: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/site -n $(JOBS)

# NBVAL_ON=reader: nbval runs the reader notebooks (built first with `make notebooks`, and
# checked by tests/test_reader_notebooks.py) instead of the chapters; "chapters reader": both.
NBVAL_ON ?= chapters
test-notebooks: $(STAMP)
	$(if $(filter reader,$(NBVAL_ON)),$(MAKE) notebooks)
	$(if $(filter reader,$(NBVAL_ON)),THROUGHTIME_REQUIRE_NOTEBOOKS=1 $(BIN)/python -m pytest -p no:cacheprovider tests/test_reader_notebooks.py)
	$(BASELINE_KERNELS) $(BIN)/python -m pytest --nbval-lax -n $(JOBS) --dist loadfile -p no:cacheprovider $(if $(filter chapters,$(NBVAL_ON)),chapters) $(if $(filter reader,$(NBVAL_ON)),_build/notebooks/chapters)

# The website's tests, and those of the reader notebooks built from it (which fail, instead of
# skipping, when `make notebooks` has not run).
test-site: $(STAMP)
	$(BIN)/python -m pytest tests/site
	THROUGHTIME_REQUIRE_NOTEBOOKS=1 $(BIN)/python -m pytest -p no:cacheprovider tests/test_reader_notebooks.py -k built

## make lab: JupyterLab on the chapters, MyST rendered by jupyterlab-myst and without nbgrader's
## menus and sidebars (nbgrader stays installed for `make assignments`); checks print a notice
## instead of stopping, as for readers
NBGRADER_SERVER_EXTENSIONS := formgrader assignment_list course_list validate_assignment
lab: $(STAMP)
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	for extension in $(NBGRADER_SERVER_EXTENSIONS); do \
		$(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$extension >/dev/null 2>&1; \
	done
	env -u THROUGHTIME_STRICT $(BIN)/jupyter lab chapters

## make portability [CHAPTERS="03 05"]: every chapter under native, AVX2 and baseline CPU kernels;
## reports failures and the glued numbers that moved (minutes)
portability: $(STAMP)
	$(BIN)/python scripts/portability.py --jobs $(JOBS) $(if $(CHAPTERS),--chapters $(CHAPTERS))

## make bench: performance benchmarks (numbers for the notes, never timed tests)
bench: $(STAMP)
	$(BIN)/python bench/bench_cells.py

## make check-colab: the library beside Colab's own packages (ipywidgets 7.7.1, torch) in a fresh venv (minutes)
check-colab: $(STAMP)
	$(BIN)/python scripts/colab_like_check.py

## make page-weight: the bytes each page of the built website costs a reader
page-weight: $(STAMP)
	$(BIN)/python scripts/page_weight.py --max-mb 3

## make retarget REPO=org/name BRANCH=main: point launch buttons and Colab installs at a fork
retarget: $(STAMP)
	@test -n "$(REPO)" || (echo "usage: make retarget REPO=org/name [BRANCH=main]"; exit 2)
	$(BIN)/python scripts/retarget.py "$(REPO)" "$(or $(BRANCH),main)"

clean:
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

## make assignments [STUDENT_BRANCH=student] [STUDENT_REPO=org/name] [CHAPTERS="01 02"]
##                  [WHEEL_URL=https://course.site/_static/ | INSTALL_URL=pip-url]:
## the student edition (answers stubbed or removed) in _build/student/book, its website in _build/student/html
.PHONY: assignments
assignments: $(STAMP)
	$(BIN)/python scripts/make_assignments.py --out _build/student/book --html _build/student/html \
		$(if $(STUDENT_BRANCH),--branch $(STUDENT_BRANCH)) \
		$(if $(STUDENT_REPO),--repo $(STUDENT_REPO)) \
		$(if $(CHAPTERS),--chapters $(CHAPTERS)) \
		$(if $(WHEEL_URL),--wheel-url $(WHEEL_URL)) \
		$(if $(INSTALL_URL),--install-url $(INSTALL_URL))

## make grade SUBMISSIONS=folder [ASSIGNMENT=04] [JOBS=2]: grade one notebook (or folder) per
## student on the hidden tests of instructor/, each in confined processes; scores in
## _build/grades/scores.csv, feedback in _build/grades/feedback/STUDENT.md
## make gradescope ASSIGNMENT=04: an Otter-Grader autograder zip for Gradescope in _build/grades/
.PHONY: grade gradescope
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade SUBMISSIONS=folder [ASSIGNMENT=04]"; exit 2)
	$(BIN)/python scripts/grade.py "$(SUBMISSIONS)" --jobs $(JOBS) \
		$(if $(ASSIGNMENT),--assignment $(ASSIGNMENT))

gradescope: $(STAMP)
	@test -n "$(ASSIGNMENT)" || (echo "usage: make gradescope ASSIGNMENT=04"; exit 2)
	$(BIN)/python scripts/grade.py gradescope --assignment $(ASSIGNMENT)
