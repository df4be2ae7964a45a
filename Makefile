# One command for the main job, one for the tests; each creates .venv on first use.
PY ?= python3
# torch on a busy 2-core machine: spinning OpenMP threads slow an epoch by up to 30x.
export OMP_WAIT_POLICY ?= PASSIVE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow gate gate-baseline gate-demo bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	# matbench 0.6 pins 2022 versions of scipy/scikit-learn/matminer/monty; its code works with current
	# ones, so it goes in without its own pins, next to the versions fixed in constraints.txt.
	$(BIN)/pip install --quiet --no-deps matbench==0.6
	touch $(STAMP)

venv: $(STAMP)

# Main job: every registered family x backend on the embedded (offline, generated) tasks, one table
# and one plot under results/bench/ (zoo bench).
demo: $(STAMP)
	$(BIN)/zoo bench

# The tests, then the performance gate (throughput ratios, symmetry bounds, accuracy within seed noise,
# against the committed baseline of this CPU, results/bench/gate_baselines/<cpu>.json).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2
	$(BIN)/zoo bench gate

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

gate: $(STAMP)
	$(BIN)/zoo bench gate

# After an intended change of speed or accuracy: re-measure this CPU's baseline (3 seeds) and commit it.
gate-baseline: $(STAMP)
	$(BIN)/zoo bench gate --update-baseline

# Ten clean gate runs and one with a planted 2x slowdown: results/bench/gate_demo.{json,md}.
gate-demo: $(STAMP)
	$(BIN)/python benchmarks/gate_demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .zoo_cache
