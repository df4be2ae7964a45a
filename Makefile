# One command for the main job, one for the tests; each creates .venv on first use.
PY ?= python3
# torch on a busy 2-core machine: spinning OpenMP threads slow an epoch by up to 30x.
export OMP_WAIT_POLICY ?= PASSIVE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	# matbench 0.6 pins 2022 versions of scipy/scikit-learn/matminer/monty; its code works with current
	# ones, so it goes in without its own pins, next to the versions fixed in constraints.txt.
	$(BIN)/pip install --quiet --no-deps matbench==0.6
	touch $(STAMP)

venv: $(STAMP)

# Main job: train + evaluate CGCNN on the embedded (offline, generated) dielectric task, both backends.
demo: $(STAMP)
	$(BIN)/zoo demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .zoo_cache
