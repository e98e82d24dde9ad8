#!/bin/bash
# Builds what the test VM boots for one kernel series, under test/kernel/cache/<S>/:
#   <the kernel .debs>       fetched with `apt-get download`, never installed
#   kernel/                  the .debs unpacked with dpkg-deb -x, plus modules.dep from busybox depmod
#   vmlinux                  the uncompressed kernel, booted directly through its PVH entry
#   initramfs.cpio.gz        static busybox, the modules kmux needs, and init.sh as /init
#   kver                     the kernel release, e.g. 6.1.0-42-amd64
#
#   build-guest.sh SERIES    6.1: Debian bookworm's kernel; 6.12: bookworm-backports';
#                            7.3: trixie-backports'
#
# Two package layouts: up to 6.12 linux-image-<kver> holds /boot/vmlinuz-<kver> and
# /lib/modules/<kver>/*.ko; from 7.x it is a meta package over linux-base-<kver>
# (modules.builtin), linux-binary-<kver> (/usr/lib/modules/<kver>/vmlinuz) and
# linux-modules-<kver> (*.ko.xz).
#
# Packages come through a private apt state in cache/apt/<suite>/, so this
# machine's apt sources are neither used nor changed and any Debian-like host
# works. KMUX_DEBIAN_MIRROR overrides the mirror (default deb.debian.org).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SERIES=${1:?usage: build-guest.sh SERIES (6.1, 6.12 or 7.3)}
case "$SERIES" in
  6.1) SUITE=bookworm ;;
  6.12) SUITE=bookworm-backports ;;
  7.3) SUITE=trixie-backports ;;
  *) echo "build-guest: unknown kernel series '$SERIES' (6.1, 6.12 or 7.3)" >&2; exit 2 ;;
esac
CACHE_ROOT=$(cd "$HERE/.." && pwd)/cache
CACHE=$CACHE_ROOT/$SERIES
mkdir -p "$CACHE"

# ---- the kernel packages, through a private apt state
APTDIR=$CACHE_ROOT/apt/$SUITE
mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$APTDIR/sources.list.d"
# debian-archive-keyring.gpg holds the bookworm and trixie archive keys alike (bookworm's 2023.3+deb12u2 and later).
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${KMUX_DEBIAN_MIRROR:-http://deb.debian.org/debian} $SUITE main" \
  > "$APTDIR/sources.list"
APT=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d"
     -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR" -o "Dir::Cache::archives=$APTDIR/archives"
     -o APT::Sandbox::User=root)
apt_update() {
  echo "build-guest: apt-get update ($SUITE, private state in $APTDIR)"
  apt-get "${APT[@]}" update
}
# linux-image-amd64 is the metapackage; it depends on the current versioned image, which
# is either the kernel itself or (7.x) a meta package over linux-{base,binary,modules}-<kver>.
current_packages() {
  local image
  image=$(apt-cache "${APT[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  case "$image" in
    linux-image-"$SERIES".*) ;;
    *) echo "build-guest: linux-image-amd64 in $SUITE depends on '${image:-nothing}', not a $SERIES kernel" >&2; exit 1 ;;
  esac
  local kver=${image#linux-image-}
  mapfile -t PKGS < <(apt-cache "${APT[@]}" depends "$image" \
    | awk -v k="$kver" '$1 ~ /Depends:$/ && ($2 == "linux-base-" k || $2 == "linux-binary-" k || $2 == "linux-modules-" k) {print $2}' | sort -u)
  [ ${#PKGS[@]} -gt 0 ] || PKGS=("$image")
}
cached_deb() { compgen -G "$CACHE/${1}_*.deb" | sort -V | tail -1 || true; }
download_missing() {
  local pkg missing=()
  for pkg in "${PKGS[@]}"; do [ -n "$(cached_deb "$pkg")" ] || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "build-guest: downloading ${missing[*]}"
  (cd "$CACHE" && apt-get "${APT[@]}" download "${missing[@]}")
}
compgen -G "$APTDIR/lists/*_Packages*" > /dev/null || apt_update
current_packages
# Lists from an earlier run may name packages the mirror has since replaced: refresh once.
download_missing || { apt_update && current_packages && download_missing; } \
  || { echo "build-guest: could not download ${PKGS[*]}" >&2; exit 1; }
DEBS=()
for pkg in "${PKGS[@]}"; do DEBS+=("$(basename "$(cached_deb "$pkg")")"); done
echo "build-guest: kernel $SERIES from ${DEBS[*]}"

KDIR=$CACHE/kernel
if [ "$(cat "$KDIR/.from" 2>/dev/null)" != "${DEBS[*]}" ]; then
  rm -rf "$KDIR"
  for deb in "${DEBS[@]}"; do dpkg-deb -x "$CACHE/$deb" "$KDIR"; done
  echo "${DEBS[*]}" > "$KDIR/.from"
fi
# /lib/modules up to 6.12, /usr/lib/modules from 7.x
MODROOT=$KDIR
[ -d "$KDIR/usr/lib/modules" ] && MODROOT=$KDIR/usr
KVER=$(ls "$MODROOT/lib/modules")
MODDIR=$MODROOT/lib/modules/$KVER
# The .deb leaves depmod to its postinst; busybox's depmod reads .ko and .ko.xz alike.
[ -f "$MODDIR/modules.dep" ] || busybox depmod -b "$MODROOT" "$KVER"

# ---- vmlinux: QEMU boots the uncompressed ELF through its PVH entry (Debian has
# CONFIG_PVH=y), which saves the in-guest decompression (~3 s of XZ under TCG).
# The compressed payload is located through the bzImage setup header:
# payload_offset (0x248) and payload_length (0x24c) count from the protected-mode
# code at (setup_sects + 1) * 512; the payload's last 4 bytes are its unpacked size.
BZ=$KDIR/boot/vmlinuz-$KVER
[ -f "$BZ" ] || BZ=$MODDIR/vmlinuz
if [ ! -s "$CACHE/vmlinux" ] || [ "$CACHE/vmlinux" -ot "$BZ" ]; then
  u8() { od -An -tu1 -j "$1" -N1 "$BZ" | tr -d ' '; }
  u32() { od -An -tu4 -j "$1" -N4 "$BZ" | tr -d ' '; }
  setup_sects=$(u8 $((0x1f1)))
  [ "$setup_sects" = 0 ] && setup_sects=4   # the boot protocol's meaning of 0
  offset=$(( (setup_sects + 1) * 512 + $(u32 $((0x248))) ))
  length=$(u32 $((0x24c)))
  case "$(od -An -tx1 -j "$offset" -N4 "$BZ" | tr -d ' \n')" in
    fd377a58) unpack=(xz -dc --single-stream) ;;   # 6.1
    28b52ffd) unpack=(zstd -dcq) ;;                # 6.12, 7.3
    *) echo "build-guest: unknown compression of the kernel payload in $BZ" >&2; exit 1 ;;
  esac
  # head closes the pipe early, so tail may die of SIGPIPE: judge the output, not the pipeline.
  (set +o pipefail; tail -c +$((offset + 1)) "$BZ" | head -c $((length - 4)) | "${unpack[@]}" > "$CACHE/vmlinux.tmp") || true
  # 0x12 = XEN_ELFNOTE_PHYS32_ENTRY, the PVH entry point QEMU looks for
  readelf -n "$CACHE/vmlinux.tmp" | grep -q 'Unknown note type: (0x00000012)\|PHYS32_ENTRY' \
    || { echo "build-guest: the unpacked kernel has no PVH entry note" >&2; exit 1; }
  mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
fi

# ---- initramfs: the modules to insmod at boot, dependencies first. tls.ko asks for
# its ciphers by name at run time (gcm(aes), rfc7539(chacha20,poly1305)), which
# modules.dep does not record, so those crypto modules are listed by hand. 7.x moved
# GHASH, ChaCha20 and Poly1305 into libraries (built in, or libchacha/libpoly1305,
# which modules.dep does know).
WANT=(virtio_pci 9pnet_virtio 9p overlay virtio_console tls kcm)
case "$SERIES" in
  6.*) WANT+=(gf128mul ghash-generic ghash-clmulni-intel ctr gcm aesni-intel
              chacha_generic chacha-x86_64 poly1305_generic poly1305-x86_64 chacha20poly1305) ;;
  *) WANT+=(ctr gcm aesni-intel chacha chacha20poly1305) ;;
esac
modname() { local b=${1##*/}; b=${b%.xz}; echo "${b%.ko}"; }
declare -A PATH_OF DEPS_OF BUILTIN SEEN
while IFS= read -r line; do
  m=$(modname "${line%%:*}")
  PATH_OF[$m]=${line%%:*}
  DEPS_OF[$m]=${line#*:}
done < "$MODDIR/modules.dep"
while IFS= read -r line; do BUILTIN[$(modname "$line")]=1; done < "$MODDIR/modules.builtin"
ORDER=()
visit() {
  local m=$1 dep
  [ -n "${SEEN[$m]:-}" ] && return
  SEEN[$m]=1
  if [ -z "${PATH_OF[$m]:-}" ]; then
    [ -n "${BUILTIN[$m]:-}" ] && return   # built into this kernel (6.12: virtio_pci, virtio_console, ctr)
    echo "build-guest: module $m is neither in modules.dep nor built in" >&2; exit 1
  fi
  for dep in ${DEPS_OF[$m]}; do visit "$(modname "$dep")"; done
  ORDER+=("${PATH_OF[$m]}")
}
for m in "${WANT[@]}"; do visit "$m"; done

ROOT=$CACHE/initramfs-root
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,dev,proc,sys,etc,host,newroot,scratch,run,lib/modules/"$KVER"}
cp /bin/busybox "$ROOT/bin/busybox"
for applet in $(busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$ROOT/bin/$applet"; done
# Uncompressed, so that insmod hands them straight to finit_module().
for p in "${ORDER[@]}"; do
  mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$p")"
  case "$p" in
    *.ko.xz) xz -dc "$MODDIR/$p" > "$ROOT/lib/modules/$KVER/${p%.xz}"; echo "${p%.xz}" ;;
    *) cp "$MODDIR/$p" "$ROOT/lib/modules/$KVER/$p"; echo "$p" ;;
  esac
done > "$ROOT/etc/modules.load"
install -m 755 "$HERE/init.sh" "$ROOT/init"
(cd "$ROOT" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2> /dev/null) | gzip -1 > "$CACHE/initramfs.cpio.gz.tmp"
mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
echo "$KVER" > "$CACHE/kver"
echo "build-guest: $KVER ready, modules: $(sed 's|.*/||; s|\.ko$||' "$ROOT/etc/modules.load" | tr '\n' ' ')"
