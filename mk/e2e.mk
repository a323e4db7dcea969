# The real host (issue 12, tests/e2e): the patched Xen under QEMU with
# Debian's kernel as a PV dom0 running our toolstack, guests started with
# `xl create`, one PASS/FAIL line per check. Run on the release hypervisor
# (`make xen`) and on a debug one (CONFIG_DEBUG: Xen's ASSERTs, Rust
# overflow checks), built in build/xen-debug from the same download.
#
#   make e2e              both hypervisors, at once: out/e2e/{release,debug}/
#   make e2e-release      one of them
#   make e2e-debug
#   make e2e-images       dom0 initramfs and guest images: build/e2e/images
#   make xen-debug        the debug hypervisor: out/xen-debug/
#   make smoke-debug      the smoke test (tests/boot) on the debug hypervisor
#
# E2E_ARGS=e2e_only=sshm (or v4v) runs one scenario family; E2E_TIMEOUT
# (seconds) bounds each boot.

E2E_IMAGES := build/e2e/images
E2E_OUT ?= out/e2e
E2E_ARGS ?=

.PHONY: e2e e2e-release e2e-debug e2e-images xen-debug smoke-debug

xen-debug: deps
	mkdir -p build
	cat xen-patches/config xen-patches/config.debug > build/xen-debug.config
	XEN_CONFIG=$(CURDIR)/build/xen-debug.config XEN_BUILD_DIR=$(CURDIR)/build/xen-debug \
		bash xen-patches/build-xen.sh $(CURDIR)/out/xen-debug

e2e-images: tools smoke-kernel linux
	bash tests/e2e/images.sh $(E2E_IMAGES) $(TOOLS_OUT) $(SMOKE_KERNEL) $(LINUX_OUT)

e2e-release: e2e-images xen
	E2E_LABEL=e2e-release bash tests/e2e/run.sh out/xen/xen.gz $(E2E_IMAGES) $(E2E_OUT)/release $(E2E_ARGS)

e2e-debug: e2e-images xen-debug
	E2E_LABEL=e2e-debug bash tests/e2e/run.sh out/xen-debug/xen.gz $(E2E_IMAGES) $(E2E_OUT)/debug $(E2E_ARGS)

# Both at once: a TCG guest idles much of the time (guests booting, polls),
# so two boots on two cores take little longer than one.
e2e: e2e-images xen xen-debug
	@mkdir -p $(E2E_OUT)
	@E2E_LABEL=e2e-release bash tests/e2e/run.sh out/xen/xen.gz $(E2E_IMAGES) $(E2E_OUT)/release $(E2E_ARGS) \
		>$(E2E_OUT)/release.txt 2>&1 & r=$$!; \
	E2E_LABEL=e2e-debug bash tests/e2e/run.sh out/xen-debug/xen.gz $(E2E_IMAGES) $(E2E_OUT)/debug $(E2E_ARGS) \
		>$(E2E_OUT)/debug.txt 2>&1 & d=$$!; \
	rc=0; wait $$r || rc=1; wait $$d || rc=1; \
	cat $(E2E_OUT)/release.txt $(E2E_OUT)/debug.txt; exit $$rc

smoke-debug: smoke-kernel smoke-sim xen-debug
	bash tests/boot/run.sh out/xen-debug/xen.gz $(SMOKE_KERNEL) $(SMOKE_OUT)-debug
	diff -u $(SMOKE_OUT)/sim-results.txt $(SMOKE_OUT)-debug/results.txt
	@echo "smoke-debug: the debug hypervisor agrees with the simulator on every scenario"

# Both pass on the patched Xen: 53 checks each, about 9 minutes together
# (QEMU TCG, 2 cores); the smoke test on the debug hypervisor in seconds.
TEST_TARGETS += smoke-debug e2e
