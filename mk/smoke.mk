# The QEMU boot test (issue 7, tests/boot): Xen boots the no_std test kernel
# as its PVH dom0, which runs the scenario list of tests/scenarios against
# the real hypervisor. `make smoke` fails unless every scenario passed and
# the result lines equal the simulator's (one list, two worlds). The console
# log stays in out/smoke/console.log.
#
#   make smoke                          patched Xen from `make xen`
#   make smoke SMOKE_XEN=path/xen.gz SMOKE_XEN_DEP=   any other Xen
#   make smoke-sim                      the same list in the simulator only
#
# The kernel builds with the hypervisor's Rust recipe (DESIGN.md section 6)
# in its own target directory; tests/boot and tests/scenarios are not
# workspace members.

SMOKE_XEN ?= out/xen/xen.gz
SMOKE_XEN_DEP ?= xen
SMOKE_OUT ?= out/smoke
SMOKE_KERNEL := build/smoke-kernel/x86_64-unknown-none/release/smoke-kernel
SMOKE_RUSTC ?= /usr/bin/rustc

# Not --locked: these crates are outside the workspace, so their Cargo.lock
# files cannot follow the workspace's automatically; a dependency added to
# hypercall-abi or the simulator must not break the boot test.

.PHONY: smoke smoke-kernel smoke-sim lint-kernel

# The test kernel's build (DESIGN.md section 6; tests/boot/.cargo/config.toml
# has the rest), written once for every variant:
#   $(call test-kernel-build,TARGET-DIR,CARGO-ARGS)
test-kernel-build = cd tests/boot && RUSTC=$(SMOKE_RUSTC) RUSTC_BOOTSTRAP=1 \
	CARGO_TARGET_DIR=$(CURDIR)/$(1) $(CARGO) build --release $(2)

smoke-kernel: deps
	$(call test-kernel-build,build/smoke-kernel,)

# Clippy for the test kernel, normal and bench builds. Checked for the host
# target with the toolchain's own core (clippy only type-checks; nothing is
# linked), since clippy cannot drive the -Zbuild-std build of Debian's
# rustc.
lint-kernel:
	cd tests/boot && for f in "" "--features bench"; do \
		CARGO_TARGET_DIR=$(CURDIR)/build/kernel-clippy $(CARGO) clippy --release \
			--target x86_64-unknown-linux-gnu $$f -- -D warnings || exit 1; done

# The scenario list against the simulator; its result lines go to
# $(SMOKE_OUT)/sim-results.txt.
smoke-sim: deps
	mkdir -p $(SMOKE_OUT)
	cd tests/scenarios && CARGO_TARGET_DIR=$(CURDIR)/build/scenarios \
		SMOKE_SIM_RESULTS=$(CURDIR)/$(SMOKE_OUT)/sim-results.txt $(CARGO) test

smoke: deps smoke-kernel smoke-sim $(SMOKE_XEN_DEP)
	bash tests/boot/run.sh $(SMOKE_XEN) $(SMOKE_KERNEL) $(SMOKE_OUT)
	diff -u $(SMOKE_OUT)/sim-results.txt $(SMOKE_OUT)/results.txt
	@echo "smoke: real Xen and the simulator agree on every scenario"

# Passes on the patched Xen: about 1.5 s from QEMU start to power-off (TCG).
TEST_TARGETS += smoke lint-kernel
