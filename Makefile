# Koopkracht — the two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (virtual environment, locked dependencies, Kafka jars), once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit integration jars install messages bench bench-aggregation bench-suggestions bench-core bench-memory bench-worker bench-notifications bench-faust clean faults chart deployment-test

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

jars: install
	$(BIN)/python -c "from infra.kafka import ensure_jars; ensure_jars(print)"

## The main job: the whole stack on the embedded defaults (local Kafka, SQLite), and a whole
## negotiation played on it; then it keeps serving until Ctrl-C.
demo: jars
	$(BIN)/koopkracht demo

## Every check CI runs: lint, types, and the whole test suite against a real Kafka.
test: lint jars
	$(BIN)/python -m pytest --durations=15

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas streams services infra

## The dashboard's words: extract every t("…") and N_("…") of the code and templates and the built-in
## catalogue's texts into messages.pot, and update each language's messages.po (docs/dashboard.md, "Languages").
LOCALE := services/dashboard/locale

messages: install
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ --no-wrap --sort-by-file --omit-header -o $(LOCALE)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) -D messages --no-wrap --ignore-obsolete

unit: install
	$(BIN)/python -m pytest tests/unit

integration: jars
	$(BIN)/python -m pytest tests/integration

## The Helm chart (infra/helm/koopkracht): builds the pinned helm once (needs Go), lints the chart,
## renders it with each values file of its ci/ folder and validates every object offline.
HELM := .tools/bin/helm

$(HELM): infra/helm/install-helm.sh
	bash infra/helm/install-helm.sh
	touch $(HELM)

chart: install $(HELM)
	$(BIN)/python -m tests.chart

bench-aggregation: install
	$(BIN)/python -m tests.bench.aggregation

## The coordinator's insight: suggestions and what-ifs at 10, 100 and 1,000 members x 50 items (docs/insight.md).
bench-suggestions: install
	$(BIN)/python -m tests.bench.suggestions

## The worker's CPU without Kafka: replay and process_command, with pydantic's decoders and the compiled ones.
bench-core: install
	$(BIN)/python -m tests.bench.core --compare --worker-gc

## A worker's memory as the commands it decided grow (a week of command ids against every id).
bench-memory: install
	$(BIN)/python -m tests.bench.memory

clean:
	rm -rf $(VENV) .tools .koopkracht infra/kafka/.cache .pytest_cache .mypy_cache .ruff_cache

## The fault suite: the hub as separate processes on a 3-broker Kafka, twelve members writing,
## one fault per scenario (worker, broker during a rebalance, projector, API, a zombie worker);
## and the deployment test (below), when KOOPKRACHT_TEST_POSTGRES_URL is set.
faults: jars
	KOOPKRACHT_RUN_FAULTS=1 $(BIN)/python -m pytest tests/reliability -s

## Several instances of every process on PostgreSQL and a 3-broker Kafka (two workers, two APIs, two
## webhook dispatchers, a projector writing and one waiting): read-your-writes across the APIs, each
## webhook once, and the projector's takeover. Needs KOOPKRACHT_TEST_POSTGRES_URL (README, 'Tests').
deployment-test: jars
	KOOPKRACHT_RUN_FAULTS=1 $(BIN)/python -m pytest tests/reliability/test_deployment.py -s

## Worker throughput and table recovery against the local Kafka (started if needed).
bench-worker: jars
	$(BIN)/koopkracht kafka start
	$(BIN)/python -m tests.bench.worker --bootstrap 127.0.0.1:19092

## From a member's write to the webhook delivery and the SSE message (p50/p99); starts its own stack.
bench-notifications: jars
	$(BIN)/python -m tests.bench.notifications

## The crash test on faust-streaming that kept it off the command path (docs/streams.md): three runs
## of 10,000 commands, SIGKILL midway, restart; counts the commands lost. Starts its own Kafka.
## Exits 0 whether or not it loses any (add --expect-loss to fail when none is lost).
bench-faust: jars
	$(BIN)/python -m tests.bench.faust_offsets --runs 3

## Every benchmark in one run (ceiling, pipeline, latency, aggregation, replay, memory): a table and bench-results.json.
bench: jars
	$(BIN)/python -m tests.bench.suite
