#!/bin/bash
# Installs, with apt, the host tools that building and booting the test VM needs,
# when they are missing. Each package is checked by a file it provides, so a
# machine that already has them (or the same tools from elsewhere) is left alone.
set -euo pipefail

# package -> a file that proves it is usable
declare -A PROVIDES=(
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [busybox-static]=/bin/busybox          # static: it is PID 1 of the initramfs
  [xz-utils]=/usr/bin/xz                 # 6.1's bzImage payload
  [zstd]=/usr/bin/zstd                   # 6.12's and 7.3's bzImage payload
  [binutils]=/usr/bin/readelf            # checks the extracted vmlinux has a PVH entry
  [debian-archive-keyring]=/usr/share/keyrings/debian-archive-keyring.gpg  # private backports apt state
)

missing=()
for pkg in "${!PROVIDES[@]}"; do
  [ -e "${PROVIDES[$pkg]}" ] || missing+=("$pkg")
done
# busybox (dynamic) also installs /bin/busybox but cannot run without a libc in the initramfs
if [ -e /bin/busybox ] && LC_ALL=C readelf -l /bin/busybox 2>/dev/null | grep -q 'Requesting program interpreter'; then
  missing+=(busybox-static)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "kernel suite: installing host packages: ${missing[*]}"
[ "$(id -u)" = 0 ] || { echo "kernel suite: need root to apt-get install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"; }
# a fresh machine may have no package lists yet: update once and retry
apt_install || { apt-get -o DPkg::Lock::Timeout=600 update && apt_install; }
