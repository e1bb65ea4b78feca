#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# After editing upstream files in the kernel tree and committing there
# (git commit -a, or git add -f: Debian's tarball ignores everything), write
# the commits that follow the new-file commits back into patches/*.patch.
. "$(dirname "$0")/common.sh"

# The series is: standalone fixes (patches/fixes/), the new-file commits
# (patches/new-files/), then the edits to upstream files (patches/).
cd "$KTREE"
nfix=$(ls "$DPF_TOP"/patches/fixes/*.patch 2>/dev/null | wc -l)
n=$(ls "$DPF_TOP"/patches/new-files/*.txt 2>/dev/null | wc -l)
mapfile -t commits < <(git rev-list --reverse "$KBASE_TAG..HEAD")
rm -f "$DPF_TOP"/patches/*.patch "$DPF_TOP"/patches/fixes/*.patch
if [ "$nfix" -gt 0 ]; then
	git format-patch -q --no-signature --zero-commit -o "$DPF_TOP/patches/fixes" \
		"$KBASE_TAG..${commits[$((nfix - 1))]}"
fi
if [ ${#commits[@]} -gt $((nfix + n)) ]; then
	git format-patch -q --no-signature --zero-commit -o "$DPF_TOP/patches" \
		"${commits[$((nfix + n - 1))]}..HEAD"
fi
ls "$DPF_TOP"/patches/fixes/*.patch "$DPF_TOP"/patches/*.patch 2>/dev/null ||
	log "no patches to upstream files"
