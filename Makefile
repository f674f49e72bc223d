# The two commands of the README:
#   make demo   installs into .venv and starts the service on SQLite (clv demo)
#   make test   lint, type check and the test suite on SQLite and PostgreSQL
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev
SPEC := $(if $(EXTRAS),.[$(EXTRAS)],.)
INSTALLED := $(VENV)/.installed$(if $(EXTRAS),-$(EXTRAS))

.PHONY: install demo serve test test-fast lint typecheck pytest openapi bench lock clean browser promtool

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e "$(SPEC)"
	touch $@

# make demo PORT=8080 serves on another port.
PORT ?= 8000
demo: install
	$(BIN)/clv demo --port $(PORT)

serve: install
	$(BIN)/clv db upgrade
	$(BIN)/clv serve

test: lint typecheck pytest

lint: install
	$(BIN)/ruff check service tests bench migrations
	$(BIN)/ruff format --check service tests bench migrations

typecheck: install
	$(BIN)/mypy

# One pytest-xdist worker per core; each test runs whole on one worker, its databases its own.
TEST_WORKERS ?= auto
pytest: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

# The inner loop: the tests that reach no database and are not marked slow, about 1 min.
test-fast: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not db and not slow"

openapi: install
	$(BIN)/clv openapi

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/import_csv.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/real_data.py
	$(BIN)/python bench/score.py
	$(BIN)/python bench/soak.py

# Debian packages that some tests need and skip without: installed only when missing, with sudo
# only when not root.
APT_INSTALL = sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); $$sudo apt-get update -qq \
	&& $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

# Headless Chromium and its driver for the Swagger UI test in tests/ui.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(APT_INSTALL) chromium chromium-driver; \
	fi

# promtool (the prometheus package) for the alerting rules' test in tests/ops.
promtool:
	@if ! command -v promtool >/dev/null; then $(APT_INSTALL) prometheus; fi

# Re-pin every dependency after changing pyproject.toml (torch stays at the plain 2.13.0 pin).
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -v '^clv-service' \
		| sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.body
	{ sed -n '/^#/p' constraints.txt; cat constraints.body; } > constraints.txt.new
	rm constraints.body && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
