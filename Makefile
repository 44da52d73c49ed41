# Two commands on a fresh machine: `make run` and `make test` (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
export FLASK_APP := app

.PHONY: install run test lint db seed browser postgres postgres-stop clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

db: install
	$(BIN)/flask db upgrade

# `make run PORT=8080`: the server listens there and customers' links (PUBLIC_BASE_URL,
# unless set in the environment or on the Settings screen) point there, the demo's too.
PORT ?= 5000
run seed: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)

seed: db
	$(BIN)/flask seed-demo

## Serve on http://127.0.0.1:$(PORT) (5000 by default) with the scheduler, SQLite and the outbox provider.
run: seed
	@login=$$(ls -t instance/*demo-login*.txt 2>/dev/null | head -1); \
	  echo; echo "==> Open http://127.0.0.1:$(PORT) and log in. $${login:+$$(cat $$login) (kept in $$login)}"; echo
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

## Headless Chromium for the browser tests (Debian's package; Playwright's download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

## A throwaway PostgreSQL for the concurrency tests (tests/postgres): Debian's package, a
## cluster under /tmp on 127.0.0.1:$(PG_PORT) only, trust auth, fsync off. Reused when it
## already answers; `make postgres-stop` stops it. PostgreSQL refuses to run as root, so
## as root the cluster belongs to the `postgres` user.
PG_PORT := 54329
PG_DATA := /tmp/testimonials-pg-$(PG_PORT)
TEST_POSTGRES_URL := postgresql+psycopg://postgres@127.0.0.1:$(PG_PORT)/postgres
PG_AS    = if [ "$$(id -u)" = 0 ]; then runuser -u postgres -- "$$@"; else "$$@"; fi
PG_BIN   = $$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the PostgreSQL tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }
	@as_pg() { $(PG_AS); }; bin=$(PG_BIN); \
	ready() { $$bin/pg_isready -q -h 127.0.0.1 -p $(PG_PORT) -U postgres; }; \
	if ready; then exit 0; fi; \
	start() { as_pg $$bin/pg_ctl -D $(PG_DATA) -l $(PG_DATA)/server.log -w -t 60 start \
	  -o "-h 127.0.0.1 -p $(PG_PORT) -k $(PG_DATA) -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; }; \
	if [ "$$(cat $(PG_DATA)/PG_VERSION 2>/dev/null)" = "$$($$bin/pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')" ] && start 2>/dev/null; then exit 0; fi; \
	echo "starting a throwaway PostgreSQL in $(PG_DATA) on 127.0.0.1:$(PG_PORT)"; \
	rm -rf $(PG_DATA) && mkdir -p $(PG_DATA) && chmod 700 $(PG_DATA); \
	if [ "$$(id -u)" = 0 ]; then chown postgres: $(PG_DATA); fi; \
	as_pg $$bin/initdb -D $(PG_DATA) -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null && start && ready

postgres-stop:
	@as_pg() { $(PG_AS); }; bin=$(PG_BIN); \
	if [ -f $(PG_DATA)/postmaster.pid ]; then as_pg $$bin/pg_ctl -D $(PG_DATA) -m fast stop; fi

test: install lint browser postgres
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/python -m pytest

## Ruff's checks and its formatter (`ruff format` fixes what the second line reports); `make test` runs it first.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance/*.db tests/artifacts
