# Two commands on a fresh machine: `make run` and `make test` (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
export FLASK_APP := app

.PHONY: install run test lint db seed browser clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

db: install
	$(BIN)/flask db upgrade

seed: db
	$(BIN)/flask seed-demo

## Serve on http://127.0.0.1:5000 with the scheduler, SQLite and the outbox provider.
run: seed
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

## Headless Chromium for the browser tests (Debian's package; Playwright's download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: install browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check app tests bench config.py wsgi.py

clean:
	rm -rf $(VENV) instance/*.db tests/artifacts
