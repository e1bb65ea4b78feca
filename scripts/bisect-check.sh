#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Every prefix of the series builds: maintainers bisect through a series,
# and a patch that only compiles with a later one is rejected.
#
# For each commit of dpf-base..dpf that touches a file the kernel compiles
# (or a Kconfig or Makefile), check that commit out in a worktree of its own
# and build, in the production configuration (config/base.config +
# config/production.config: the feature on, without its test interfaces),
# every object that the series touches up to and including that commit. A
# Rust file of the core stands for the core's object, one of the kernel
# crate (or the bindings) for rust/kernel.o, built at the commits that
# change it; an object that its directory's Makefile does not name yet is
# not part of the kernel at that commit and is skipped. The standalone fixes at the head of the series
# (patches/fixes/) are built once more without Rust (config/norust.config),
# as prefixes and then each alone on the pristine base, as a maintainer who
# takes only them, or only one of them, would.
#
# The head of the series is built every time, verified before or not, and
# is what make check's compile-only tests judge: its build tree then holds
# the core's object in the production configuration, and every C object of
# the series that a kernel without the feature compiles is built once more
# without Rust, the configuration of a distribution kernel without the
# feature (the feature depends on RUST, and scripts/check.sh fails if any C
# file of the series tests CONFIG_RUST, so a kernel with Rust and without
# the feature compiles the same C).
#
# Single-object builds with ccache, in build trees kept across runs, so
# that only what changed between commits is compiled again. A tree is
# configured again only when what its configuration is made of (every
# Kconfig file, the fragments, the toolchain) changed since it was last
# configured. A commit already verified with the same configuration and
# script is not built again: its stamp names the content the builds read
# (the tree without tools/testing/selftests/ and Documentation/, and the
# objects), so a change to a selftest does not rebuild every later commit.
. "$(dirname "$0")/common.sh"

src=$DPF_CACHE/bisect-src
build=$KBUILD_DIR/bisect
norust=$KBUILD_DIR/bisect-norust
logs=${1:-$DPF_OUT/bisect}
nfix=$(ls "$DPF_TOP"/patches/fixes/*.patch 2>/dev/null | wc -l)
verified=$DPF_CACHE/bisect-verified
mkdir -p "$build" "$norust" "$logs" "$verified"
inputs=$(cat "$DPF_TOP"/config/{base,production,norust}.config "$0" | sha256sum | cut -c1-16)
export CCACHE_DIR=$DPF_CACHE/ccache CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G} CCACHE_DEPEND=1
export DPF_CLANG=clang$LLVM_SUFFIX
kmake=(make -C "$src" LLVM="$LLVM_SUFFIX" CC="$DPF_TOP/scripts/ccache-clang"
       -j"$(($(nproc) + 1))")

# configure O FRAGMENT: allnoconfig + base.config + FRAGMENT in build tree O,
# unless O was configured from the same Kconfig files, fragments and
# toolchain (a third of a commit's time went into configuring).
configure() {
	local made_of
	made_of=$({ git -C "$src" ls-tree -r HEAD | grep -E $'\t(.*/)?Kconfig[^/]*$'
		    cat "$DPF_TOP/config/base.config" "$2"
		    "$DPF_CLANG" --version; rustc --version; } | sha256sum | cut -c1-16)
	[ -f "$1/.config" ] && [ "$(cat "$1/.dpf-configured" 2>/dev/null)" = "$made_of" ] &&
		return 0
	rm -f "$1/.dpf-configured"
	"${kmake[@]}" O="$1" -s allnoconfig &&
	(cd "$src" && scripts/kconfig/merge_config.sh -m -O "$1" "$1/.config" \
		"$DPF_TOP/config/base.config" "$2") &&
	"${kmake[@]}" O="$1" -s olddefconfig &&
	echo "$made_of" > "$1/.dpf-configured"
}

# Whether the tree at this commit builds OBJECT: its directory's Makefile
# names it (kbuild compiles any source file given as a single target, but
# a file the Makefiles do not name yet is not part of the kernel).
in_build() {
	local dir=${1%/*} name=${1##*/}
	case "$1" in
	*/../*) dir=${1%%/../*} name=../${1#*/../} ;;
	esac
	grep -qF "$name" "$src/$dir/Makefile" 2>/dev/null
}

# build O LOG OBJECT...: build each object in O that is part of the kernel
# at this commit; records built and skipped. One make for all of them (each
# make runs kbuild's prepare checks again, two seconds with nothing to do);
# only if that fails, one make per object, to name the ones that fail.
build() {
	local o out=$1 log=$2 wanted=()
	shift 2
	for o in "$@"; do
		if in_build "$o"; then
			wanted+=("$o")
		else
			skipped+=("$o")
		fi
	done
	[ ${#wanted[@]} -gt 0 ] || return 0
	if "${kmake[@]}" O="$out" "${wanted[@]}" >> "$log" 2>&1; then
		built+=("${wanted[@]}")
		return 0
	fi
	for o in "${wanted[@]}"; do
		if "${kmake[@]}" O="$out" "$o" >> "$log" 2>&1; then
			built+=("$o")
		else
			echo "  $n: $o does not build at \"$subject\" (log: $log)"
			failed=$((failed + 1))
		fi
	done
}

# no_warnings LOG WHAT: a compiler warning or error in LOG is a failure,
# said as WHAT with the first of them.
no_warnings() {
	grep -qE '(warning|error):' "$1" || return 0
	echo "  $2 (log: $1)"
	grep -E -A4 '(warning|error):' "$1" | head -n 20
	failed=$((failed + 1))
}

if [ ! -d "$src/.git" ] && [ ! -f "$src/.git" ]; then
	git -C "$KTREE" worktree prune
	rm -rf "$src"
	git -C "$KTREE" worktree add -q --detach "$src" "$KBASE_TAG"
fi

# The object a changed file stands for, if the kernel compiles it.
object_of() {
	case "$1" in
	tools/*|Documentation/*) ;;
	mm/dev_pagemap_failure.rs|mm/dev_pagemap_failure/*.rs) echo mm/dev_pagemap_failure.o ;;
	rust/kernel/*.rs|rust/bindings/*) echo rust/kernel.o ;;
	*.c) echo "${1%.c}.o" ;;
	esac
}

# Objects that only a kernel with the feature compiles: the Rust core, and
# the C whose Makefile lines depend on the feature.
feature_only='^(mm/dev_pagemap_failure\.o|mm/dev_pagemap_failure_helpers\.o|drivers/md/dm-dax-failure\.o)$'

objects=() plain=()
failed=0 checked=0
n=0
head=$(git -C "$KTREE" rev-parse dpf)
for commit in $(git -C "$KTREE" rev-list --reverse "$KBASE_TAG..dpf"); do
	n=$((n + 1))
	subject=$(git -C "$KTREE" log -1 --format=%s "$commit")
	added=0
	once=()
	while read -r f; do
		o=$(object_of "$f")
		[ -n "$o" ] || continue
		added=1
		# The kernel crate is built at the commits that change it only:
		# every later build of the core compiles it again anyway.
		if [ "$o" = rust/kernel.o ]; then
			once=("$o")
			continue
		fi
		case " ${objects[*]} " in *" $o "*) ;; *) objects+=("$o") ;; esac
	done < <(git -C "$KTREE" diff-tree --no-commit-id --name-only -r "$commit")
	# Kconfig or Makefile changes make more of the touched objects buildable.
	git -C "$KTREE" diff-tree --no-commit-id --name-only -r "$commit" |
		grep -qE '(^|/)(Kconfig|Makefile)$' && added=1
	[ "$added" = 1 ] || [ "$commit" = "$head" ] || continue
	# What the builds read: the commit's tree without the selftests and the
	# documentation (no kernel object is built from them), and the objects.
	content=$({ git -C "$KTREE" ls-tree -r "$commit" |
			grep -vE $'\t(tools/testing/selftests|Documentation)/'
		    echo "${objects[*]} ${once[*]}"; } | sha256sum | cut -c1-16)
	stamp=$verified/$content-$inputs-$n-$nfix
	if [ -e "$stamp" ] && [ "$commit" != "$head" ]; then
		checked=$((checked + 1))
		echo "  $n: verified before at \"$subject\""
		continue
	fi
	started=$SECONDS
	git -C "$src" checkout -q --detach "$commit"
	log="$logs/$(printf '%02d' "$n").log"
	# Configuring talks about overridden options; only the builds are judged.
	: > "$log"
	if ! configure "$build" "$DPF_TOP/config/production.config" > "$log.config" 2>&1; then
		echo "  $n: configuring failed (log: $log.config)"
		failed=$((failed + 1))
		continue
	fi
	built=() skipped=()
	build "$build" "$log" "${objects[@]}" "${once[@]}"
	if [ "$n" -le "$nfix" ]; then
		# A standalone fix: alone on pristine 7.3.4, and without Rust.
		configure "$norust" "$DPF_TOP/config/norust.config" >> "$log.config" 2>&1 &&
			build "$norust" "$log" "${objects[@]}" ||
			{ echo "  $n: the fix does not build without Rust (log: $log)"; failed=$((failed + 1)); }
	elif [ "$commit" = "$head" ]; then
		# The whole series in a kernel without Rust, so without the feature.
		mapfile -t plain < <(printf '%s\n' "${objects[@]}" | grep -Ev "$feature_only")
		configure "$norust" "$DPF_TOP/config/norust.config" >> "$log.config" 2>&1 &&
			build "$norust" "$log" "${plain[@]}" ||
			{ echo "  $n: the series does not build without Rust (log: $log)"; failed=$((failed + 1)); }
	fi
	no_warnings "$log" "$n: warnings at \"$subject\""
	checked=$((checked + 1))
	[ "$failed" -eq 0 ] && touch "$stamp"
	alone=
	[ "$n" -le "$nfix" ] && alone=", also without Rust"
	[ "$commit" = "$head" ] && alone=", and ${#plain[@]} of them again without Rust"
	echo "  $n: ${#built[@]} builds of the touched objects pass at \"$subject\"$alone${skipped:+ (not in the build yet: ${skipped[*]})}, $((SECONDS - started)) s"
done
# Feature off = pristine + the standalone fixes + the removal sweep: every
# object of the series that a kernel without Rust builds is compiled at the
# last standalone fix and at the head of the series (worktrees of their own),
# and the two builds may differ only in the functions
# config/feature-off.allowed names (scripts/objdiff.py compares the machine
# code function by function). Both are built with __LINE__ defined to 0: a
# function that only moved down the file (ext4_error() and WARN() pass their
# line) is not a change.
if [ "$nfix" -gt 0 ] && [ ${#plain[@]} -gt 0 ]; then
	ref_commit=$(git -C "$KTREE" rev-list --reverse "$KBASE_TAG..dpf" | sed -n "${nfix}p")
	log="$logs/feature-off.log"
	: > "$log"
	saved_src=$src
	before=$failed
	for side in ref head; do
		src=$DPF_CACHE/feature-off-$side
		commit=$ref_commit
		[ "$side" = head ] && commit=$head
		if [ ! -d "$src/.git" ] && [ ! -f "$src/.git" ]; then
			git -C "$KTREE" worktree prune
			rm -rf "$src"
			git -C "$KTREE" worktree add -q --detach "$src" "$commit"
		fi
		[ "$(git -C "$src" rev-parse HEAD)" = "$commit" ] ||
			git -C "$src" checkout -q -f --detach "$commit"
		kmake[2]=$src
		mkdir -p "$KBUILD_DIR/feature-off-$side"
		built=() skipped=()
		if configure "$KBUILD_DIR/feature-off-$side" "$DPF_TOP/config/norust.config" \
				> "$log.config" 2>&1; then
			kmake+=(KCFLAGS="-D__LINE__=0 -Wno-builtin-macro-redefined")
			build "$KBUILD_DIR/feature-off-$side" "$log" "${plain[@]}" ||
				{ echo "  feature off: the $side does not build (log: $log)"; failed=$((failed + 1)); }
			unset 'kmake[${#kmake[@]}-1]'
		else
			echo "  feature off: configuring the $side failed (log: $log.config)"
			failed=$((failed + 1))
		fi
	done
	src=$saved_src
	kmake[2]=$src
	allowed=$(grep -v '^#' "$DPF_TOP/config/feature-off.allowed" | grep . || true)
	unexpected=() compared=0
	for o in "${plain[@]}"; do
		ref_o=$KBUILD_DIR/feature-off-ref/$o head_o=$KBUILD_DIR/feature-off-head/$o
		[ -f "$ref_o" ] && [ -f "$head_o" ] || continue
		compared=$((compared + 1))
		while read -r what fn; do
			[ -n "$fn" ] || continue
			grep -qxF "$o $fn" <<< "$allowed" || unexpected+=("$o: $what $fn")
		done < <(python3 "$DPF_TOP/scripts/objdiff.py" "$ref_o" "$head_o")
	done
	if [ ${#unexpected[@]} -gt 0 ]; then
		echo "  feature off: code that differs from pristine + fixes, not in config/feature-off.allowed:"
		printf '    %s\n' "${unexpected[@]}"
		failed=$((failed + 1))
	elif [ "$failed" -eq "$before" ]; then
		echo "  feature off: $compared objects without Rust differ from pristine + fixes only in the allowed functions"
	fi
fi

# Each standalone fix alone: applied by itself to the pristine base and its
# objects built without Rust, as a stable tree that takes only that fix
# would (the loop above builds them as prefixes of the series).
n=0
for commit in $(git -C "$KTREE" rev-list --reverse "$KBASE_TAG..dpf" | head -n "$nfix"); do
	n=$((n + 1))
	subject=$(git -C "$KTREE" log -1 --format=%s "$commit")
	alone_objects=()
	while read -r f; do
		o=$(object_of "$f")
		[ -n "$o" ] && alone_objects+=("$o")
	done < <(git -C "$KTREE" diff-tree --no-commit-id --name-only -r "$commit")
	content=$({ git -C "$KTREE" diff "$commit^" "$commit"; echo "${alone_objects[*]}"; } |
		  sha256sum | cut -c1-16)
	stamp=$verified/alone-$content-$inputs
	if [ -e "$stamp" ]; then
		echo "  fix $n alone: verified before at \"$subject\""
		continue
	fi
	started=$SECONDS
	log="$logs/fix-$n-alone.log"
	: > "$log"
	git -C "$src" checkout -q -f --detach "$KBASE_TAG"
	if ! git -C "$KTREE" diff "$commit^" "$commit" | git -C "$src" apply >> "$log" 2>&1; then
		echo "  fix $n does not apply alone to pristine $KSRC_UPSTREAM (log: $log)"
		failed=$((failed + 1))
		continue
	fi
	built=() skipped=()
	before=$failed
	configure "$norust" "$DPF_TOP/config/norust.config" > "$log.config" 2>&1 &&
		build "$norust" "$log" "${alone_objects[@]}" ||
		{ echo "  fix $n alone does not build without Rust (log: $log)"; failed=$((failed + 1)); }
	no_warnings "$log" "fix $n alone: warnings"
	git -C "$src" checkout -q -f --detach "$KBASE_TAG"
	[ "$failed" -eq "$before" ] && touch "$stamp"
	echo "  fix $n alone on pristine $KSRC_UPSTREAM: ${#built[@]} objects build without Rust at \"$subject\", $((SECONDS - started)) s"
done
git -C "$src" checkout -q -f --detach dpf 2>/dev/null || true
echo "bisect: $checked commits built, $nfix fixes built alone, $failed failures, $SECONDS s"
[ "$failed" -eq 0 ]
