# chainrisk: the two commands of the README. Everything they need is installed here, from the registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8545
DASHBOARD_PORT ?= 8501
#: pytest workers (pytest-xdist): each test file runs whole on one worker; files sharing the full devnet share one.
#: Three on two cores: the tests wait on anvil, subprocesses and browsers, so two workers kept the cores ~75 % busy;
#: the whole suite took 1,132 s on two workers and 940 s on three on this 2-core machine (1.77 cores busy on average)
#: when that was measured; on three it has since taken 610-760 s of pytest in a clean clone (1,187-1,190 tests, Dec 2026).
TEST_WORKERS ?= 3

.PHONY: setup chromium java demo test bench credit-eval clean

$(BIN)/chainrisk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

setup: $(BIN)/chainrisk node_modules/.package-lock.json

# Start the devnet (real Aave V3.0.2, V3.6 and Morpho Blue, stand-in Comet, Maker and Liquity on one anvil), index,
# score and publish it (one `chainrisk run`), run the risk models over it, then open the dashboard.
demo: setup
	$(BIN)/chainrisk devnet up --replace --port $(PORT)
	mkdir -p .chainrisk  # the devnet's state lies elsewhere when CHAINRISK_STATE_DIR is set
	rm -rf .chainrisk/demo.duckdb .chainrisk/demo.duckdb.published .chainrisk/demo.duckdb.scorebook
	$(BIN)/chainrisk run --devnet --db .chainrisk/demo.duckdb
	$(BIN)/chainrisk devnet govern  # a governance proposal on every governed protocol, which the next run reads
	$(BIN)/chainrisk run --devnet --db .chainrisk/demo.duckdb
	$(BIN)/chainrisk risk stress --db .chainrisk/demo.duckdb --step-hours 2
	$(BIN)/chainrisk risk var --db .chainrisk/demo.duckdb --scenarios 10000 --backtest 2022-01-01..2022-12-31
	$(BIN)/chainrisk risk optimise --db .chainrisk/demo.duckdb --devnet --swap-into USDC
	$(BIN)/chainrisk risk cascade --db .chainrisk/demo.duckdb --shock WETH=-30% --shock wstETH=-30%
	$(BIN)/chainrisk risk contagion --db .chainrisk/demo.duckdb --shock WETH=-35% --shock stETH=-35%
	$(BIN)/chainrisk credit history --devnet --db .chainrisk/demo.duckdb --every 12h
	$(BIN)/chainrisk credit --db .chainrisk/demo.duckdb
	@echo "dashboard: http://127.0.0.1:$(DASHBOARD_PORT)  (Ctrl-C stops it; \`$(BIN)/chainrisk devnet down\` stops the chain)"
	CHAINRISK_DB=.chainrisk/demo.duckdb $(BIN)/streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.port $(DASHBOARD_PORT) --browser.gatherUsageStats false

# Headless Chromium for the one real-browser test of the dashboard (Debian's package; needs root or sudo).
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# A Java runtime for Spark (pyspark, local mode) reading `chainrisk export`'s lake in one test (Debian's package).
java:
	@command -v java >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

test: setup chromium java
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@# The tests start chainrisk in many processes; where PYTHONDONTWRITEBYTECODE is set (as on this machine) each
	@# would compile the package's modules again (0.26 s a start): compiled once here instead.
	$(BIN)/python -m compileall -q chainrisk
	$(BIN)/pytest -q --durations=20 -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# Issue 9's out-of-time evaluation of the credit scorecard: 2,000 wallets over eight months of real prices
# (Nov 2021 - Jun 2022: the January drop, LUNA, the stETH discount), sampled daily; trained before each cutoff T,
# scored at T, labelled by the liquidations of the 30 days after T, calibration by band and by market regime;
# that run's evaluation shipped beside the bundled model (the dashboard shows it for scores the bundled model made
# on a database never evaluated, like the demo's); then the bundled model, trained on all of it, and its sanity
# check on Aave V2's repeat liquidations. About 20 minutes on 2 cores.
CREDIT_STATE := .chainrisk/credit-eval
CREDIT_RUN := (SELECT max(run_id) FROM credit_evaluations)
CREDIT_SHIPPED := SELECT 'evaluation' AS part, * FROM credit_evaluations WHERE run_id = $(CREDIT_RUN) \
	UNION ALL BY NAME SELECT 'calibration' AS part, * FROM credit_calibration WHERE run_id = $(CREDIT_RUN) \
	UNION ALL BY NAME SELECT 'regime' AS part, * FROM credit_regimes WHERE run_id = $(CREDIT_RUN) \
	ORDER BY part, cutoff_block, scorer, bucket
credit-eval: setup
	CHAINRISK_STATE_DIR=$(CREDIT_STATE) $(BIN)/chainrisk devnet up --replace --port 8547 --wallets 2000 --days 242 --start 2021-11-01 --step-hours 24 --seed 21
	rm -rf $(CREDIT_STATE)/credit.duckdb $(CREDIT_STATE)/credit.duckdb.published $(CREDIT_STATE)/credit.duckdb.scorebook
	CHAINRISK_STATE_DIR=$(CREDIT_STATE) $(BIN)/chainrisk run --devnet --db $(CREDIT_STATE)/credit.duckdb
	CHAINRISK_STATE_DIR=$(CREDIT_STATE) $(BIN)/chainrisk credit history --devnet --db $(CREDIT_STATE)/credit.duckdb --every 1d
	$(BIN)/chainrisk credit evaluate --db $(CREDIT_STATE)/credit.duckdb --at 2022-04-01 --at 2022-05-01 --at 2022-06-01
	$(BIN)/chainrisk sql --db $(CREDIT_STATE)/credit.duckdb --format json --out chainrisk/credit/models/devnet.evaluation.json "$(CREDIT_SHIPPED)"
	$(BIN)/chainrisk credit train --db $(CREDIT_STATE)/credit.duckdb --out chainrisk/credit/models/devnet.json
	$(BIN)/chainrisk credit sanity --model chainrisk/credit/models/devnet.json
	CHAINRISK_STATE_DIR=$(CREDIT_STATE) $(BIN)/chainrisk devnet down

bench: setup
	$(BIN)/python benchmarks/devnet.py

clean:
	rm -rf $(VENV) node_modules .chainrisk
