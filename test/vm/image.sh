#!/usr/bin/env bash
# image.sh - the QEMU guest image of the VM test tier, built from the shared rootfs tarball
# (test/image/rootfs.sh), booted once, and its running state saved so guests start in seconds.
#
# usage: test/vm/image.sh [--mem MiB]      (run as root; prints one JSON line describing the image)
#
# Cache: $CHOPS_LAB_CACHE/vm-<key>/ (default /var/cache/chops-lab), key = sha256 of this script
#        (without its comment lines),
#        machine.ts + vmctl.ts (hardware + snapshot code), the rootfs tarball name, the
#        `qemu-system-x86_64 --version` line, CHOPS_VM_EXTRA_PKGS and CHOPS_VM_ROOT_SIZE.
#        Anything missing is (re)built automatically; one builder at a time (flock).
#   base.qcow2           ext4 root fs (no partition table, root=/dev/vda), read-only
#   vmlinuz initrd.img   guest kernel + small initramfs (virtio + ext4 only)
#   id_ed25519(.pub)     client key for root and for user `ops` (passwordless sudo)
#   ssh_host_ed25519_key.pub  the pinned host key of every guest (guests.ts writes a strict
#                        known_hosts from it; the guests offer no other host key type)
#   accel.<host kernel>  cached accelerator probe result (kvm only if it really boots)
#   snap-<accel>-m<MiB>/ state.zst (saved RAM+devices) + root.qcow2 (its disk, over base.qcow2)
#                        + info.json; one per guest memory size, made on first use
#
# Guest: Debian 12, systemd, sshd, sudo, lvm2, fdisk, parted, rsync, e2fsprogs, cron,
#   logrotate, clickhouse-server/-client 18.16 installed but NOT enabled (a test enables it
#   with `systemctl enable --now clickhouse-server`), eth0 = 10.0.2.15/24 via systemd-networkd
#   (QEMU slirp, restrict=on: no way out), /dev/vdb = empty 4 GiB disk (serial chops-data).
# Env: CHOPS_LAB_CACHE, CHOPS_VM_MEM (1024), CHOPS_VM_ACCEL (auto|kvm|tcg), CHOPS_VM_CACHE_DAYS (7:
#      other vm-* caches unused that long are deleted),
#      CHOPS_VM_EXTRA_PKGS="pkg1 pkg2" (extra Debian packages installed into the image; part of
#      the cache key, so each set gets its own image), CHOPS_VM_ROOT_SIZE (4G)
#
# Measured on the 2-core Debian 12 builder (QEMU 7.2, TCG: /dev/kvm exists but cannot boot the
# guest kernel), idle machine unless noted:
#   fully cold (empty cache, debs downloaded): 146 s = rootfs.sh debootstrap 89 s
#     + image from the tarball 13 s (unpack, configure, initramfs, mke2fs -d, qcow2)
#     + KVM probe 10 s (fails -> tcg, cached) + cold boot 26 s + save state 1.5 s (55 MB zstd)
#   rootfs tarball already cached: ~57 s.  Extra packages (CHOPS_VM_EXTRA_PKGS=jq): +14 s.
#   warm cache (this script only checks): < 1 s
#   warm guest start (restore + ssh + clock/hostname/RNG fix): 1 guest 2.9 s, 2 guests 3.2 s,
#     3 guests 4.7 s, 2 guests + 2 hot-plugged disks each 5.2 s; ~12 s for 2 on a loaded host
#     (load 9). Reboot to new boot_id over ssh: 29-39 s. `systemctl enable --now
#     clickhouse-server` to answering SELECT: 11 s (15 s loaded). Fresh ssh command: ~0.8 s.
#   test/vm/vm.test.ts (8 tests, 3 reboots, one 60 s reboot timeout): 3 min 15 s (loaded host).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CHOPS_LAB_CACHE:-/var/cache/chops-lab}
MEM=${CHOPS_VM_MEM:-1024}
ROOT_SIZE=${CHOPS_VM_ROOT_SIZE:-4G}
EXTRA_PKGS=$(echo "${CHOPS_VM_EXTRA_PKGS:-}" | tr ',' ' ' | xargs -n1 2>/dev/null | sort -u | xargs || true)
while [ $# -gt 0 ]; do
  case $1 in
    --mem) MEM=$2; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $MEM =~ ^[0-9]+$ ]] || { echo "image.sh: --mem must be MiB" >&2; exit 2; }

log() { printf '[vm-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (unpacks a root filesystem with device nodes, chroot)"

# ---- host tools (Debian packages only; a fresh CI machine has none of them) -----------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
command -v setpriv >/dev/null && command -v flock >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  log "installing host packages: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v node >/dev/null || die "node is needed (the snapshot step runs test/vm/vmctl.ts)"
[ -e "$REPO/node_modules/tsx" ] || die "run npm ci first (tsx is needed)"

TARBALL=$(bash "$REPO/test/image/rootfs.sh")
[ -s "$TARBALL" ] || die "rootfs.sh gave no tarball"
QEMU_VERSION=$(qemu-system-x86_64 --version | head -1)
# (comment lines of this script are left out: editing the documentation does not rebuild)
KEY=$( { grep -v '^[[:space:]]*#' "$0"; cat "$HERE/machine.ts" "$HERE/vmctl.ts"
         printf '%s|%s|%s|%s' "$(basename "$TARBALL")" "$QEMU_VERSION" "$EXTRA_PKGS" "$ROOT_SIZE"; } \
       | sha256sum | cut -c1-16)
VM=$CACHE/vm-$KEY
mkdir -p "$CACHE"
exec 8>"$CACHE/vm-$KEY.lock"
flock 8

# ---- 1. the image ------------------------------------------------------------------------------
build_image() {
  local B R t0 t KVER
  B=$(mktemp -d "$CACHE/vm-$KEY.build.XXXXXX")
  R=$B/root
  # never rm -rf a tree with something mounted under it (the chroot mounts live in a private
  # mount namespace and vanish with it, this is belt and braces)
  trap 'for m in $(awk -v r="$B" "index(\$2, r) == 1 {print \$2}" /proc/self/mounts | sort -r); do umount -l "$m" || true; done; rm -rf --one-file-system "$B"' EXIT
  t0=$(date +%s)
  log "unpacking $TARBALL"
  mkdir -p "$R"
  zstd -q -dc "$TARBALL" | tar -C "$R" --numeric-owner --xattrs --xattrs-include='*' -xpf -

  if [ -n "$EXTRA_PKGS" ]; then
    t=$(date +%s)
    log "installing extra packages into the image: $EXTRA_PKGS"
    cp -L /etc/resolv.conf "$R/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2086
    unshare --mount --propagation private -- sh -ec '
      R=$1; shift
      mount -t proc proc "$R/proc"
      chroot "$R" apt-get -o Acquire::Retries=3 update -qq
      DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get install -y -qq --no-install-recommends "$@"
      chroot "$R" apt-get clean' sh "$R" $EXTRA_PKGS >"$B/extra-pkgs.log" 2>&1 \
      || { tail -30 "$B/extra-pkgs.log" >&2; die "installing $EXTRA_PKGS failed"; }
    rm -f "$R/usr/sbin/policy-rc.d"; : > "$R/etc/resolv.conf"
    rm -rf "$R/var/lib/apt/lists/"*
    log "extra packages installed in $(( $(date +%s) - t ))s"
  fi

  log "configuring the guest for QEMU"
  echo chops-vm > "$R/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 chops-vm\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
  printf '# <fs>    <mount> <type> <options>                 <dump> <pass>\n/dev/vda  /       ext4   defaults,errors=remount-ro 0      1\n' > "$R/etc/fstab"

  # network: QEMU user-mode networking (slirp) -> static 10.0.2.15, gateway 10.0.2.2
  mkdir -p "$R/etc/systemd/network" "$R/etc/systemd/system/multi-user.target.wants" "$R/etc/systemd/system/sockets.target.wants"
  printf '[Match]\nName=eth0\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
    > "$R/etc/systemd/network/10-eth0.network"
  ln -sf /lib/systemd/system/systemd-networkd.service "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  ln -sf /lib/systemd/system/systemd-networkd.socket "$R/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
  : > "$R/etc/resolv.conf"
  # nothing that waits for a network that does not exist or wakes up in the middle of a test
  local u
  for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
           apt-daily.service apt-daily-upgrade.service e2scrub_all.timer e2scrub_reap.service \
           fstrim.timer dpkg-db-backup.timer systemd-firstboot.service getty@tty1.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  mkdir -p "$R/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' > "$R/etc/systemd/journald.conf.d/chops-vm.conf"

  # ssh: our client key for root and ops; one pinned ed25519 host key, nothing else offered
  ssh-keygen -q -t ed25519 -N '' -C chops-vm-client -f "$B/id_ed25519"
  rm -f "$R"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C chops-vm-host -f "$R/etc/ssh/ssh_host_ed25519_key"
  cp "$R/etc/ssh/ssh_host_ed25519_key.pub" "$B/ssh_host_ed25519_key.pub"
  mkdir -p "$R/etc/ssh/sshd_config.d"
  printf '%s\n' 'HostKey /etc/ssh/ssh_host_ed25519_key' 'PermitRootLogin prohibit-password' \
    'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'UseDNS no' \
    'MaxStartups 100:30:200' 'MaxSessions 50' > "$R/etc/ssh/sshd_config.d/chops-vm.conf"
  install -d -m 700 "$R/root/.ssh"
  install -m 600 "$B/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
  chroot "$R" useradd -m -s /bin/bash -G sudo ops
  local ouid ogid
  ouid=$(chroot "$R" id -u ops); ogid=$(chroot "$R" id -g ops)
  install -d -m 700 -o "$ouid" -g "$ogid" "$R/home/ops/.ssh"
  install -m 600 -o "$ouid" -g "$ogid" "$B/id_ed25519.pub" "$R/home/ops/.ssh/authorized_keys"
  echo 'ops ALL=(ALL) NOPASSWD:ALL' > "$R/etc/sudoers.d/ops"; chmod 440 "$R/etc/sudoers.d/ops"

  # clickhouse-server stays installed but disabled (rootfs.sh removed its wants link already)
  rm -f "$R/etc/systemd/system/multi-user.target.wants/clickhouse-server.service"

  # kernel: drop drivers a virtio guest never needs, then a small initramfs (virtio + ext4)
  KVER=$(basename "$(ls -d "$R"/usr/lib/modules/* | head -1)")
  local K=$R/usr/lib/modules/$KVER/kernel
  rm -rf "$K/sound" "$K/drivers/gpu" "$K/drivers/media" "$K/drivers/net/wireless" \
         "$K/drivers/net/ethernet" "$K/drivers/infiniband" "$K/drivers/iio" "$K/drivers/staging" \
         "$K/drivers/bluetooth" "$K/drivers/isdn" "$K/drivers/comedi" "$K/drivers/usb" \
         "$K/drivers/hid" "$K/drivers/input/touchscreen" "$K/drivers/input/joystick" \
         "$K/net/wireless" "$K/net/mac80211" "$K/net/bluetooth" "$K/drivers/net/can" \
         "$K/drivers/thunderbolt" "$K/drivers/mmc" "$K/drivers/mtd" "$K/drivers/video/fbdev"
  rm -rf "$R/usr/lib/firmware"
  chroot "$R" depmod -a "$KVER"
  printf 'MODULES=list\nCOMPRESS=zstd\n' > "$R/etc/initramfs-tools/conf.d/chops-vm.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 crc32c_generic > "$R/etc/initramfs-tools/modules"
  chroot "$R" update-initramfs -u -k "$KVER" >"$B/initramfs.log" 2>&1 \
    || { cat "$B/initramfs.log" >&2; die "update-initramfs failed"; }
  cp "$R/boot/vmlinuz-$KVER" "$B/vmlinuz"
  cp "$R/boot/initrd.img-$KVER" "$B/initrd.img"
  rm -rf "$R/tmp/"* "$R/var/tmp/"* "$R/var/cache/apt/"*.bin

  log "creating the ext4 image ($ROOT_SIZE, mke2fs -d: no loop device, no mount)"
  mke2fs -q -F -t ext4 -L chops-root -d "$R" "$B/root.raw" "$ROOT_SIZE" >&2
  qemu-img convert -q -f raw -O qcow2 "$B/root.raw" "$B/base.qcow2"
  rm -f "$B/root.raw"
  chmod a-w "$B/base.qcow2"
  {
    echo "built=$(date -Is)"
    echo "rootfs=$(basename "$TARBALL")"
    echo "kernel=$KVER"
    echo "qemu=$QEMU_VERSION"
    echo "extra_pkgs=$EXTRA_PKGS"
    echo "image_seconds=$(( $(date +%s) - t0 ))"
    echo "base_qcow2=$(du -h "$B/base.qcow2" | cut -f1) (virtual $ROOT_SIZE)"
  } > "$B/build-info.txt"
  rm -rf --one-file-system "$R"
  rm -rf "$VM"
  mkdir -p "$VM"
  mv "$B"/base.qcow2 "$B"/vmlinuz "$B"/initrd.img "$B"/id_ed25519 "$B"/id_ed25519.pub \
     "$B"/ssh_host_ed25519_key.pub "$B"/build-info.txt "$VM/"
  touch "$VM/image.done"
  rm -rf --one-file-system "$B"
  trap - EXIT
  log "image built in $(( $(date +%s) - t0 ))s: $VM"
}
[ -f "$VM/image.done" ] || build_image

# ---- 2. accelerator: KVM only if it really boots the guest kernel (cached per host kernel) ----
case ${CHOPS_VM_ACCEL:-auto} in
  kvm|tcg) ACCEL=$CHOPS_VM_ACCEL ;;
  auto)
    probe=$VM/accel.$(uname -r | tr -c 'A-Za-z0-9._-' _)
    if [ ! -s "$probe" ]; then
      log "probing KVM (falls back to TCG)"
      (cd "$REPO" && node --import tsx "$HERE/vmctl.ts" probe-accel "$VM") > "$probe.tmp"
      mv -f "$probe.tmp" "$probe"
      log "accelerator: $(cat "$probe")"
    fi
    ACCEL=$(cat "$probe") ;;
  *) die "CHOPS_VM_ACCEL must be auto, kvm or tcg" ;;
esac

# ---- 3. the booted state for this accelerator + memory size --------------------------------------
SNAP=$VM/snap-$ACCEL-m$MEM
if [ ! -f "$SNAP/done" ]; then
  t=$(date +%s)
  log "saving a booted guest ($ACCEL, $MEM MiB) -> $SNAP"
  rm -rf "$SNAP" "$SNAP.tmp"
  (cd "$REPO" && node --import tsx "$HERE/vmctl.ts" snapshot "$VM" "$ACCEL" "$MEM" "$SNAP.tmp") \
    || { rm -rf "$SNAP.tmp"; die "snapshot failed"; }
  chmod a-w "$SNAP.tmp/root.qcow2"
  mv "$SNAP.tmp" "$SNAP"
  touch "$SNAP/done"
  log "snapshot ready in $(( $(date +%s) - t ))s"
fi

# ---- 4. housekeeping: every change of these scripts makes a new vm-<key> (~0.6 GB) -------------
touch "$VM/last-used"
for d in "$CACHE"/vm-*; do
  [ -d "$d" ] && [ "$d" != "$VM" ] || continue
  case $d in
    *.build.*|*.tmp) [ -n "$(find "$d" -maxdepth 0 -mmin +1440)" ] && rm -rf --one-file-system "$d" ;;   # crashed builds
    *) ref=$d/last-used; [ -e "$ref" ] || ref=$d
       [ -n "$(find "$ref" -maxdepth 0 -mtime +"${CHOPS_VM_CACHE_DAYS:-7}")" ] || continue
       # only if no other builder/user holds it
       ( flock -n 7 || exit 0; rm -rf --one-file-system "$d"; log "pruned image cache unused for ${CHOPS_VM_CACHE_DAYS:-7}+ days: $d" ) 7>"$d.lock"
       ;;
  esac
done

printf '{"dir":"%s","accel":"%s","memMiB":%s,"kernel":"%s","initrd":"%s","identityFile":"%s","hostKeyFile":"%s","state":"%s","root":"%s"}\n' \
  "$VM" "$ACCEL" "$MEM" "$VM/vmlinuz" "$VM/initrd.img" "$VM/id_ed25519" "$VM/ssh_host_ed25519_key.pub" \
  "$SNAP/state.zst" "$SNAP/root.qcow2"
