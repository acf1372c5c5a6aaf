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

.PHONY: setup test demo book lab student assignment grade chromium clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# tests/test_browser.py drives Debian's chromium; install it when we may (root + apt), else say so.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && apt-get install -y chromium; \
	  else echo "chromium is missing and cannot be installed here (needs root + apt-get);" \
	       "tests/test_browser.py will fail until it is installed." >&2; fi; }

test: $(STAMP) chromium
	$(PY) -m pytest -q --doctest-modules metakit data_prep tests
	@if ls notebooks/[0-9][0-9]_*.ipynb >/dev/null 2>&1; then \
	  METAKIT_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks/[0-9][0-9]_*.ipynb && \
	  METAKIT_PROFILE=smoke METAKIT_DATASET=mnist1d $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
	    notebooks/[0-9][0-9]_*.ipynb; fi

demo: $(STAMP)
	$(PY) -m metakit demo

# The course site (Sphinx + myst-nb, offline) from the executed tour in runs/latest/notebooks (the demo
# runs first when there is none) into runs/book/html; prints the index's path.
book: $(STAMP)
	$(PY) -m metakit.teaching.book

# Student copies (solutions replaced, outputs cleared) in notebooks/student/ (generated, git-ignored).
student: $(STAMP)
	$(PY) -m metakit.teaching.student

# nbgrader: `make assignment` releases the tour's student versions into $(COURSE)/release (the same
# cells as `make student`); `make grade SUBMISSIONS=dir` autogrades dir/<student_id>/<notebook>.ipynb
# into $(COURSE)/gradebook.db and writes $(COURSE)/grades.csv and grades_by_cell.csv.
COURSE      ?= runs/course
SUBMISSIONS ?= submissions
assignment: $(STAMP)
	$(PY) -m metakit.teaching.assignment --check
	$(PY) -m metakit.teaching.course --course $(COURSE) release

grade: $(STAMP)
	METAKIT_PROFILE=$${METAKIT_PROFILE:-smoke} $(PY) -m metakit.teaching.course --course $(COURSE) grade $(SUBMISSIONS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
