#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide the pristine kernel source as the base commit (tag dpf-base) of the
# git repository $KTREE.
#
# Uses the pinned .deb from ../shared/kernel/ when present (sha256 checked),
# otherwise downloads linux-source-7.3 by package name through a private apt
# configuration whose archive URI is taken from the machine's own apt
# sources, so no host name is written into this repository and the system's
# apt state is left alone.
. "$(dirname "$0")/common.sh"

stamp=$KTREE/.git/dpf-source
if [ -f "$stamp" ]; then
	log "kernel source: $(cat "$stamp")"
	exit 0
fi

dl=$DPF_CACHE/download
mkdir -p "$dl"

apt_download() {
	log "downloading $KSRC_PKG by package name (private apt configuration)"
	apt_download_deb trixie-backports "$KSRC_PKG" "$dl"
}

deb=
for f in "$DPF_TOP"/../shared/kernel/${KSRC_PKG}_*.deb; do
	[ -f "$f" ] || continue
	if [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$KSRC_SHA256" ]; then
		deb=$f
		log "using pinned $f (sha256 ok)"
	else
		warn "$f does not have the pinned sha256; ignoring it"
	fi
done
if [ -z "$deb" ]; then
	apt_download
	deb=$(ls -t "$dl"/${KSRC_PKG}_*.deb | head -n1)
fi

version=$(dpkg-deb -f "$deb" Version)
if [ "$version" != "$KSRC_VERSION" ]; then
	warn "kernel source is $KSRC_PKG $version, NOT the pinned $KSRC_VERSION.
!!! The patch series and test results are only known to hold for $KSRC_VERSION."
fi

log "extracting $deb"
tmp=$DPF_CACHE/src/.extract.$$
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./usr/src/$KSRC_PKG.tar.xz"
tar -x -C "$tmp" -f "$tmp/usr/src/$KSRC_PKG.tar.xz"
rm -rf "$KTREE"
mv "$tmp/$KSRC_PKG" "$KTREE"
rm -rf "$tmp"

kv=$(make -s -C "$KTREE" kernelversion 2>/dev/null)
[ "$kv" = "$KSRC_UPSTREAM" ] || warn "kernel source reports version $kv, expected $KSRC_UPSTREAM"
log "importing the pristine source into git"
git -C "$KTREE" init -q -b pristine
# -f: the tarball is imported exactly, even files its .gitignore names.
git -C "$KTREE" add -A -f
git -C "$KTREE" -c user.name=dpf -c user.email=dpf@localhost \
	commit -q -m "Linux $kv ($KSRC_PKG $version, pristine)"
git -C "$KTREE" tag -f "$KBASE_TAG" >/dev/null
echo "$KSRC_PKG $version (upstream $kv) sha256 $(sha256sum < "$deb" | cut -d' ' -f1)" > "$stamp"
log "kernel source: $(cat "$stamp")"
