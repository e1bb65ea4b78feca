# SPDX-License-Identifier: GPL-2.0
#
# dev_pagemap_failure: ranged memory failure for DAX devices.
#
#   make demo     build, boot, remove pmem under live mappings, report
#   make check    every test; ends with "N passed, N failed"
#   make bench    removal, poison-storm and lookup cost against upstream, side by side
#   make bench-scale  the removal from 1 GiB to a 960 GiB device (about 1.5 h)
#   make fuzz     the range algebra against its models, 10^6 cases a property; Miri if it installs
#   make stress   160 removals under load or racing, on the debug kernel (20 cycles of 8)
#   make boot-loop  20 boots with an 8 GiB namespace (DPF_TCG_THREAD=multi: the int3 reproducer)
#
# See README.md. Downloads, ccache and kernel build trees live in
# $(DPF_CACHE) (default ~/.cache/dev-pagemap-failure), outside the clone.

S := scripts
VARIANT ?= release
SIZE ?= 2G
SCRIPT ?= check
TIMEOUT ?= 900

.PHONY: all deps source tree kernel kernel-release kernel-debug initramfs \
	vm shell check demo bench bench-scale fuzz stress boot-loop patches refresh-patches host-test help

all: help

help:
	@sed -n 's/^#   //p' Makefile
	@echo "Other targets: deps source tree kernel kernel-release kernel-debug"
	@echo "  initramfs vm shell host-test patches refresh-patches"
	@echo "  make vm VARIANT=debug SCRIPT=check SIZE=2G   run one guest script"
	@echo "  make shell VARIANT=release                    interactive guest"

deps:
	@$(S)/deps.sh

source: deps
	@$(S)/source.sh

tree: source
	@$(S)/tree.sh

kernel: kernel-release kernel-debug

kernel-release kernel-debug: kernel-%: source
	@$(S)/kernel.sh $*

initramfs: tree
	@$(S)/initramfs.sh

vm: kernel-$(VARIANT) initramfs
	@$(S)/vm.sh -k $(VARIANT) -s $(SIZE) -t $(TIMEOUT) $(SCRIPT)

shell: kernel-$(VARIANT) initramfs
	@$(S)/vm.sh -k $(VARIANT) -s $(SIZE) shell

host-test:
	@cd tools/testing/dev_pagemap_failure && \
		CARGO_TARGET_DIR=$(CURDIR)/out/host-target cargo test --locked

check:
	@$(S)/check.sh

demo: deps
	@$(S)/demo.sh

bench:
	@$(S)/bench.sh

bench-scale:
	@$(S)/bench-scale.sh

fuzz:
	@$(S)/fuzz.sh

stress:
	@$(S)/stress.sh

boot-loop: kernel-release initramfs
	@$(S)/boot-loop.sh

patches: source
	@$(S)/patches.sh

refresh-patches:
	@$(S)/refresh-patches.sh
