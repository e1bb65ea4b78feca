#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest initramfs: busybox-static, ndctl, daxctl, xfsprogs,
# e2fsprogs' mkfs.ext4 and e2fsck, dmsetup, erofs-utils' mkfs.erofs (with
# their shared libraries), the kselftest programs of this project built
# statically, the guest scripts under scripts/guest/, and the modules of
# the modular debug kernel when it has been built (a monolithic kernel
# ignores them), with the harness's own lock-inversion module.
. "$(dirname "$0")/common.sh"

out=$DPF_OUT/initramfs.cpio.gz
root=$DPF_CACHE/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,run,var/tmp,root,dpf/selftests}

# busybox provides the shell and the basic tools.
bb=$(command -v busybox) || die "busybox-static is not installed (make deps)"
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || [ -x /bin/busybox ] || die "busybox is not static"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Real tools with their libraries.
tools="ndctl daxctl mkfs.xfs xfs_io xfs_db xfs_repair xfs_growfs mkfs.ext4 e2fsck dmsetup mkfs.erofs"
copy_with_libs() {	# copy_with_libs BIN [PATH]: BIN at PATH (default: BIN's path)
	local bin=$1 dest lib
	dest=$root${2:-$bin}
	mkdir -p "$(dirname "$dest")"
	cp -L "$bin" "$dest"
	ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
for tool in $tools; do
	path=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v "$tool") || die "$tool is not installed (make deps)"
	copy_with_libs "$path"
	# Make every tool reachable through /bin too; its libraries are in place.
	[ -e "$root/bin/$tool" ] || ln -sf "$path" "$root/bin/$tool"
done
# busybox's applets must not shadow the real tools.
for tool in $tools; do
	[ -L "$root/bin/$tool" ] && [ "$(readlink "$root/bin/$tool")" = busybox ] && rm "$root/bin/$tool"
done

# rasdaemon, the RAS tools' consumer of ras:memory_failure_event: Debian
# 13's build (pinned by sha256), which runs on this machine's libc with
# Debian 12's libtraceevent1 and libsqlite3-0, with the sqlite3 shell to
# read its database and the harness's preload that skips its waits for
# tracepoints the test kernel does not have (harness/rasdaemon_nowait/).
ras_deb=$DPF_CACHE/download/rasdaemon_${RASDAEMON_VERSION}_amd64.deb
if [ ! -f "$ras_deb" ] || [ "$(sha256sum < "$ras_deb" | cut -d' ' -f1)" != "$RASDAEMON_SHA256" ]; then
	rm -f "$ras_deb"
	log "downloading rasdaemon $RASDAEMON_VERSION by package name (private apt configuration)"
	apt_download_deb trixie "rasdaemon=$RASDAEMON_VERSION" "$DPF_CACHE/download" ||
		die "cannot download rasdaemon $RASDAEMON_VERSION"
fi
[ "$(sha256sum < "$ras_deb" | cut -d' ' -f1)" = "$RASDAEMON_SHA256" ] ||
	die "$ras_deb does not have the pinned sha256"
ras_x=$DPF_CACHE/rasdaemon-x
rm -rf "$ras_x"
dpkg-deb -x "$ras_deb" "$ras_x"
copy_with_libs "$ras_x/usr/sbin/rasdaemon" /usr/sbin/rasdaemon
rm -rf "$ras_x"
sqlite=$(command -v sqlite3) || die "sqlite3 is not installed (make deps)"
copy_with_libs "$sqlite"
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$root/dpf/rasdaemon_nowait.so" \
	"$DPF_TOP/harness/rasdaemon_nowait/nowait.c" || die "building harness/rasdaemon_nowait failed"

# The kselftests, built statically from the kernel tree.
sel=tools/testing/selftests/dev_pagemap_failure
mkdir -p "$DPF_CACHE/selftests"
make -s -C "$KTREE/$sel" OUTPUT="$DPF_CACHE/selftests" CC=gcc \
	CFLAGS="-static -O2 -Wall -Wextra -Werror -I$KTREE/tools/testing/selftests" \
	>/dev/null || die "building the kselftests failed"
cp "$DPF_CACHE"/selftests/* "$root/dpf/selftests/"
cp "$KTREE/$sel"/*.sh "$root/dpf/selftests/"
cp "$KTREE/tools/testing/selftests/kselftest/ktap_helpers.sh" "$root/dpf/selftests/"
cp "$DPF_TOP"/scripts/guest/* "$root/dpf/"

# The modules of the modular debug kernel, laid out by modules_install
# (with depmod's modules.dep for busybox's modprobe), stripped.
debug=$KBUILD_DIR/debug
if grep -qx 'CONFIG_MODULES=y' "$debug/.config" 2>/dev/null && [ -f "$debug/modules.order" ]; then
	make -s -C "$KTREE" O="$debug" LLVM="$LLVM_SUFFIX" INSTALL_MOD_PATH="$root" \
		INSTALL_MOD_STRIP=1 DEPMOD=/usr/sbin/depmod modules_install >/dev/null ||
		die "installing the debug kernel's modules failed"
	log "initramfs: modules of $(cat "$debug/include/config/kernel.release")"
	# The harness's own lock inversion (harness/lockdep_inject/), loaded
	# only with dpf.inject_lockdep_bug=1: lockdep must turn the run red.
	inject=$DPF_CACHE/lockdep_inject
	rm -rf "$inject"
	cp -r "$DPF_TOP/harness/lockdep_inject" "$inject"
	make -s -C "$KTREE" O="$debug" LLVM="$LLVM_SUFFIX" M="$inject" modules >/dev/null ||
		die "building harness/lockdep_inject against the debug kernel failed"
	cp "$inject/lockdep_inject.ko" "$root/dpf/"
fi
mv "$root/dpf/init" "$root/init"
chmod +x "$root/init" "$root"/dpf/*.sh "$root"/dpf/selftests/*

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
log "initramfs: $out ($(du -h "$out" | cut -f1))"
