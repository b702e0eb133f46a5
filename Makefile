# Two commands from a fresh clone: `make run` (the pipeline on generated data) and `make test`.
# Every target creates .venv first when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

CONNECT_PYTHON ?= python3.12
CONNECT_VENV := .venv-connect
# The unit tests of the transformations: what runs through Databricks Connect (the others need the local machine).
CONNECT_TESTS := tests/test_rules.py tests/test_reference.py tests/test_quality.py tests/test_schemas.py \
	tests/test_dirty.py tests/test_far_days.py tests/test_gold.py tests/test_incremental.py tests/test_window.py \
	tests/test_vocabulary.py tests/test_kafka_source.py tests/test_fuzz.py

.PHONY: run build train test test-fast test-connect lineage clean

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

# databricks-connect replaces pyspark, so it gets a venv of its own (Python 3.12 for databricks-connect 17).
$(CONNECT_VENV)/bin/pytest: requirements-connect.txt pyproject.toml
	$(CONNECT_PYTHON) -m venv $(CONNECT_VENV)
	$(CONNECT_VENV)/bin/pip install --quiet --upgrade pip
	$(CONNECT_VENV)/bin/pip install --quiet -r requirements-connect.txt
	$(CONNECT_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

test-connect: $(CONNECT_VENV)/bin/pytest
	CAROUSEL_TEST_SPARK=connect $(CONNECT_VENV)/bin/python -m pytest -q $(CONNECT_TESTS) $(ARGS)

lineage: $(BIN)/carousel
	$(BIN)/python -m carousel.docgen.lineage --out docs/lineage.md

clean:
	rm -rf data spark-warehouse metastore_db derby.log
