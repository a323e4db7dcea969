# The hypercall fuzzer (issue 13, fuzz/): libFuzzer through cargo-fuzz
# drives sequences of sshm domctls, v4v_ops, grant ops, event channels,
# domain create/destroy/soft reset and guest writes into ring headers
# through the simulator's hypercall entry, with every invariant checked
# after each step. Built with debug assertions and overflow checks on
# (fuzz/Cargo.toml), without a sanitizer (the code under test is safe
# Rust; ASan halves the speed and finds nothing more).
#
#   make fuzz          FUZZ_SECONDS (600) of fuzzing
#   make fuzz-smoke    about a minute plus the build; fails on any crash
#                      (in `make test`)
#   make fuzz-merge    minimises the finds of earlier runs into the
#                      committed corpus
#
# New inputs go to build/fuzz/corpus (the committed seeds in
# fuzz/corpus/hypercalls are read, not written); crashes to out/fuzz/.
# Replay one: cd fuzz && cargo +nightly fuzz run -s none hypercalls FILE
# (or, on stable, cargo run --release --example replay -- FILE).

FUZZ_TARGET ?= hypercalls
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_CORPUS := fuzz/corpus/$(FUZZ_TARGET)
FUZZ_WORK := build/fuzz/corpus
FUZZ_OUT ?= out/fuzz
FUZZ_CARGO := cd fuzz && cargo +nightly fuzz
FUZZ_BUILD_FLAGS := --sanitizer none --debug-assertions --target-dir $(CURDIR)/build/fuzz-target
FUZZ_ARGS := -max_len=4096 -timeout=30 -artifact_prefix=$(CURDIR)/$(FUZZ_OUT)/

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-merge fuzz-setup fuzz-dirs

fuzz-setup:
	@bash scripts/fuzz-setup.sh

# Not --locked: like tests/boot, fuzz/ is outside the workspace and its
# Cargo.lock cannot follow the workspace's automatically.
fuzz-build: fuzz-setup
	$(FUZZ_CARGO) build $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET)

fuzz-dirs:
	mkdir -p $(FUZZ_WORK) $(FUZZ_OUT)

fuzz: fuzz-build fuzz-dirs
	$(FUZZ_CARGO) run $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET) $(CURDIR)/$(FUZZ_WORK) $(CURDIR)/$(FUZZ_CORPUS) -- \
		$(FUZZ_ARGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

fuzz-smoke: fuzz-build fuzz-dirs
	$(FUZZ_CARGO) run $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET) $(CURDIR)/$(FUZZ_WORK) $(CURDIR)/$(FUZZ_CORPUS) -- \
		$(FUZZ_ARGS) -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1

fuzz-merge: fuzz-build
	$(FUZZ_CARGO) run $(FUZZ_BUILD_FLAGS) $(FUZZ_TARGET) $(CURDIR)/$(FUZZ_CORPUS) $(CURDIR)/$(FUZZ_WORK) -- \
		$(FUZZ_ARGS) -merge=1

TEST_TARGETS += fuzz-smoke
