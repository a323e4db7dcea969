# The guest side (linux/): kernel modules built by kbuild against Debian's
# headers for the e2e kernel, and static user-space tools, in out/linux/.
#
#   make linux        out/linux/*.ko, out/linux/tools/*

LINUX_OUT := out/linux

.PHONY: linux

linux: deps
	bash linux/build.sh $(LINUX_OUT)
