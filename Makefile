# gpshub developer tasks. `make demo` runs the hub with a simulated vehicle;
# `make test` runs lint and the whole test suite. Both set everything up first.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
DEMO_DIR ?= ./demo-data

.PHONY: setup vendor demo test lint format bench wheels clean

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

setup: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --all-packages --all-extras --locked
	$(MAKE) --no-print-directory vendor

# the dashboard's third-party browser libraries, pinned by its package-lock.json, copied
# into its package (git-ignored); redone when the lock file or the copy script changes
DASHBOARD := plugins/dashboard
VENDOR_STAMP := $(DASHBOARD)/src/gpshub_dashboard/static/vendor/.stamp
vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP): $(DASHBOARD)/package-lock.json $(DASHBOARD)/vendor.py
	$(PYTHON) $(DASHBOARD)/vendor.py --npm
	touch $@

demo: setup
	$(UV) run --no-sync gpshub --data-dir $(DEMO_DIR) serve --demo

lint: setup
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

test: lint
	$(UV) run --no-sync pytest

format: setup
	$(UV) run --no-sync ruff format .
	$(UV) run --no-sync ruff check --fix .

bench: setup
	$(UV) run --no-sync python bench/ingest.py
	$(UV) run --no-sync python bench/deliver.py
	$(UV) run --no-sync python bench/poll.py
	$(UV) run --no-sync python bench/outage.py
	$(UV) run --no-sync python bench/metrics.py
	$(UV) run --no-sync python bench/changes.py
	$(UV) run --no-sync python bench/auth_throttle.py
	$(UV) run --no-sync python bench/retention.py
	$(UV) run --no-sync python bench/migrate_ids.py
	$(UV) run --no-sync python bench/startup.py
	$(UV) run --no-sync python bench/live.py --duration 20
	$(UV) run --no-sync python bench/findhub.py
	$(UV) run --no-sync python bench/dashboard.py
	$(UV) run --no-sync python bench/failover.py

wheels: setup
	$(UV) build --all-packages --wheel -o dist

clean:
	rm -rf dist .pytest_cache .ruff_cache
