#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what the build and the tests need, idempotently: Debian 12
# packages, rustup's rust-src component and a pinned bindgen-cli. Prints what
# it installs; does nothing when everything is present.
. "$(dirname "$0")/common.sh"

PACKAGES=(
	# kernel build, with Rust (clang, lld and libclang for bindgen)
	build-essential flex bison bc cpio kmod libelf-dev libssl-dev dwarves ccache
	clang-19 lld-19 llvm-19 libclang-19-dev
	# guest and tests
	qemu-system-x86 busybox-static ndctl daxctl xfsprogs dmsetup erofs-utils
	python3 file python3-ply python3-git
	# rasdaemon in the guest (Debian 13's build, scripts/initramfs.sh) and
	# the shell that reads its database
	libtraceevent1 libsqlite3-0 sqlite3
	# make bench: the plot
	gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "need root to install packages: ${missing[*]}"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >&2
fi

command -v rustup >/dev/null || die "rustup is not installed; install a Rust toolchain with rustup first"
command -v rustc >/dev/null || die "no rustc on PATH"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	log "installing rustup component rust-src"
	rustup component add rust-src >&2
fi
for c in rustfmt clippy; do
	if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
		log "installing rustup component $c"
		rustup component add "$c" >&2
	fi
done

if [ "$(bindgen --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --quiet "bindgen-cli@$BINDGEN_VERSION" >&2
fi
