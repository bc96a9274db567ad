# The two commands of the README: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-postgres setup browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Reinstall only when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# plotly.js's basic bundle, served by the app itself (package.json says why and which).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

setup: $(VENV)/.installed node_modules/.package-lock.json

# A secret of this instance for the demo, made once: the app does not start without SECRET_KEY.
instance/secret-key:
	mkdir -p instance
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@ 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))' > $@

# The app on SQLite (instance/fleet.sqlite3) with the demo city, at http://$(HOST):$(PORT).
run: setup instance/secret-key
	SECRET_KEY=$$(cat instance/secret-key) $(BIN)/flask --app app init-db
	SECRET_KEY=$$(cat instance/secret-key) $(BIN)/flask --app app demo
	SECRET_KEY=$$(cat instance/secret-key) $(BIN)/flask --app app run --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser test; never a browser downloaded by a test tool.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium is not installed and cannot be installed without root: the browser test will be skipped"; fi; }

# The whole test suite on SQLite.
test: setup browser
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

# The database tests again on PostgreSQL, in a database created and dropped here.
test-postgres: setup
	$(BIN)/python .ci/postgres.py $(BIN)/pytest -q -m db
