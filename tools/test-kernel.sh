#!/usr/bin/env bash
# Makes a small kernel + initramfs for `kiln boot` from Debian's packages, without root:
#   tools/test-kernel.sh [DIR]      (default: $KILN_TEST_KERNEL or /var/cache/kiln-it/kernel)
# DIR gets vmlinuz, initramfs.cpio.gz and VERSION. Debian's cloud kernel has ext4 built in but
# virtio as modules, so the initramfs is busybox-static plus the virtio modules (loaded in
# dependency order, the .deb has no modules.dep) and an /init that mounts the root disk and
# switch_roots into it. A second run with the same kernel package does nothing (cached).
set -euo pipefail
out="${1:-${KILN_TEST_KERNEL:-/var/cache/kiln-it/kernel}}"
arch="$(dpkg --print-architecture)"
meta="linux-image-cloud-$arch"
pkg="$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$pkg" ]; then
  echo "error: $meta: no kernel package found; run apt-get update first" >&2
  exit 2
fi
ver="$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')"
stamp="$pkg $ver"
if [ -f "$out/VERSION" ] && [ "$(cat "$out/VERSION")" = "$stamp" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.cpio.gz" ]; then
  echo "test kernel: $stamp (cached in $out)" >&2
  exit 0
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-kernel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" && mkdir -p "$work/dl" && chmod 777 "$work/dl"
(cd "$work/dl" && apt-get download -qq "$pkg" busybox-static >/dev/null)
dpkg -x "$work"/dl/linux-image-*.deb "$work/k"
dpkg -x "$work"/dl/busybox-static_*.deb "$work/b"
kver="${pkg#linux-image-}"
mods="$work/k/lib/modules/$kver/kernel"

r="$work/root"
mkdir -p "$r/bin" "$r/dev" "$r/proc" "$r/sys" "$r/newroot" "$r/lib/modules"
cp "$work/b/bin/busybox" "$r/bin/busybox"
order="virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
for m in $order; do
  f="$(find "$mods/drivers" -name "$m.ko" -print -quit)"
  [ -n "$f" ] || { echo "error: $pkg has no $m.ko" >&2; exit 3; }
  cp "$f" "$r/lib/modules/"
done
cat > "$r/init" <<INIT
#!/bin/busybox sh
# kiln test initramfs: load virtio, mount the root disk, switch_root into it.
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
for m in $order; do insmod /lib/modules/\$m.ko 2>/dev/null; done
root=/dev/vda; init=/sbin/init; mode=rw; fstype=ext4
for a in \$(cat /proc/cmdline); do
  case "\$a" in
    root=*) root="\${a#root=}" ;;
    init=*) init="\${a#init=}" ;;
    rootfstype=*) fstype="\${a#rootfstype=}" ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
  esac
done
i=0
while [ ! -b "\$root" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
if ! mount -t "\$fstype" -o "\$mode" "\$root" /newroot; then
  echo "kiln-initramfs: cannot mount \$root (\$fstype, \$mode)"
  exit 1
fi
if [ ! -x "/newroot\$init" ] && [ ! -L "/newroot\$init" ]; then
  echo "kiln-initramfs: no init at \$init in the root file system"
  exit 1
fi
umount /proc
if [ -d /newroot/dev ]; then mount --move /dev /newroot/dev; else umount /dev; fi
exec switch_root /newroot "\$init"
INIT
chmod 755 "$r/init" "$r/bin/busybox"
mkdir -p "$out"
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n > "$out/initramfs.cpio.gz.tmp"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$stamp" > "$out/VERSION"
echo "test kernel: $stamp in $out" >&2
