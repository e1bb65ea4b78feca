#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# After editing upstream files in the kernel tree and committing there
# (git commit -a, or git add -f: Debian's tarball ignores everything), write
# the commits that follow the new-file commits back into patches/*.patch.
. "$(dirname "$0")/common.sh"

cd "$KTREE"
n=$(ls "$DPF_TOP"/patches/new-files/*.txt 2>/dev/null | wc -l)
first_patch=$(git rev-list --reverse "$KBASE_TAG..HEAD" | sed -n "$((n + 1))p")
rm -f "$DPF_TOP"/patches/*.patch
if [ -n "$first_patch" ]; then
	git format-patch -q --no-signature --zero-commit -o "$DPF_TOP/patches" "$first_patch^..HEAD"
fi
ls "$DPF_TOP"/patches/*.patch 2>/dev/null || log "no patches to upstream files"
