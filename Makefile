# `make serve` and `make test` each build .venv from pyproject.toml when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test`: one per core (TEST_WORKERS=0 runs in this process).
TEST_WORKERS ?= auto

.PHONY: serve test lint format bench clean java-client chromium prometheus rabbitmqadmin

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/amqp-lite serve --host 127.0.0.1 --port 5672

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/amqp-lite bench

clean:
	rm -rf $(VENV)

# Debian's RabbitMQ Java client, for the Java-over-TLS tests (they skip themselves without it).
JAVA_CLIENT := /usr/share/java/amqp-client.jar
java-client:
	test -e $(JAVA_CLIENT) || apt-get install -y -qq --no-install-recommends librabbitmq-client-java \
	  || (apt-get update -qq && apt-get install -y -qq --no-install-recommends librabbitmq-client-java)

# Debian's chromium, for the dashboard's browser tests (they skip themselves without it).
# Playwright drives this one; it never downloads a browser of its own.
CHROMIUM := /usr/bin/chromium
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -y -qq --no-install-recommends
chromium:
	test -x $(CHROMIUM) || $(APT_GET) install chromium >/dev/null \
	  || ($(APT_GET) update && $(APT_GET) install chromium >/dev/null)

# Debian's Prometheus server, which a test runs to scrape the broker and answer the Grafana
# RabbitMQ-Overview dashboard's queries (it skips itself without it).
prometheus:
	test -x /usr/bin/prometheus || $(APT_GET) install prometheus >/dev/null \
	  || ($(APT_GET) update && $(APT_GET) install prometheus >/dev/null)

# RabbitMQ's rabbitmqadmin (a Python 3 script), for the management tools test (it skips itself
# without it). Debian ships it in rabbitmq-server; rather than install the server and Erlang for
# one script, the package is downloaded and only the script is taken out, into .tools/ (git-ignored).
TOOLS := .tools
RABBITMQADMIN := $(TOOLS)/usr/bin/rabbitmqadmin
APT_DOWNLOAD := apt-get download -qq -o APT::Sandbox::User=root rabbitmq-server
rabbitmqadmin:
	test -x /usr/bin/rabbitmqadmin || test -x $(RABBITMQADMIN) || ( \
	  mkdir -p $(TOOLS) && cd $(TOOLS) && rm -f rabbitmq-server_*.deb \
	  && ($(APT_DOWNLOAD) || (apt-get update -qq && $(APT_DOWNLOAD))) \
	  && dpkg-deb --fsys-tarfile rabbitmq-server_*.deb | tar -x ./usr/bin/rabbitmqadmin \
	  && rm rabbitmq-server_*.deb)
