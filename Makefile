# The commands a technician and a developer need. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APPLIANCE_SHARED ?= $(abspath ../shared)
export APPLIANCE_SHARED

# The hash-pinned lock for this machine (deploy/lock/; `make lock` rewrites them all).
LOCK   := $(shell $(PYTHON) appliance/devtools/lockfiles.py path 2>/dev/null)

.PHONY: help install system-packages models test test-fast lint lock eval calibrate bench demo docs clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

system-packages:  ## the apt packages for building and the demo (deploy/system-packages.sh dev)
	deploy/system-packages.sh dev

# Every dependency from the lock, with hashes; then the project itself without resolving anything more.
$(BIN)/appliance: pyproject.toml $(LOCK) | system-packages
	@test -n "$(LOCK)" || $(PYTHON) appliance/devtools/lockfiles.py path
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(BIN)/appliance models  ## create .venv from the lock with the `appliance` command; install the models

models: $(BIN)/appliance  ## install model files into models/ and verify every sha256; build the background sets
	$(BIN)/appliance models install

test: install  ## run the whole test suite (real models, real images, real broker, real browser)
	deploy/system-packages.sh test
	$(BIN)/pytest -q

test-fast: install  ## unit tests only
	$(BIN)/pytest -q tests/unit

lint: $(BIN)/appliance  ## ruff, import cycles, dead code (vulture) and the lock against pyproject.toml
	$(BIN)/ruff check appliance tests
	$(BIN)/python -m appliance.devtools.import_cycles appliance
	$(BIN)/python -m appliance.devtools.dead_code
	$(BIN)/python -m appliance.devtools.lockfiles check

lock: $(BIN)/appliance  ## re-resolve deploy/lock/*.txt for every platform (then: make calibrate; docs/install.md)
	$(BIN)/python -m appliance.devtools.lockfiles write

eval: install  ## accuracy on LFW (pooled, per gender, NASA reference vs live): JSON, report, plots in reports/eval
	$(BIN)/appliance eval --data $(APPLIANCE_SHARED)/data/lfw \
		--groups $(APPLIANCE_SHARED)/data/lfw_gender/female_names.txt $(APPLIANCE_SHARED)/data/lfw_gender/male_names.txt \
		--nasa $(APPLIANCE_SHARED)/data/nasa --out reports/eval --json | tee reports/eval.json

GROUPS = $(APPLIANCE_SHARED)/data/lfw_gender/female_names.txt $(APPLIANCE_SHARED)/data/lfw_gender/male_names.txt
calibrate: install  ## re-measure threshold, floor and evidence (pipeline included) into models/manifest.toml
	@mkdir -p reports
	$(BIN)/appliance eval --data $(APPLIANCE_SHARED)/data/lfw --groups $(GROUPS) --calibrate --no-progress \
		--out reports/eval --json > reports/eval.json
	@git diff --stat models/manifest.toml 2>/dev/null || true

bench: install  ## speed and memory benchmarks: bench/results/bench.{json,md}
	$(BIN)/python -m appliance.bench --out bench/results

demo: install  ## a van on this computer: street replay, signed watchlist over TLS MQTT, console on :8080
	$(BIN)/python -m appliance.devtools.demo

docs: $(BIN)/appliance  ## regenerate docs/configuration.md and docs/cli.md from the config models and the parser
	$(BIN)/python -m appliance.devtools.config_doc > docs/configuration.md
	$(BIN)/python -m appliance.devtools.cli_doc > docs/cli.md

clean:  ## remove the venv, installed models and outputs
	rm -rf $(VENV) reports out bench/results
	find models \( -name '*.tflite' -o -name '*.onnx' -o -name '*.npy' -o -path 'models/background/*.json' \) -delete

# --- arm64 and the flashable image (issue 13; docs/install.md "Flashing the image"). Run as root. Slow: qemu
# emulation, so NOT part of `make test`; a nightly CI job runs `make arm64-test image-test` (times in the doc).
ARM64_ROOT := out/arm64-root
IMAGE      := out/lfr-arm64.img
ARM64_APP  := $(ARM64_ROOT)/opt/appliance/.venv/bin/appliance
.PHONY: arm64-root arm64-test image image-test

# Rebuilt when the package, the lock, the installer or the manifest (thresholds, evidence) change; the base root and downloads are cached in
# /var/cache/appliance-image, so a rebuild only reinstalls the appliance.
$(ARM64_APP): pyproject.toml deploy/lock/linux-aarch64-py3.11-device.txt deploy/install.sh deploy/image/build-root.sh \
		deploy/image/lib.sh models/manifest.toml $(shell find appliance -name '*.py' -o -name '*.html' -o -name '*.js' -o -name '*.css')
	deploy/system-packages.sh image
	deploy/image/build-root.sh $(ARM64_ROOT)
	@touch $@

arm64-root: $(ARM64_APP)  ## arm64 Debian 12 root, the appliance installed from the lock as on a device (root)

arm64-test: install $(ARM64_APP)  ## in the arm64 root (qemu-user): models verify, selftest, detect, embeddings vs x86
	APPLIANCE_ARM64=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/integration/test_arm64_root.py

image: $(ARM64_APP)  ## bootable arm64 UEFI disk image out/lfr-arm64.img with first-boot provisioning (root)
	deploy/image/build-image.sh $(ARM64_ROOT) $(IMAGE)

image-test: install $(ARM64_APP)  ## boot the image in qemu-system-aarch64: provision, alert, decision, upgrade/rollback
	APPLIANCE_IMAGE=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/integration/test_image_boot.py
