#!/usr/bin/env bash
# LVM2's cmirrord, built from Debian bookworm's lvm2 source package, for the lab's
# side-by-side benchmark (bench.ts; docs/KERNEL-LAB.md). Output: $OUT/cmirrord and the
# libdevmapper it links ($OUT/lib). Needs root for apt (build dependencies, a deb-src entry).
set -euo pipefail
OUT=${1:-${MIRRORPLANE_LAB_CACHE:-$HOME/.cache/mirrorplane-kernel-lab}/cmirrord}
if [ -x "$OUT/cmirrord" ]; then echo "$OUT/cmirrord"; exit 0; fi
if ! grep -rqs "^Types: deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
  cat > /etc/apt/sources.list.d/mirrorplane-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  build-essential dpkg-dev libcpg-dev libcorosync-common-dev libaio-dev libblkid-dev \
  pkg-config libudev-dev corosync >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source --download-only lvm2 >/dev/null 2>&1
dpkg-source -x --no-check lvm2_*.dsc src >/dev/null
cd src
./configure --enable-cmirrord --disable-udev_sync --disable-readline --without-systemd \
  --disable-selinux >/dev/null
make -j2 -C libdm >/dev/null
make -j2 -C daemons/cmirrord >/dev/null
mkdir -p "$OUT/lib"
cp daemons/cmirrord/cmirrord "$OUT/cmirrord.tmp"
cp -a libdm/ioctl/libdevmapper.so* "$OUT/lib/"
mv "$OUT/cmirrord.tmp" "$OUT/cmirrord"
echo "$OUT/cmirrord"
