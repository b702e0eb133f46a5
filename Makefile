# Two commands from a fresh clone: `make run` (the pipeline on generated data) and `make test`.
# Every target creates .venv first when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run build train test test-fast lineage clean

$(BIN)/carousel: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	bash scripts/fetch_jars.sh $(BIN)/python
	touch $@

run: $(BIN)/carousel
	$(BIN)/carousel pipeline $(ARGS)

build: $(BIN)/carousel
	$(BIN)/carousel run $(ARGS)

train: $(BIN)/carousel
	$(BIN)/carousel train $(ARGS)

test: $(BIN)/carousel
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: $(BIN)/carousel
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

lineage: $(BIN)/carousel
	$(BIN)/python -m carousel.pipeline.lineage --out docs/lineage.md

clean:
	rm -rf data spark-warehouse metastore_db derby.log
