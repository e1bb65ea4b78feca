#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure and build one kernel variant that boots: kernel.sh VARIANT
#
# VARIANT is release or debug (see config/); the bzImage (and the modules,
# if the variant has them) is built and linked into out/VARIANT/. The
# compile-only configurations (production, norust) are built by
# scripts/bisect-check.sh.
#
# The configuration is allnoconfig + config/base.config + config/guest.config
# (what no guest uses, off) + config/<variant>.config.
# After olddefconfig every option a fragment asks for is checked, and the
# build fails with the list of options that did not stick (a dependency that
# is off silently drops an option otherwise).
. "$(dirname "$0")/common.sh"

variant=${1:?usage: kernel.sh VARIANT}
[ $# -eq 1 ] || die "usage: kernel.sh VARIANT (release or debug)"
frag=$DPF_TOP/config/$variant.config
[ -f "$frag" ] || die "no config fragment $frag"

"$DPF_TOP/scripts/tree.sh"

build=$KBUILD_DIR/$variant
mkdir -p "$build"
# Depend mode: ccache takes the headers from the compiler's -MMD output
# instead of running the preprocessor once more for every object, which made
# a build with an empty cache (every fresh machine) a quarter slower.
export CCACHE_DIR=$DPF_CACHE/ccache CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G} CCACHE_DEPEND=1
export DPF_CLANG=clang$LLVM_SUFFIX
# CLIPPY=1 (debug, what make check builds): every Rust object is compiled by
# clippy-driver, so clippy's lints are part of the build; scripts/check.sh
# requires a silent build. The release kernel runs the same code: linting it
# twice would only make make demo and make bench slower on a fresh machine.
clippy=()
[ "$variant" = debug ] && clippy=(CLIPPY=1)
kmake=(make -C "$KTREE" O="$build" LLVM="$LLVM_SUFFIX" CC="$DPF_TOP/scripts/ccache-clang"
       "${clippy[@]}" -j"$(($(nproc) + 1))")

# Generate the configuration aside and install it only if it changed, so an
# unchanged configuration does not trigger a rebuild.
cfg=$DPF_CACHE/config.$variant
rm -rf "$cfg"
mkdir -p "$cfg"
"${kmake[@]}" -s O="$cfg" allnoconfig >/dev/null
(cd "$KTREE" && scripts/kconfig/merge_config.sh -m -O "$cfg" "$cfg/.config" \
	"$DPF_TOP/config/base.config" "$DPF_TOP/config/guest.config" "$frag" >/dev/null)
"${kmake[@]}" -s O="$cfg" olddefconfig >/dev/null

# What the fragments ask for, the variant's overriding base.config's.
declare -A wanted=()
while IFS= read -r line; do
	wanted[${line%%=*}]=${line#*=}
done < <(grep -h '^CONFIG_' "$DPF_TOP/config/base.config" "$DPF_TOP/config/guest.config" "$frag")
missing=()
for opt in "${!wanted[@]}"; do
	want=${wanted[$opt]}
	got=$(sed -n "s/^$opt=//p" "$cfg/.config")
	if [ "$want" = n ]; then
		[ -z "$got" ] || missing+=("$opt=n (got $got)")
	elif [ "$got" != "$want" ]; then
		missing+=("$opt=$want (got ${got:-unset})")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	printf 'error: these options of the %s configuration did not stick:\n' "$variant" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

if ! cmp -s "$cfg/.config" "$build/.config"; then
	cp "$cfg/.config" "$build/.config"
	log "$variant: configuration updated"
fi
rm -rf "$cfg"

log "$variant: building in $build"
"${kmake[@]}" olddefconfig >/dev/null
kimage=(bzImage)
grep -qx 'CONFIG_MODULES=y' "$build/.config" && kimage+=(modules)
"${kmake[@]}" "${kimage[@]}"

# The bzImage must carry the vmlinux just linked (see scripts/ccache-clang);
# grep -c reads to the end, so the pipe never breaks under pipefail.
uts=$(sed -n 's/^#define UTS_VERSION "\(.*\)"$/\1/p' "$build/include/generated/utsversion.h")
"$KTREE/scripts/extract-vmlinux" "$build/arch/x86/boot/bzImage" 2>/dev/null |
	grep -acF "$uts" >/dev/null ||
	die "$variant: $build/arch/x86/boot/bzImage does not contain the kernel just built ($uts)"

mkdir -p "$DPF_OUT/$variant"
ln -sf "$build/arch/x86/boot/bzImage" "$DPF_OUT/$variant/bzImage"
ln -sf "$build/vmlinux" "$DPF_OUT/$variant/vmlinux"
ln -sf "$build/.config" "$DPF_OUT/$variant/.config"
log "$variant: $DPF_OUT/$variant/bzImage ($(git -C "$KTREE" describe --always dpf))"
