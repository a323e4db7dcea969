# The patched Xen (issue 6): see xen-patches/README.md.
#
#   make xen      fetch Xen (once), apply the series, build: out/xen/
#   make series   the series as git format-patch files: out/series/
#   make test-xen the build checks of tests/xen/

.PHONY: xen series test-xen

MAIN_TARGETS += xen
TEST_TARGETS += test-xen

xen: deps
	bash xen-patches/build-xen.sh $(CURDIR)/out/xen

series: deps
	bash xen-patches/export-series.sh $(CURDIR)/out/series

# Every commit of the series builds with the features on (not in make
# test: it builds Xen once per patch).
.PHONY: series-build-each
series-build-each: xen
	bash xen-patches/build-each.sh $(CURDIR)/build/series-each

test-xen: deps
	bash tests/xen/run.sh

# The only module with unsafe code, rust-hv's `xen` (the Platform over the
# C shim and the FFI entry points), is otherwise built only inside Xen's
# build, where clippy never sees it: lint it on the host against the shim
# header that lands in Xen (xen-patches/tree, self-contained), with the
# same bindgen as Xen's build.
.PHONY: lint-xen
lint-xen: deps
	RUST_HV_SHIM_H=$(CURDIR)/xen-patches/tree/xen/common/rust-hv/shim.h \
		$(CARGO) clippy -p rust-hv --features xen --lib -- -D warnings
TEST_TARGETS += lint-xen
