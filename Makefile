# metakit: `make demo` and `make test` set themselves up from a fresh clone.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export METAKIT_DEVICE ?= cpu
# digits-sized nets run fastest on one thread; several threads only contend on a small CPU
# (nbval tour of 00/01/06 on the shared 2-core box: 141 s with the default threads, 48 s with one)
export OMP_NUM_THREADS ?= 1
# notebook kernels run in notebooks/: an absolute data root keeps MNIST-1D's generated cache (and
# CIFAR) in the checkout's ./data, as the README says, not in notebooks/data
export METAKIT_DATA ?= $(CURDIR)/data

.PHONY: setup test demo book book-instructor lab lab-instructor student assignment grade system-deps chromium clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# System packages the tests need: Debian's chromium (tests/test_browser.py) and bubblewrap (`make grade`'s
# sandbox, tests/test_grading_*.py). Installed when we may (root + apt), else say so.
SYSTEM_DEPS := chromium:chromium bwrap:bubblewrap
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && apt-get install -y $$missing; \
	  else echo "missing:$$missing; they cannot be installed here (needs root + apt-get);" \
	       "tests/test_browser.py and tests/test_grading_*.py need them." >&2; fi; fi

chromium: system-deps

# On both cores (pytest-xdist). Then the tour under nbval at the smoke profile, a notebook a core: the student
# copies on digits, run from their own folder as students run them (only a blank exercise and its check may
# raise), and the instructor notebooks, solutions included, on MNIST-1D (tests/test_grading_e2e.py grades the
# solutions on digits).
NBVAL := $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --nbval-lax
STUDENT_CHECK := notebooks/.student-check
test: $(STAMP) system-deps
	$(PY) -m pytest -q -n 2 --dist worksteal --doctest-modules metakit data_prep tests
	@if ls notebooks/[0-9][0-9]*_*.ipynb >/dev/null 2>&1; then \
	  rm -rf $(STUDENT_CHECK) && $(PY) -m metakit.teaching.student --out $(STUDENT_CHECK) >/dev/null && \
	  METAKIT_PROFILE=smoke $(NBVAL) $(STUDENT_CHECK)/*.ipynb; status=$$?; rm -rf $(STUDENT_CHECK); \
	  [ $$status = 0 ] && METAKIT_PROFILE=smoke METAKIT_DATASET=mnist1d $(NBVAL) notebooks/[0-9][0-9]*_*.ipynb; fi

demo: $(STAMP)
	$(PY) -m metakit demo

# The students' course site (Sphinx + myst-nb, offline) from student copies of the executed tour in
# runs/latest/notebooks (solutions stripped, outputs cleared from the first exercise on; the demo runs first when
# there is none) into runs/book/html; prints the index's path.
book: $(STAMP)
	$(PY) -m metakit.teaching.book

# The instructors' site, solutions included, into runs/book-instructor/html: never publish it to students.
book-instructor: $(STAMP)
	$(PY) -m metakit.teaching.book --instructor

# Student copies (solutions replaced, outputs cleared) in notebooks/student/ (generated, git-ignored).
student: $(STAMP)
	$(PY) -m metakit.teaching.student

# nbgrader (docs/teaching.md): `make assignment` releases the tour's student versions into $(COURSE)/release (the
# same cells as `make student`); `make grade SUBMISSIONS=dir-or-zip` grades <student_id>/<notebook>.ipynb (or an LMS
# zip) in the bubblewrap sandbox, WORKERS at once, each cell CELL_TIMEOUT s at most, into $(COURSE)/gradebook.db,
# writes feedback and $(COURSE)/grades.csv (score, max_score, status, late); due dates from $(COURSE)/due.toml.
COURSE       ?= runs/course
SUBMISSIONS  ?= submissions
WORKERS      ?= 2
CELL_TIMEOUT ?= 300
assignment: $(STAMP)
	$(PY) -m metakit.teaching.assignment --check
	$(PY) -m metakit.teaching.course --course $(COURSE) release

grade: $(STAMP) system-deps
	METAKIT_PROFILE=$${METAKIT_PROFILE:-smoke} $(PY) -m metakit.teaching.course --course $(COURSE) grade \
	  $(SUBMISSIONS) --workers $(WORKERS) --cell-timeout $(CELL_TIMEOUT)

# Students: JupyterLab on their copies in notebooks/student/ (written when missing; a copy already there is their
# work and is kept). Instructors: make lab-instructor opens the notebooks with their solutions.
lab: $(STAMP)
	$(PY) -m metakit.teaching.student --keep
	$(VENV)/bin/jupyter lab notebooks/student

lab-instructor: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
