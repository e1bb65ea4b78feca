#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# After editing the series in the kernel tree (commit there with git commit
# -a, or git add -f: Debian's tarball ignores everything; reorder or split
# with git rebase -i dpf-base), write it back: one commit per line of
# patches/series, in order. A patch entry gets its commit in git
# format-patch form; a new-files spec gets its commit's message and, in the
# diff its "Edits:" line names, the commit's changes to upstream files. The
# new files themselves are this repository's files at their kernel paths:
# copy a new file you changed in the kernel tree back by hand.
#
# Usage: refresh-patches.sh [REF]   (default: HEAD of the kernel tree)
. "$(dirname "$0")/common.sh"

ref=${1:-HEAD}
cd "$KTREE"
mapfile -t commits < <(git rev-list --reverse "$KBASE_TAG..$ref")
mapfile -t entries < <(grep -vE '^(#|$)' "$DPF_TOP/patches/series")
[ ${#commits[@]} -eq ${#entries[@]} ] ||
	die "$ref has ${#commits[@]} commits on $KBASE_TAG, patches/series names ${#entries[@]}"
for i in "${!entries[@]}"; do
	entry=${entries[$i]} c=${commits[$i]}
	case "$entry" in
	*.patch)
		git format-patch -1 --stdout --no-signature --zero-commit "$c" > "$DPF_TOP/patches/$entry" ;;
	new-files/*.txt)
		spec=$DPF_TOP/patches/$entry
		header=$(sed '/^---$/q' "$spec")
		excludes=(":(exclude)MAINTAINERS")
		for path in $(sed -n '/^---$/q; s/^Files: //p' "$spec"); do
			excludes+=(":(exclude)$path")
		done
		edits=$(sed -n '/^---$/q; s/^Edits: //p' "$spec")
		if [ -n "$edits" ]; then
			git diff "$c^" "$c" -- . "${excludes[@]}" > "$DPF_TOP/patches/new-files/$edits"
		elif ! git diff --quiet "$c^" "$c" -- . "${excludes[@]}"; then
			die "$entry: its commit changes upstream files; give the spec an 'Edits:' line"
		fi
		{ echo "$header"; git log -1 --format=%B "$c" | sed '${/^$/d}'; } > "$spec" ;;
	esac
done
log "patches/: ${#entries[@]} commits written back from $ref"
