# The README's commands. Each sets itself up from nothing (venv + pinned install) first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test workers: one more than the 2 cores the suite is timed on, as its end-to-end tests spend a fifth of
# their time waiting on HTTP, subprocesses and sleeps; WORKERS=0 runs in one process.
WORKERS ?= 3

.PHONY: demo test check bench setup clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/flitstack demo

# The full suite, as CI runs it.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

# The fast tier to run while working: unit and contract tests plus one small end-to-end run.
check: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

# The benchmarks, one after the other (results: BENCHMARKS.md); BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(BIN)/python benchmarks/scale_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/loader_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/sandbox_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/token_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/rehearsal_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache
