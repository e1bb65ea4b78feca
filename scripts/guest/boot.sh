#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Boot smoke test: reach /init, report the paging mode, power off.
if grep -qw la57 /proc/cpuinfo; then echo "la57: on"; else echo "la57: off"; fi
