# The commands a technician and a developer need. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APPLIANCE_SHARED ?= $(abspath ../shared)
export APPLIANCE_SHARED

.PHONY: help install models test test-fast lint eval bench demo docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/appliance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/appliance models  ## create .venv with the `appliance` command and install the models

models: $(BIN)/appliance  ## install model files into models/ and verify every sha256
	$(BIN)/appliance models install

test: install  ## run the whole test suite (real models, real images, real broker)
	$(BIN)/pytest -q

test-fast: install  ## unit tests only
	$(BIN)/pytest -q tests/unit

lint: $(BIN)/appliance  ## ruff and the import-cycle check
	$(BIN)/ruff check appliance tests
	$(BIN)/python -m appliance.devtools.import_cycles appliance

eval: install  ## accuracy on LFW (pooled, per gender, NASA reference vs live): JSON, report, plots in reports/eval
	$(BIN)/appliance eval --data $(APPLIANCE_SHARED)/data/lfw \
		--groups $(APPLIANCE_SHARED)/data/lfw_gender/female_names.txt $(APPLIANCE_SHARED)/data/lfw_gender/male_names.txt \
		--nasa $(APPLIANCE_SHARED)/data/nasa --out reports/eval --json | tee reports/eval.json

bench: install  ## speed and memory benchmarks: bench/results/bench.{json,md}
	$(BIN)/python -m appliance.bench --out bench/results

demo: install  ## a van on this computer: street replay, signed watchlist over TLS MQTT, console on :8080
	$(BIN)/python -m appliance.devtools.demo

docs: $(BIN)/appliance  ## regenerate docs/configuration.md from the config models
	$(BIN)/python -m appliance.devtools.config_doc > docs/configuration.md

clean:  ## remove the venv, installed models and outputs
	rm -rf $(VENV) reports out bench/results
	find models -name '*.tflite' -delete
