# SPDX-License-Identifier: GPL-2.0
# Shared settings for the build and test scripts.  Sourced, never run.
#
# Everything that is downloaded or built lives under $DPF_CACHE, outside the
# clone, so that a fresh clone on the same machine reuses it and a new
# machine rebuilds it.

set -euo pipefail

DPF_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DPF_CACHE=${DPF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dev-pagemap-failure}
DPF_OUT=${DPF_OUT:-$DPF_TOP/out}

# The pinned kernel source: Debian's linux-source-7.3 from trixie-backports.
KSRC_PKG=linux-source-7.3
KSRC_VERSION=7.3.4-1~bpo13+1
KSRC_UPSTREAM=7.3.4
KSRC_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
# rasdaemon for the guest (scripts/initramfs.sh): Debian 13's build.
RASDAEMON_VERSION=0.8.3-1
RASDAEMON_SHA256=8c01d5189343aee16ad33de6a1409ccfb1f9e322a6134c90a10dc457833da25e

# The kernel tree: a git repository whose base commit (tag $KBASE_TAG) is the
# pristine source and whose HEAD is that plus this project (scripts/tree.sh).
KTREE=$DPF_CACHE/linux-$KSRC_UPSTREAM
KBASE_TAG=dpf-base
KBUILD_DIR=$DPF_CACHE/build			# $KBUILD_DIR/<variant> is O=

# Toolchain: the LLVM and bindgen versions the kernel's Rust support of 7.3 accepts (scripts/deps.sh installs them).
LLVM_SUFFIX=-19
BINDGEN_VERSION=0.73.2
export PATH=$HOME/.cargo/bin:$PATH

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf '\n!!! WARNING: %s\n\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# The first line of a kernel crash report in the console log FILE, without
# its timestamp; nothing (and success) if there is none. scripts/results.py
# judges a whole run; this only names why a guest died.
crash_line() {
	{ grep -aE -m1 'Oops|BUG[: ]|Kernel panic|general protection fault' "$1" || true; } |
		sed 's/^\[ *[0-9.]*\] //'
}

# Print the Debian archive URIs configured on this machine: packages are
# fetched from there, so that no host name is written into this repository.
debian_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' "$f"
	done
}

# apt_download_deb SUITE PACKAGE DIR: download the .deb of PACKAGE from
# Debian SUITE into DIR, through a private apt configuration (in
# $DPF_CACHE/download/apt-SUITE), leaving the system's apt state alone.
apt_download_deb() {
	local suite=$1 pkg=$2 dir=$3 uri apt_dir
	uri=$(debian_uri | grep -E '/debian/?$' | head -n1) ||
		die "no Debian archive in this machine's apt sources"
	[ -n "$uri" ] || die "no Debian archive in this machine's apt sources"
	apt_dir=$DPF_CACHE/download/apt-$suite
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$dir"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" \
		> "$apt_dir/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list"
		    -o "Dir::Etc::SourceParts=$apt_dir/parts"
		    -o "Dir::State::Lists=$apt_dir/lists"
		    -o "Dir::Cache=$apt_dir/cache")
	apt-get "${opts[@]}" update >&2 &&
		(cd "$dir" && apt-get "${opts[@]}" download "$pkg") >&2
}

# Install the packages and unpack the kernel source side by side: on a fresh
# machine each takes minutes and they need different resources (network
# and compiler, disk). The source only needs what Debian always has; if it
# fails anyway, it is fetched again afterwards.
deps_and_source() {
	local source_pid
	"$DPF_TOP/scripts/source.sh" >/dev/null &
	source_pid=$!
	"$DPF_TOP/scripts/deps.sh" ||
		{ kill "$source_pid" 2>/dev/null; die "installing the dependencies failed"; }
	if ! wait "$source_pid"; then
		warn "fetching the kernel source beside the packages failed; fetching it again"
		"$DPF_TOP/scripts/source.sh" >/dev/null
	fi
}
