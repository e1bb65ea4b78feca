#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Lay the project over the pristine kernel source in $KTREE.
#
# The result is a commit series on top of the pristine base (tag dpf-base),
# one commit per line of patches/series, in that order:
#   fixes/*.patch      a fix to upstream files that stands on its own (a
#                      maintainer can take it without the rest); these come
#                      first;
#   new-files/*.txt    a commit that adds the project's new files (each spec
#                      names the paths it adds on its "Files:" lines) and
#                      grows the project's MAINTAINERS entry
#                      (patches/MAINTAINERS.entry) to cover every path added
#                      so far; an "Edits:" line names a diff (in
#                      patches/new-files/) of upstream files that goes into
#                      the same commit: the Kconfig and Makefile lines that
#                      build the new files come with them;
#   *.patch            an edit to upstream files.
# The series is built with git plumbing in a private index, so the working
# tree is only touched where the new HEAD differs from the old one, and an
# unchanged file keeps its timestamp: kbuild rebuilds only what changed.
# `make patches` exports exactly this series with git format-patch.
. "$(dirname "$0")/common.sh"

[ -f "$KTREE/.git/dpf-source" ] || die "no kernel source; run 'make source' first"
cd "$KTREE"

# The directories of this repository that hold files at their kernel path.
OVERLAY_ROOTS="Documentation drivers fs include mm rust tools"

# Cargo.lock pins the host test crate's dependencies for this repository's
# `cargo test --locked`; it is not part of the kernel series.
overlay_files() {
	env -u GIT_INDEX_FILE git -C "$DPF_TOP" ls-files --cached --others --exclude-standard -- $OVERLAY_ROOTS |
		grep -v '/Cargo\.lock$' |
		while read -r f; do [ -f "$DPF_TOP/$f" ] && echo "$f"; done | sort
}

# Do not overwrite work somebody did by hand in the kernel tree.
if ! git diff --quiet HEAD || ! git diff --cached --quiet HEAD; then
	git status --short | head -20 >&2
	die "$KTREE has uncommitted changes; commit or discard them (they belong in this repo, not there)"
fi

export GIT_INDEX_FILE=$KTREE/.git/dpf-index
export GIT_COMMITTER_NAME="dev_pagemap_failure tree" GIT_COMMITTER_EMAIL="dpf@localhost"
export GIT_COMMITTER_DATE="@0 +0000"	# same input, same commit ids
git read-tree "$KBASE_TAG"
head=$(git rev-parse "$KBASE_TAG^{commit}")

maint=$(mktemp)
git show "$KBASE_TAG:MAINTAINERS" > "$maint"
covered=()
all_files=$(mktemp)
claimed=$(mktemp)
msg=$(mktemp)
info=$(mktemp)
body=$(mktemp)
trap 'rm -f "$maint" "$all_files" "$claimed" "$msg" "$info" "$body" "$KTREE/.git/dpf-index"' EXIT
overlay_files > "$all_files"

# One patch in git format-patch form, applied to the index and committed.
apply_patch() {
	local p=$1
	[ -f "$p" ] || return 0
	git mailinfo "$body" /dev/null < "$p" > "$info"
	git apply --cached --whitespace=error-all "$p" || die "$(basename "$p") does not apply"
	subject=$(sed -n 's/^Subject: //p' "$info")
	{ echo "$subject"; echo; cat "$body"; } > "$msg"
	tree=$(git write-tree)
	head=$(GIT_AUTHOR_NAME=$(sed -n 's/^Author: //p' "$info") \
	       GIT_AUTHOR_EMAIL=$(sed -n 's/^Email: //p' "$info") \
	       GIT_AUTHOR_DATE=$(sed -n 's/^Date: //p' "$info") \
	       git commit-tree "$tree" -p "$head" -F "$msg")
}

# A commit of new files: those its spec names, with its edits, if any.
#    Format: "Author:", "Files: path..." and "Edits: file.diff" lines, then
#    "---", then the commit message.
add_new_files() {
	local spec=$1 author edits n=0 path f blob mode
	author=$(sed -n '/^---$/q; s/^Author: //p' "$spec")
	[ -n "$author" ] || die "$spec: no 'Author:' line"
	for path in $(sed -n '/^---$/q; s/^Files: //p' "$spec"); do
		while read -r f; do
			case "$f" in "$path"|"$path"/*) ;; *) continue ;; esac
			grep -qxF "$f" "$claimed" && die "$f is named by two specs in patches/new-files/"
			git cat-file -e "$KBASE_TAG:$f" 2>/dev/null &&
				die "$f exists upstream; change it with a patch in patches/, not as a new file"
			blob=$(git hash-object -w "$DPF_TOP/$f")
			mode=100644
			[ -x "$DPF_TOP/$f" ] && mode=100755
			git update-index --add --cacheinfo "$mode,$blob,$f"
			echo "$f" >> "$claimed"
			n=$((n + 1))
		done < "$all_files"
	done
	[ "$n" -gt 0 ] || die "$spec adds no file"
	edits=$(sed -n '/^---$/q; s/^Edits: //p' "$spec")
	if [ -n "$edits" ]; then
		git apply --cached --whitespace=error-all "$DPF_TOP/patches/new-files/$edits" ||
			die "$edits (named by $(basename "$spec")) does not apply"
	fi
	covered+=($(sed -n '/^---$/q; s/^Files: //p' "$spec"))
	(cd "$DPF_TOP" && "$DPF_TOP/scripts/maintainers_entry.py" "$maint" \
		"$DPF_TOP/patches/MAINTAINERS.entry" "${covered[@]}")
	git update-index --cacheinfo "100644,$(git hash-object -w "$maint"),MAINTAINERS"
	sed '1,/^---$/d' "$spec" > "$msg"
	tree=$(git write-tree)
	head=$(GIT_AUTHOR_NAME="${author% <*}" GIT_AUTHOR_EMAIL="$(echo "$author" | sed 's/.*<\(.*\)>.*/\1/')" \
	       GIT_AUTHOR_DATE="@0 +0000" git commit-tree "$tree" -p "$head" -F "$msg")
}

[ -f "$DPF_TOP/patches/series" ] || die "no patches/series"
fixes_done=
while read -r entry; do
	case "$entry" in ''|'#'*) continue ;; esac
	[ -f "$DPF_TOP/patches/$entry" ] || die "patches/series names patches/$entry, which does not exist"
	case "$entry" in
	fixes/*.patch)
		[ -z "$fixes_done" ] || die "patches/series: $entry comes after a patch that is not a fix"
		apply_patch "$DPF_TOP/patches/$entry" ;;
	new-files/*.txt) fixes_done=1; add_new_files "$DPF_TOP/patches/$entry" ;;
	*.patch) fixes_done=1; apply_patch "$DPF_TOP/patches/$entry" ;;
	*) die "patches/series: $entry is not a fix, a new-files spec or a patch" ;;
	esac
done < "$DPF_TOP/patches/series"
for f in "$DPF_TOP"/patches/fixes/*.patch "$DPF_TOP"/patches/*.patch "$DPF_TOP"/patches/new-files/*.txt; do
	[ -f "$f" ] || continue
	grep -qxF "${f#"$DPF_TOP"/patches/}" "$DPF_TOP/patches/series" ||
		die "patches/series does not name ${f#"$DPF_TOP"/}"
done

unclaimed=$(comm -23 "$all_files" <(sort "$claimed"))
[ -z "$unclaimed" ] || die "files not named by any patches/new-files/*.txt:
$unclaimed"

unset GIT_INDEX_FILE
old=$(git rev-parse HEAD)
if [ "$old" != "$head" ]; then
	# Only files that differ between the old and the new HEAD are written.
	git checkout -q -B dpf "$head"
fi
git update-ref refs/heads/dpf "$head"
log "kernel tree: $KTREE at $(git rev-parse --short HEAD) ($(git rev-list --count "$KBASE_TAG..HEAD") commits on $KBASE_TAG)"
