#!/usr/bin/env bash
# setup.sh - make a fresh Debian 12 machine (as root) ready to build chops and run its labs:
# Debian packages via apt-get (only those missing), npm packages via `npm ci`, then the build.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (the labs need namespaces, nspawn and QEMU)"; exit 2; }

# command -> Debian package
declare -A NEED=(
  [ssh]=openssh-client [ssh-keygen]=openssh-client [sshd]=openssh-server
  [systemd-nspawn]=systemd-container [debootstrap]=debootstrap [zstd]=zstd
  [java]=default-jre-headless [curl]=curl [setfattr]=attr [ip]=iproute2
  [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [python3]=python3
  [clickhouse-client]=clickhouse-client
  [rsync]=rsync   # move-data's copy (synthetic-tree unit tests run it locally)
  [shellcheck]=shellcheck   # unit test: the rendered backup agent is clean under shellcheck
  [dot]=graphviz [chromium]=chromium
  [dpkg-scanpackages]=dpkg-dev   # rolling-upgrade lab test: the local package repository's index
)
missing=()
for cmd in "${!NEED[@]}"; do
  if [ "$cmd" = sshd ]; then [ -x /usr/sbin/sshd ] && continue; fi
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
[ -r /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
[ -r /usr/share/java/slf4j-simple.jar ] || missing+=(libslf4j-java)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Each lab container runs its own systemd, which needs inotify instances: the default of 128
# per user runs out at a few dozen containers ("Failed to allocate manager object").
[ "$(sysctl -n fs.inotify.max_user_instances)" -ge 8192 ] || sysctl -qw fs.inotify.max_user_instances=8192
[ "$(sysctl -n fs.inotify.max_user_watches)" -ge 1048576 ] || sysctl -qw fs.inotify.max_user_watches=1048576

# npm packages: reinstall only when package-lock.json changed since the last install
stamp=node_modules/.chops-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
log "build (typecheck + bundle)"
npm run --silent build
log "ready: node bin/chops.js --help"
