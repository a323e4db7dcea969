# Benchmarks (issue 9, tests/bench): V4V and static shared memory on the
# simulator, as ratios measured in one run plus callgrind instruction
# counts. Not tests: nothing asserts a speed, and `make bench` is not in
# TEST_TARGETS. `make bench-smoke` (a few seconds, tiny sizes) is, so the
# harness itself cannot rot.
#
#   make bench         release build, full run: out/bench/results.{json,md},
#                      throughput.png, attach.png
#   make bench-smoke   the same paths with tiny sizes into out/bench-smoke

BENCH_OUT ?= out/bench
BENCH_SMOKE_OUT ?= out/bench-smoke
BENCH_BIN := target/release/bench

.PHONY: bench bench-smoke bench-build

bench-build: deps
	$(CARGO) build --release --locked -p bench

bench: bench-build
	$(BENCH_BIN) --out $(BENCH_OUT)
	@echo "bench: see $(BENCH_OUT)/results.md"

bench-smoke: bench-build
	$(BENCH_BIN) --quick --out $(BENCH_SMOKE_OUT)

TEST_TARGETS += bench-smoke
