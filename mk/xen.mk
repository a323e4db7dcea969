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

test-xen: deps
	bash tests/xen/run.sh
