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

# Real Xen, side by side (issue 9): V4V sendv against Argo's sendv in the
# same boot, sshm attach against XENMEM_populate_physmap, under QEMU
# -icount (tests/bench/README.md). Its own Xen (the series plus
# CONFIG_ARGO=y) is built in build/xen-argo from the same download cache,
# so the `make xen` tree is left alone; the test kernel is built with the
# cargo feature `bench` in build/bench-kernel (the smoke kernel is
# untouched). Not in TEST_TARGETS: a measurement, not a test.
#
#   make bench-xen     out/bench/xen-results.{md,json,png}, xen-console.log

BENCH_XEN_KERNEL := build/bench-kernel/x86_64-unknown-none/release/smoke-kernel

.PHONY: bench-xen bench-xen-kernel bench-xen-hv

# test-kernel-build and SMOKE_RUSTC come from mk/smoke.mk.
bench-xen-kernel: deps
	$(call test-kernel-build,build/bench-kernel,--features bench)

bench-xen-hv: deps
	bash tests/bench/xen-argo.sh $(CURDIR)/out/xen-argo

bench-xen: bench-xen-kernel bench-xen-hv
	bash tests/bench/xen-side-by-side.sh out/xen-argo/xen.gz $(BENCH_XEN_KERNEL) $(BENCH_OUT)
	@echo "bench-xen: see $(BENCH_OUT)/xen-results.md"

# The profile (issue 16): the same hypervisor, kernel and boot as
# bench-xen, with `bench=profile` on the kernel's command line (only the
# V4V and Argo sends, each batch a counting window) and the insn-prof QEMU
# plugin, which counts every guest instruction by address;
# tests/bench/profile/report.py attributes them to Xen's functions
# (tests/bench/README.md). Not in TEST_TARGETS: a measurement.
#
#   make bench-xen-profile   out/bench/xen-profile.{md,json}

BENCH_PROFILE_PLUGIN := build/qemu-plugin/insn-prof.so

.PHONY: bench-xen-profile bench-xen-profile-plugin

bench-xen-profile-plugin: deps
	bash tests/bench/profile/build.sh build/qemu-plugin

bench-xen-profile: bench-xen-kernel bench-xen-profile-plugin bench-xen-hv
	bash tests/bench/profile/run.sh out/xen-argo $(BENCH_XEN_KERNEL) $(BENCH_PROFILE_PLUGIN) $(BENCH_OUT)
	@echo "bench-xen-profile: see $(BENCH_OUT)/xen-profile.md"

# Two domains (issue 16 point 3): the e2e host (tests/e2e/run.sh: Linux PV
# dom0 with our toolstack, the e2e images) on the Argo build of Xen with
# `argo=1`, under QEMU -icount; dom0 runs only the `bench2` family
# (tests/e2e/dom0/bench2.sh): two test-kernel guests, `a` measuring
# streaming throughput and ping-pong round trips to `b` over V4V (single
# and batched), Argo and a vchan-style grant ring; tests/bench/xen2_report.py
# turns a's result lines into the table and plots. Not in TEST_TARGETS: a
# measurement. BENCH2_ARGS adds dom0 options (tests/e2e/dom0/bench2.sh),
# e.g. BENCH2_ARGS="bench2_sizes=64:1024 bench2_reps=1".
#
#   make bench-xen-2dom   out/bench/xen-2dom.{md,json,png},
#                         out/bench/2dom/console.log

BENCH_2DOM_OUT ?= $(BENCH_OUT)/2dom
BENCH2_ARGS ?=
BENCH2_TIMEOUT ?= 5400
BENCH2_QEMU ?= -icount shift=0,sleep=off

.PHONY: bench-xen-2dom bench-xen-2dom-check

bench-xen-2dom: e2e-images bench-xen-hv
	@mkdir -p $(BENCH_2DOM_OUT); rc=0; \
	E2E_LABEL=bench-xen-2dom E2E_MIN_PASS=1 E2E_TIMEOUT=$(BENCH2_TIMEOUT) \
		E2E_XEN_EXTRA=argo=1 E2E_QEMU_EXTRA="$(BENCH2_QEMU)" \
		bash tests/e2e/run.sh out/xen-argo/xen.gz $(E2E_IMAGES) $(BENCH_2DOM_OUT) \
		e2e_only=bench2 $(BENCH2_ARGS) >$(BENCH_2DOM_OUT)/run.txt 2>&1 || rc=1; \
	cat $(BENCH_2DOM_OUT)/run.txt; \
	secs=$$(sed -n 's/^bench-xen-2dom: .* after \([0-9]*\)s; .*/\1/p' $(BENCH_2DOM_OUT)/run.txt); \
	python3 tests/bench/xen2_report.py --log $(BENCH_2DOM_OUT)/console.log --out $(BENCH_OUT) \
		--qemu "$(BENCH2_QEMU)" $${secs:+--host-seconds $$secs} || rc=1; \
	echo "bench-xen-2dom: see $(BENCH_OUT)/xen-2dom.md"; exit $$rc

# The same boot with the insn-prof plugin and guest a's profile=1
# (tests/bench/profile/run-2dom.sh): where a message's instructions go
# between two domains, per Xen function, V4V against Argo.
#
#   make bench-xen-2dom-profile   out/bench/xen-profile-2dom.{md,json}

.PHONY: bench-xen-2dom-profile

bench-xen-2dom-profile: e2e-images bench-xen-profile-plugin bench-xen-hv
	bash tests/bench/profile/run-2dom.sh out/xen-argo $(E2E_IMAGES) $(SMOKE_KERNEL) \
		$(BENCH_PROFILE_PLUGIN) $(BENCH_OUT) $(BENCH2_ARGS)

# The report's parser and table on a small sample log (a second).
bench-xen-2dom-check:
	python3 tests/bench/xen2_report.py --check

TEST_TARGETS += bench-xen-2dom-check
