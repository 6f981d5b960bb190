#!/usr/bin/env bash
# rootfs.sh - the one Debian 12 guest root filesystem every lab tier starts from.
#
# debootstrap (minbase + the packages below, Debian archive only) -> a cached tarball.
# The nspawn host lab (test/lab) and the QEMU guests (test/vm) unpack it and add their own
# configuration, so a cold CI run pays for one debootstrap, not two.
#
# usage: test/image/rootfs.sh            prints the path of the cached tarball (builds it if missing)
# Env:   CHOPS_LAB_CACHE (default /var/cache/chops-lab)  MIRROR  SUITE (bookworm)
# Cache key: this script's content + suite + mirror + package list. Idempotent.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CHOPS_LAB_CACHE:-/var/cache/chops-lab}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}

# Guest packages: what the runbooks touch (systemd, sshd, sudo, LVM, partitioning, rsync,
# cron, logrotate) plus the real ClickHouse server, and a kernel for the QEMU tier.
PKGS=systemd,systemd-sysv,udev,dbus,openssh-server,sudo,lvm2,fdisk,parted,rsync,e2fsprogs
PKGS=$PKGS,cron,logrotate,procps,iproute2,less,curl,ca-certificates,zstd,kmod,util-linux
PKGS=$PKGS,clickhouse-server,clickhouse-client
# python3: Ansible modules need it on the target (bench:fanout compares against Ansible)
PKGS=$PKGS,python3
PKGS=$PKGS,linux-image-amd64,initramfs-tools

log() { printf '[rootfs %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs chroot)"

key=$( { cat "$0"; printf '%s|%s|%s' "$SUITE" "$MIRROR" "$PKGS"; } | sha256sum | cut -c1-16)
TARBALL=$CACHE/rootfs-$SUITE-$key.tar.zst
if [ -s "$TARBALL" ]; then echo "$TARBALL"; exit 0; fi

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v zstd >/dev/null || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  log "installing host packages: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$CACHE/debs"
# One builder at a time (CI and a developer may start two labs at once).
exec 9>"$CACHE/rootfs.lock"
flock 9
if [ -s "$TARBALL" ]; then echo "$TARBALL"; exit 0; fi

BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
cleanup() {
  # never rm -rf a tree with something mounted under it (debootstrap mounts proc/sys)
  local m
  for m in $(awk -v r="$BUILD" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$BUILD"
}
trap cleanup EXIT
t0=$(date +%s)
log "debootstrap $SUITE minbase + $PKGS (deb cache $CACHE/debs)"
if ! debootstrap --variant=minbase --include="$PKGS" --cache-dir="$CACHE/debs" \
    "$SUITE" "$BUILD/root" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1; then
  tail -30 "$BUILD/debootstrap.log" >&2
  die "debootstrap failed (see above)"
fi
chroot "$BUILD/root" apt-get clean
rm -rf "$BUILD/root/var/lib/apt/lists/"* "$BUILD/root/var/log/"*.log
# The packaged server must not start at boot: each tier decides whether its host runs ClickHouse.
rm -f "$BUILD/root/etc/systemd/system/multi-user.target.wants/clickhouse-server.service"
tar -C "$BUILD/root" --numeric-owner --xattrs --xattrs-include='*' -cf - . | zstd -q -T0 -3 > "$TARBALL.tmp"
mv -f "$TARBALL.tmp" "$TARBALL"
# Older tarballs (another package list or script version) are only needed to rebuild what was
# made from them; they cost ~250 MB each.
find "$CACHE" -maxdepth 1 -name 'rootfs-*.tar.zst' ! -name "${TARBALL##*/}" -mmin +60 -delete 2>/dev/null || true
log "rootfs cached in $(( $(date +%s) - t0 ))s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
echo "$TARBALL"
