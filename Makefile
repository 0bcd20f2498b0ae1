# OpenSandbox: `make run` and `make test` do everything on a fresh Debian
# machine (they install what is missing first; needs root or sudo).
.PHONY: all deps build build-asan run test unit fuzz-smoke fuzz bench clean

JOBS        ?= $(shell nproc)
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
FUZZ_RUNS   ?= 20000
FUZZ_SECONDS ?= 300
DATA_DIR    ?= .osb
# CI=true turns warnings into errors.
WERROR      := $(if $(filter true 1,$(CI)),ON,OFF)
CMAKE_GEN   := -G Ninja -DOSB_WERROR=$(WERROR)

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOSB_TESTS=OFF
	cmake --build $(BUILD) -j $(JOBS)

# Start the embedded default: control plane + one worker, SQLite in $(DATA_DIR).
run: build
	./$(BUILD)/osb dev --data-dir $(DATA_DIR)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DOSB_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test: unit + integration + end-to-end through ctest (ASan + UBSan
# build), then a short run of every fuzz target.
test: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900
	$(MAKE) fuzz-smoke

unit: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DOSB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

fuzz-smoke: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@set -e; for f in $(FUZZ_BUILD)/fuzzers/*; do \
	  name=$$(basename $$f); corpus=$$(mktemp -d); \
	  cp -r fuzz/corpus/$$name/. $$corpus/ 2>/dev/null || true; \
	  echo "fuzz-smoke: $$name ($(FUZZ_RUNS) runs)"; \
	  $$f -runs=$(FUZZ_RUNS) -max_len=4096 $$corpus >$$corpus.log 2>&1 || { tail -50 $$corpus.log; exit 1; }; \
	  tail -1 $$corpus.log; rm -rf $$corpus $$corpus.log; \
	done

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@for f in $(FUZZ_BUILD)/fuzzers/*; do \
	  $$f -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/$$(basename $$f); done

bench: deps
	cmake -S . -B build-bench $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DOSB_TESTS=OFF -DOSB_BENCH=ON
	cmake --build build-bench -j $(JOBS)
	@if [ -x bench/run.sh ]; then bash bench/run.sh build-bench; else echo "no benchmarks yet"; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-bench
