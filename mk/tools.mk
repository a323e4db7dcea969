# The patched toolstack (libxl-glue): `make tools` builds libxenctrl,
# libxlutil, libxl and xl with the static_shm series into out/tools;
# `make test` checks that xl knows sshm-list and that the patched
# libxlutil parses libxl-glue/examples.

TOOLS_TREE ?= build/tools/xen
TOOLS_OUT ?= out/tools

.PHONY: tools test-tools
tools: deps
	bash libxl-glue/build-tools.sh $(TOOLS_TREE) $(TOOLS_OUT)

test-tools: tools
	bash libxl-glue/check-tools.sh $(TOOLS_OUT)

TEST_TARGETS += test-tools
