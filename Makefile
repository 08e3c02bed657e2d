# The two commands of the README: `make demo` and `make test`.
# Both create (or update) the project's own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: venv demo test lint typecheck unit docs bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the project and its test/demo dependencies into $(VENV) (log: $(VENV)/install.log)"
	@( $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -c requirements/constraints.txt \
		-e '.[torch,keras,tensorflow,jax,test,demo,docs]' ) > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	touch $(STAMP)

demo: venv
	$(PY) -m eli5_nn demo --out $(DEMO_OUT)

lint: venv
	$(VENV)/bin/ruff check eli5_nn tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy

# The Keras suite runs once per backend, each in its own process.
KERAS_BACKENDS ?= tensorflow jax torch
# JAX compiles every new shape on first use; cheaper compiles keep the suite short
# (the tests' tolerances do not depend on XLA's optimisation level).
JAX_TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true

unit: venv
	$(PY) -m pytest -q tests --ignore=tests/keras
	for b in $(KERAS_BACKENDS); do \
		echo "== Keras suite on $$b"; \
		KERAS_BACKEND=$$b TF_CPP_MIN_LOG_LEVEL=3 XLA_FLAGS="$(JAX_TEST_XLA_FLAGS)" \
			$(PY) -m pytest -q tests/keras || exit 1; \
	done

# The documentation, built with warnings as errors.
docs: venv
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

test: lint typecheck unit docs

bench: venv
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist *.egg-info
