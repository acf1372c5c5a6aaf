# metakit: `make demo` and `make test` set themselves up from a fresh clone.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export METAKIT_DEVICE ?= cpu
# digits-sized nets run fastest on one thread; several threads only contend on a small CPU
export OMP_NUM_THREADS ?= 1

.PHONY: setup test demo lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --doctest-modules metakit data_prep tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  METAKIT_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks; fi

demo: $(STAMP)
	$(PY) -m metakit demo

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
