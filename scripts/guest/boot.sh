#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Boot smoke test: reach /init, report the paging mode, power off.
#
# With dpf.boot_ns=N (scripts/boot-loop.sh) it then does what the boot that
# died with "Oops: int3" was doing: it creates an fsdax namespace of the
# whole region (memremap_pages() of all of it) and destroys it again, N
# times, and prints one "ok N namespace" line each time.
SEL=/dpf/selftests
if grep -qw la57 /proc/cpuinfo; then echo "la57: on"; else echo "la57: off"; fi
rounds=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dpf.boot_ns=*) rounds=${arg#dpf.boot_ns=} ;;
	esac
done
[ "$rounds" -gt 0 ] || exit 0
. "$SEL/dax_lib.sh"
i=1
while [ "$i" -le "$rounds" ]; do
	dax_setup_namespaces fsdax all
	if [ -z "$pmem" ]; then
		echo "not ok $i namespace"
		exit 1
	fi
	ndctl destroy-namespace -f all >/dev/null 2>&1
	echo "ok $i namespace"
	i=$((i + 1))
done
