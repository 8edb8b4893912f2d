# Every target works on a fresh clone with only python3: the venv is made on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test sweep train lint bench bytecode clean experiments

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

# An editable install is not byte-compiled, and where PYTHONDONTWRITEBYTECODE is set Python never
# caches it either: every `jaxinit` process would compile the package's sources again (~0.1 s).
bytecode:
	$(BIN)/python -m compileall -q jaxinit

test: $(STAMP)
	$(BIN)/ruff check jaxinit tests experiments
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

sweep: $(STAMP) bytecode
	$(BIN)/jaxinit sweep configs/quickstart.toml

# Seeds x initializers trained on digits (a few minutes on 2 CPU cores).
train: $(STAMP) bytecode
	$(BIN)/jaxinit train configs/train_digits.toml

lint: $(STAMP)
	$(BIN)/ruff check jaxinit tests experiments

# jaxinit bench byte-compiles the package itself (jaxinit.bench.byte_compile_package).
bench: $(STAMP)
	$(BIN)/jaxinit bench

# The reproductions of experiments/README.md at full size (each also runs alone:
# $(BIN)/python experiments/repro/NAME.py [--out DIR] [--small]); figures and tables go to docs/figures/.
EXPERIMENTS := seeds_init order_chaos isometry depth gains \
	train_seeds train_order_chaos train_isometry train_gains train_lsuv train_schedule
experiments: $(STAMP) bytecode
	@start=$$(date +%s); for name in $(EXPERIMENTS); do \
		$(BIN)/python experiments/repro/$$name.py || exit 1; done; \
	echo "make experiments: $$(( $$(date +%s) - start )) s for $(EXPERIMENTS)"

clean:
	rm -rf $(VENV) results .pytest_cache
