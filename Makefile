# The README's two commands: `make run` and `make check`.
BUILD ?= build
SAN_BUILD ?= build-san
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build run check check-san clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	$(BUILD)/coffer dev $(ARGS)

# Starts a throw-away PostgreSQL server for the tests when COFFER_TEST_PG_URL
# is not given (scripts/check.sh).
check: build
	scripts/check.sh $(BUILD) release

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

# SAN_TEST_ARGS: options for meson test. By default the sanitizer run leaves
# out the PostgreSQL runs of the HTTP and CLI contract files (suite
# pg-contract, tests/integration/meson.build): the same C as their SQLite
# runs but for the store driver, which store-pg and the run-path files'
# PostgreSQL runs put under the sanitizers. SAN_TEST_ARGS= runs everything.
SAN_TEST_ARGS ?= --no-suite pg-contract
check-san: deps $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	scripts/check.sh $(SAN_BUILD) sanitizers $(SAN_TEST_ARGS)

# The libFuzzer targets (tests/fuzz, docs/FUZZ.md), FUZZ_SECONDS each, under
# ASan+UBSan in a clang build of their own.
.PHONY: fuzz
fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)

# The benchmark table (docs/BENCHMARKS.md): release build in build-bench/,
# peers installed, every row run; about 15 minutes. Not part of `make check`.
.PHONY: bench
bench: deps
	scripts/bench.sh
