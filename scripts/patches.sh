#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Export the whole project as one git format-patch series against the
# pristine source, into out/patches/, prove it applies with git am to a
# fresh checkout of the base, and that every prefix of it builds
# (scripts/bisect-check.sh).
. "$(dirname "$0")/common.sh"

"$DPF_TOP/scripts/tree.sh"
dest=$DPF_OUT/patches
rm -rf "$dest"
mkdir -p "$dest"
git -C "$KTREE" -c user.name="dpf developers" -c user.email=dpf@localhost \
	format-patch -q --no-signature --zero-commit --cover-letter \
	-o "$dest" "$KBASE_TAG..dpf"
# The cover letter's subject and blurb come from patches/cover-letter.txt.
cover=$dest/0000-cover-letter.patch
subject=$(head -n1 "$DPF_TOP/patches/cover-letter.txt")
python3 - "$cover" "$subject" "$DPF_TOP/patches/cover-letter.txt" <<'PY'
import sys
path, subject, blurb_file = sys.argv[1:]
blurb = open(blurb_file).read().split("\n", 2)[2].rstrip("\n")
text = open(path).read().replace("*** SUBJECT HERE ***", subject)
open(path, "w").write(text.replace("*** BLURB HERE ***", blurb))
PY
log "series: $(ls "$dest" | wc -l) files in $dest"

check=$DPF_CACHE/am-check
rm -rf "$check"
git -C "$KTREE" worktree prune
git -C "$KTREE" worktree add -q --detach "$check" "$KBASE_TAG"
mapfile -t series < <(ls "$dest"/*.patch | grep -v /0000-cover-letter.patch)
git -C "$check" -c user.name=dpf -c user.email=dpf@localhost am -q "${series[@]}" ||
	die "the series does not apply to pristine $KSRC_UPSTREAM with git am"
git -C "$check" diff --quiet dpf -- ||
	die "git am result differs from the kernel tree"
log "git am applies the ${#series[@]} patches to pristine $KSRC_UPSTREAM; the result equals the kernel tree"
git -C "$KTREE" worktree remove --force "$check"

# Each standalone fix at the head of the series applies alone to the
# pristine base, as a maintainer (or a stable tree) that takes only that one
# would; scripts/bisect-check.sh builds each alone without Rust.
nfix=$(ls "$DPF_TOP"/patches/fixes/*.patch 2>/dev/null | wc -l)
for ((i = 0; i < nfix; i++)); do
	git -C "$KTREE" worktree add -q --detach "$check" "$KBASE_TAG"
	git -C "$check" -c user.name=dpf -c user.email=dpf@localhost am -q "${series[$i]}" ||
		die "$(basename "${series[$i]}") does not apply alone to pristine $KSRC_UPSTREAM"
	git -C "$KTREE" worktree remove --force "$check"
done
[ "$nfix" -eq 0 ] || log "each of the first $nfix patches applies alone to pristine $KSRC_UPSTREAM"
"$DPF_TOP/scripts/bisect-check.sh"
