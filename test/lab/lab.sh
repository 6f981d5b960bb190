#!/usr/bin/env bash
# lab.sh - chops's multi-host test lab: N systemd-nspawn containers on one machine.
#
#   test/lab/lab.sh up     --name NAME --hosts N [--clickhouse] [--net PREFIX]
#   test/lab/lab.sh down   --name NAME          (idempotent; safe after a half-failed up)
#   test/lab/lab.sh status --name NAME
#   test/lab/lab.sh exec   --name NAME HOST [--] CMD...   (runs `sh -c CMD` inside the container
#                                                          via nsenter; works even with sshd stopped)
#   test/lab/lab.sh list                                  (labs that have state on this machine)
#
# Every host is a container booting the Debian 12 rootfs of test/image/rootfs.sh with real
# systemd as PID 1, real sshd, cron, logrotate, journald, and (ClickHouse labs) the Debian
# clickhouse-server 18.16 started by the container's systemd. Container root = overlayfs
# (lower: a shared unpacked+configured base in $CHOPS_LAB_CACHE/base-KEY, upper: per host),
# so every `up` starts from a fresh state. nspawn's private /dev has no block devices, CAP_MKNOD
# is dropped and /sys/block, /sys/class/block, /sys/dev/block are hidden: lab hosts cannot see or
# touch the real disks (`lsblk` prints nothing).
#
# Networking (decided by --net):
#   127.x.y  (default for plain labs) host network namespace shared; host i = 127.x.y.(10+i),
#            sshd on :22. Cheapest; many labs at once on different 127.x.y.
#   other    (default 10.231.N for --clickhouse) every container has its OWN network namespace
#            (veth into a per-lab bridge); host i = PREFIX.(10+i), the machine side of the
#            bridge is PREFIX.1 (ZooKeeper listens there on :2181). Needed for ClickHouse:
#            18.16 decides "this replica is me" (distributed DDL, Distributed inserts) by
#            comparing the cluster's addresses with its own interface addresses + tcp_port; with
#            a shared network namespace every node would be "local" or none would, and
#            ON CLUSTER DDL would hang. With own namespaces all ports are the defaults.
#
# Output in $CHOPS_LAB_ROOT/NAME (default /var/tmp/chops-lab/NAME):
#   id_ed25519(.pub)  lab client key (root and ops accept it; key-only logins)
#   known_hosts       strict, one line per host (each container has its own ed25519 host key)
#   ssh_config        Host h1..hN / ch1..ch4 for debugging: ssh -F DIR/ssh_config h1
#   inventory.yml     chops inventory (cluster "lab"), state.dir = DIR/state
#   hosts.json        [{name,address,port,hostKey,hostKeyLine,shard,replica}]
#   lab.env           NAME/NET/MODE/HOSTS/... for scripts
#   ch_ops_password   password of the ClickHouse user "ops" (ClickHouse labs)
#   hosts/hI/{upper,work,root,nspawn.pid,nspawn.log}, zk/ (ZooKeeper, ClickHouse labs)
# Users inside: root and ops (sudo NOPASSWD), both key-only, clean dotfiles, TZ=UTC.
# ClickHouse users: default (no password, 127.0.0.0/8 + lab net only), ops (password in
# ch_ops_password). Ports 8123 http / 9000 tcp / 9009 interserver on the host's own address.
#
# Env: CHOPS_LAB_ROOT (/var/tmp/chops-lab)  CHOPS_LAB_CACHE (/var/cache/chops-lab)
#      CHOPS_LAB_KEEP_ON_FAIL=1 (do not tear down after a failed up, to debug)
#      CHOPS_LAB_WAIT (readiness deadline, seconds, default 120)
#
# Measured 2026-11-21 on the 2-core Debian 12 dev box (24 GiB, ext4, cgroup v1 hybrid, no
# systemd as PID 1). Other sessions shared the 2 cores (load 4-14), so ranges are wide:
#   rootfs tarball from nothing (test/image/rootfs.sh, debootstrap) .. 88 s (once, cached)
#   base unpack + configure (once per rootfs/base change) ......... 2.8-4.8 s
#   up --hosts 3 (warm base) ....................................... 1.1 s (3.9 s incl. base)
#   up --hosts 20 (warm base) ...................................... 6.3 s idle, 11-20 s at load 4-13
#   20-host lab memory: 140 processes, sum of VmRSS 995 MiB, private (anon+shmem) 146 MiB
#   ssh to a lab host, fresh connection ............................ 0.2-0.4 s
#   up --hosts 4 --clickhouse (ZooKeeper + 4 servers + schema) ...... 5.0-6.0 s (7.4 s incl. base);
#       ssh ready at ~3.1 s, all servers answer with ZooKeeper at ~4.1 s, ON CLUSTER DDL ~0.8 s
#   lab.test.ts (3-host lab + ClickHouse lab, up/tests/down) ........ 18 s
#   down: 3 hosts 0.3-0.4 s, 20 hosts 1.5-4.4 s, ClickHouse lab 1.6-5.7 s
set -euo pipefail
umask 022
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROOT=${CHOPS_LAB_ROOT:-/var/tmp/chops-lab}
CACHE=${CHOPS_LAB_CACHE:-/var/cache/chops-lab}
WAIT=${CHOPS_LAB_WAIT:-120}
CH_OPS_PASSWORD=chops-lab-ops

log() { printf '[lab %s %s] %s\n' "${NAME:-}" "$(date +%H:%M:%S.%2N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

usage() { sed -n '2,10p' "$0" >&2; exit 2; }

# ------------------------------------------------------------------ arguments
CMD=${1:-}; [ -n "$CMD" ] || usage; shift
NAME="" HOSTS="" CLICKHOUSE=0 NET=""
EXEC_ARGS=()
while (($#)); do
  case $1 in
    --name) NAME=${2:?}; shift ;;
    --hosts) HOSTS=${2:?}; shift ;;
    --clickhouse) CLICKHOUSE=1 ;;
    --net) NET=${2:?}; shift ;;
    -h|--help) usage ;;
    --) shift; EXEC_ARGS+=("$@"); break ;;
    *) if [ "$CMD" = exec ]; then EXEC_ARGS+=("$1"); else die "unknown argument: $1"; fi ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || die "must run as root (nspawn, overlay mounts, network namespaces)"
if [ "$CMD" != list ]; then
  [[ $NAME =~ ^[a-z][a-z0-9-]{0,23}$ ]] || die "--name must match ^[a-z][a-z0-9-]{0,23}\$ (got '$NAME')"
fi
DIR=$ROOT/$NAME
LABID=$(printf '%s' "$NAME" | sha256sum | cut -c1-5)   # short id for interface names
BR=cl${LABID}br

# ------------------------------------------------------------------ small helpers
# pid_is PID PATTERN: process PID exists and its cmdline contains PATTERN (guards against reuse)
pid_is() { [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
stop_pid() { # stop_pid PID PATTERN TIMEOUT_S   (TERM, then TERM again, then KILL)
  local pid=$1 pat=$2 to=${3:-20} i
  pid_is "$pid" "$pat" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < to * 10; i++)); do pid_is "$pid" "$pat" || return 0; sleep 0.1; done
  kill -TERM "$pid" 2>/dev/null || true; sleep 1
  pid_is "$pid" "$pat" || return 0
  log "pid $pid still alive after ${to}s: KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do pid_is "$pid" "$pat" || return 0; sleep 0.1; done
  return 1
}
# pids whose cmdline contains PATTERN (an exact lab path, never a process name)
pids_with() { grep -lsaF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | awk -F/ -v s1=$$ -v s2="$BASHPID" '$3 != s1 && $3 != s2 {print $3}'; true; }

apt_install() {
  log "installing host packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || true
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}
ensure_host_packages() {
  local need=()
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v ssh-keygen >/dev/null && command -v ssh >/dev/null || need+=(openssh-client)
  command -v zstd >/dev/null || need+=(zstd)
  command -v ip >/dev/null || need+=(iproute2)
  command -v nsenter >/dev/null && command -v flock >/dev/null || need+=(util-linux)
  command -v curl >/dev/null || need+=(curl)
  command -v setfattr >/dev/null || need+=(attr)
  if ((CLICKHOUSE)); then
    command -v java >/dev/null || need+=(default-jre-headless)
    [ -r /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
    [ -r /usr/share/java/slf4j-simple.jar ] || need+=(libslf4j-java)
  fi
  if ((${#need[@]})); then apt_install "${need[@]}"; fi
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "kernel has no overlayfs"
}

# ------------------------------------------------------------------ the shared base rootfs
# Everything that is the same on every lab host. Its text is part of the base cache key, so
# editing this function rebuilds the base on the next `up`.
configure_base() {
  local B=$1
  : > "$B/etc/machine-id"
  printf '# lab container: no block devices, nothing to mount\n' > "$B/etc/fstab"
  ln -sf /usr/share/zoneinfo/Etc/UTC "$B/etc/localtime"; echo Etc/UTC > "$B/etc/timezone"
  printf 'LANG=C.UTF-8\n' > "$B/etc/default/locale"
  # Nothing a container should run (host networking / no consoles / no disks / no timers that
  # would wake 20 containers at once).
  local u
  for u in systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service \
           systemd-resolved.service systemd-timesyncd.service console-getty.service \
           getty@tty1.service serial-getty@ttyS0.service container-getty@.service \
           lvm2-monitor.service lvm2-lvmpolld.socket lvm2-lvmpolld.service dm-event.socket dm-event.service \
           blk-availability.service e2scrub_all.timer e2scrub_reap.service fstrim.timer \
           apt-daily.timer apt-daily-upgrade.timer man-db.timer dpkg-db-backup.timer \
           systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
           systemd-hwdb-update.service ldconfig.service; do
    ln -sf /dev/null "$B/etc/systemd/system/$u"
  done
  # journald: volatile and small (20 containers)
  mkdir -p "$B/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' > "$B/etc/systemd/journald.conf.d/lab.conf"
  # sshd: host key per container (generated by lab.sh into the host's upper dir), key-only
  rm -f "$B"/etc/ssh/ssh_host_*
  mkdir -p "$B/etc/ssh/sshd_config.d"
  cat > "$B/etc/ssh/sshd_config.d/50-chops-lab.conf" <<'EOF'
# chops lab (sshd_config.d files are read first: first value wins)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
MaxSessions 200
MaxStartups 400:30:800
LoginGraceTime 30
ClientAliveInterval 0
EOF
  # no pam_systemd: no per-login user manager (systemd --user) in 20 containers; logins stay
  # fast. Everything else of PAM (limits, env, loginuid) is the Debian default.
  sed -i '/pam_systemd\.so/d' "$B/etc/pam.d/common-session" "$B/etc/pam.d/common-session-noninteractive" 2>/dev/null || true
  rm -f "$B/etc/update-motd.d/"* "$B/etc/motd"; : > "$B/etc/motd"
  # users: root + ops (sudo NOPASSWD), key-only, clean dotfiles
  chroot "$B" /usr/sbin/useradd -m -s /bin/bash -U ops
  chroot "$B" /usr/sbin/usermod -p '*' ops
  chroot "$B" /usr/sbin/usermod -p '*' root
  printf 'ops ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$B/etc/sudoers.d/ops"; chmod 440 "$B/etc/sudoers.d/ops"
  printf 'Defaults !fqdn\n' > "$B/etc/sudoers.d/lab"; chmod 440 "$B/etc/sudoers.d/lab"
  local h
  for h in "$B/root" "$B/home/ops"; do
    rm -f "$h/.bashrc" "$h/.profile" "$h/.bash_logout"
    printf '# chops lab: clean and fast\nexport LANG=C.UTF-8\n' > "$h/.profile"
    printf '# chops lab: clean and fast\n' > "$h/.bashrc"
    mkdir -p "$h/.ssh"; chmod 700 "$h/.ssh"
  done
  chroot "$B" chown -R ops:ops /home/ops
  chmod 700 "$B/root"
  # ClickHouse (Debian 18.16): the packaged unit works (Type=simple, User=clickhouse); add
  # production-like limits and a readiness-friendly stop timeout. Not enabled at boot.
  mkdir -p "$B/etc/systemd/system/clickhouse-server.service.d"
  cat > "$B/etc/systemd/system/clickhouse-server.service.d/chops-lab.conf" <<'EOF'
[Service]
LimitNOFILE=262144
TimeoutStopSec=60
EOF
  rm -f "$B/etc/systemd/system/multi-user.target.wants/clickhouse-server.service"
  mkdir -p "$B/etc/clickhouse-server/config.d" "$B/etc/clickhouse-server/users.d"
  cat > "$B/etc/clickhouse-server/users.d/chops-lab.xml" <<EOF
<?xml version="1.0"?>
<!-- chops lab users: default (no password, loopback + lab networks only), ops (password). -->
<yandex>
    <users>
        <default>
            <password></password>
            <networks replace="replace">
                <ip>127.0.0.0/8</ip>
                <ip>::1</ip>
                <ip>10.0.0.0/8</ip>
            </networks>
        </default>
        <ops>
            <password>$CH_OPS_PASSWORD</password>
            <networks replace="replace">
                <ip>127.0.0.0/8</ip>
                <ip>::1</ip>
                <ip>10.0.0.0/8</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </ops>
    </users>
</yandex>
EOF
  chroot "$B" chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server
}

ensure_base() { # prints the base dir
  local tarball key base
  tarball=$("$REPO/test/image/rootfs.sh") || die "rootfs build failed"
  [ -s "$tarball" ] || die "rootfs tarball missing: $tarball"
  key=$( { basename "$tarball"; declare -f configure_base; echo "$CH_OPS_PASSWORD"; } | sha256sum | cut -c1-12)
  base=$CACHE/base-$key
  if [ -f "$base/.chops-lab-ok" ]; then echo "$base"; return 0; fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/base.lock"; flock 8
  if [ ! -f "$base/.chops-lab-ok" ]; then
    local t0; t0=$(now)
    log "unpacking + configuring base rootfs $base"
    rm -rf --one-file-system "$base.tmp"; mkdir -p "$base.tmp"
    zstd -q -dc "$tarball" | tar -C "$base.tmp" --numeric-owner --xattrs --xattrs-include='*' -xpf -
    configure_base "$base.tmp"
    touch "$base.tmp/.chops-lab-ok"
    mv "$base.tmp" "$base"
    log "base ready in $(elapsed "$t0")s"
    # drop older bases nobody has mounted
    local old
    for old in "$CACHE"/base-*; do
      [ -d "$old" ] && [ "$old" != "$base" ] || continue
      grep -qF "lowerdir=$old" /proc/self/mounts && continue
      log "removing unused old base $old"; rm -rf --one-file-system "$old"
    done
  fi
  exec 8>&-
  echo "$base"
}

# ------------------------------------------------------------------ layout of a lab
host_name() { if ((CLICKHOUSE)); then echo "ch$1"; else echo "h$1"; fi; }
host_addr() { echo "$NET.$((10 + $1))"; }
host_shard() { # shard name "01".. for host i
  local i=$1
  if ((CLICKHOUSE)) || ((HOSTS % 2 == 0)); then printf '%02d' $(((i + 1) / 2)); else printf '%02d' "$i"; fi
}
hdir() { echo "$DIR/hosts/$(host_name "$1")"; }

# upper_mkdir BASE UPPER REL: create UPPER/REL with owner+mode of BASE/REL for every component
upper_mkdir() {
  local B=$1 U=$2 rel=$3 p="" c
  local IFS=/
  for c in $rel; do
    [ -n "$c" ] || continue
    p=$p/$c
    if [ ! -d "$U$p" ]; then
      mkdir "$U$p"
      if [ -e "$B$p" ]; then chown --reference="$B$p" "$U$p"; chmod --reference="$B$p" "$U$p"; fi
    fi
  done
}
# upper_file BASE UPPER REL MODE OWNER  (content from stdin)
upper_file() {
  upper_mkdir "$1" "$2" "$(dirname "$3")"
  cat > "$2$3"; chmod "$4" "$2$3"; chown "$5" "$2$3"
}

prepare_host() { # prepare_host BASE i
  local B=$1 i=$2 name addr H U uid gid
  name=$(host_name "$i"); addr=$(host_addr "$i"); H=$(hdir "$i"); U=$H/upper
  mkdir -p "$U" "$H/work" "$H/root"
  ssh-keygen -q -t ed25519 -N '' -C "$name.$NAME.chops-lab" -f "$H/ssh_host_ed25519_key"
  upper_file "$B" "$U" /etc/ssh/ssh_host_ed25519_key 600 0:0 < "$H/ssh_host_ed25519_key"
  upper_file "$B" "$U" /etc/ssh/ssh_host_ed25519_key.pub 644 0:0 < "$H/ssh_host_ed25519_key.pub"
  printf 'ListenAddress %s:22\n' "$addr" | upper_file "$B" "$U" /etc/ssh/sshd_config.d/00-chops-lab-listen.conf 644 0:0
  echo "$name" | upper_file "$B" "$U" /etc/hostname 644 0:0
  tr -d '-' < /proc/sys/kernel/random/uuid | upper_file "$B" "$U" /etc/machine-id 444 0:0
  { printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n'
    local j; for ((j = 1; j <= HOSTS; j++)); do printf '%s\t%s\n' "$(host_addr "$j")" "$(host_name "$j")"; done
  } | upper_file "$B" "$U" /etc/hosts 644 0:0
  upper_file "$B" "$U" /root/.ssh/authorized_keys 600 0:0 < "$DIR/id_ed25519.pub"
  uid=$(awk -F: '$1=="ops"{print $3}' "$B/etc/passwd"); gid=$(awk -F: '$1=="ops"{print $4}' "$B/etc/passwd")
  upper_file "$B" "$U" /home/ops/.ssh/authorized_keys 600 "$uid:$gid" < "$DIR/id_ed25519.pub"
  if ((CLICKHOUSE)); then
    render_ch_config "$i" | upper_file "$B" "$U" /etc/clickhouse-server/config.d/chops-lab.xml 644 0:0
  fi
}

render_ch_config() {
  local i=$1 j s
  cat <<EOF
<?xml version="1.0"?>
<!-- chops lab: $(host_name "$i") of lab $NAME (rendered by test/lab/lab.sh) -->
<yandex>
    <listen_host>$(host_addr "$i")</listen_host>
    <listen_host>127.0.0.1</listen_host>
    <interserver_http_host>$(host_addr "$i")</interserver_http_host>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <macros replace="replace">
        <cluster>lab</cluster>
        <shard>$(host_shard "$i")</shard>
        <replica>$(host_name "$i")</replica>
    </macros>
    <remote_servers replace="replace">
        <lab>
EOF
  for ((s = 1; s <= (HOSTS + 1) / 2; s++)); do
    printf '            <shard>\n                <internal_replication>true</internal_replication>\n'
    for ((j = 2 * s - 1; j <= 2 * s && j <= HOSTS; j++)); do
      printf '                <replica><host>%s</host><port>9000</port></replica>\n' "$(host_addr "$j")"
    done
    printf '            </shard>\n'
  done
  cat <<EOF
        </lab>
    </remote_servers>
    <zookeeper replace="replace">
        <node index="1">
            <host>$NET.1</host>
            <port>2181</port>
        </node>
        <session_timeout_ms>30000</session_timeout_ms>
        <operation_timeout_ms>10000</operation_timeout_ms>
    </zookeeper>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
</yandex>
EOF
}

# cgroup hierarchies a container's systemd writes to (cgroup v1 name=systemd, cgroup2)
cgroup_dirs() { awk '$3 == "cgroup2" || ($3 == "cgroup" && $4 ~ /(^|,)name=systemd(,|$)/) {print $2}' /proc/self/mounts; }
kill_cgroup_leftovers() { # SIGKILL, by PID, whatever still runs in this lab's cgroups
  # A container whose systemd-nspawn was SIGKILLed keeps running (its init is reparented), and
  # nothing in its command line names the lab. Its processes are still in the cgroup the lab made
  # for it, so everything listed there is ours by construction.
  local cg pids attempt
  for attempt in $(seq 1 50); do
    pids=$(for cg in $(cgroup_dirs); do [ -d "$cg/chops-lab/$NAME" ] && find "$cg/chops-lab/$NAME" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un)
    [ -n "$pids" ] || return 0
    ((attempt == 1)) && log "killing $(echo "$pids" | wc -w) leftover process(es) in the lab's cgroups"
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  log "warning: processes left in the lab's cgroups: $pids"
}

cleanup_network_leftovers() { # the lab's bridge and any host-side veth still around
  local p
  if ip link show "$BR" >/dev/null 2>&1; then ip link del "$BR" 2>/dev/null || true; fi
  # host ends of veth pairs whose namespace outlived its netns mount (killed containers)
  for p in $(ip -o link show 2>/dev/null | awk -F': ' -v pre="cl${LABID}h" 'index($2, pre) == 1 {split($2, a, "@"); print a[1]}'); do
    ip link del "$p" 2>/dev/null || true
  done
}

remove_cgroups() { # remove this lab's (now empty) cgroups, deepest first
  local cg
  for cg in $(cgroup_dirs); do
    [ -d "$cg/chops-lab/$NAME" ] || continue
    find "$cg/chops-lab/$NAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$cg/chops-lab/$NAME" ] && log "warning: cgroup $cg/chops-lab/$NAME not empty"
  done
  return 0
}

nspawn_pattern() { echo "--directory=$(hdir "$1")/root"; }

start_host() { # start_host i
  local i=$1 name addr H netargs=()
  name=$(host_name "$i"); addr=$(host_addr "$i"); H=$(hdir "$i")
  mount -t overlay "chops-lab-$NAME-$name" -o "lowerdir=$BASE,upperdir=$H/upper,workdir=$H/work" "$H/root"
  if [ "$MODE" = bridge ]; then
    local ns=chops-$NAME-$name veth=cl${LABID}h$i
    ip netns add "$ns"
    ip link add "$veth" type veth peer name host0 netns "$ns"
    ip link set "$veth" master "$BR" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev host0
    ip -n "$ns" link set host0 up
    ip -n "$ns" route add default via "$NET.1"
    netargs=(--network-namespace-path="/run/netns/$ns")
  fi
  # --register=no/--keep-unit: the machine has no systemd as PID 1 (no machined).
  # no block devices: nspawn's /dev is private; also drop CAP_MKNOD and hide /sys block dirs.
  # cgroups: with systemd as the machine's PID 1, nspawn gets its own scope from it. Without
  # (this dev box, containers in CI), --keep-unit would put every container in the caller's
  # cgroup: all containers' systemds would then share /system.slice/* (units of one container
  # failing with "Failed at step CGROUP", `systemctl stop` racing across hosts). So each
  # container gets its own cgroup in the name=systemd and unified hierarchies.
  local unitargs=(--keep-unit) cg
  if [ -d /run/systemd/system ]; then unitargs=(); fi
  (
    if [ ${#unitargs[@]} -gt 0 ]; then
      for cg in $(cgroup_dirs); do
        mkdir -p "$cg/chops-lab/$NAME/$name" && echo "$BASHPID" > "$cg/chops-lab/$NAME/$name/cgroup.procs" \
          || log "warning: cannot move $name into $cg/chops-lab/$NAME/$name"
      done
    fi
    exec setsid systemd-nspawn --quiet --boot --directory="$H/root" --machine="chops-$NAME-$name" \
    --hostname="$name" --register=no "${unitargs[@]}" --console=passive --link-journal=no \
    --resolv-conf=off --timezone=off --drop-capability=CAP_MKNOD,CAP_SYS_RAWIO \
    --bind-ro=/dev/null:/proc/partitions --bind-ro=/dev/null:/proc/diskstats \
    --tmpfs=/sys/block:mode=0755 --tmpfs=/sys/class/block:mode=0755 --tmpfs=/sys/dev/block:mode=0755 \
    "${netargs[@]}" </dev/null >"$H/nspawn.log" 2>&1 7>&- 8>&- 9>&-
  ) &
  echo $! > "$H/nspawn.pid"
}

# PID 1 of host i's container (as seen from the machine), or fail
leader_pid() {
  local i=$1 np c
  np=$(cat "$(hdir "$i")/nspawn.pid" 2>/dev/null) || return 1
  pid_is "$np" "$(nspawn_pattern "$i")" || return 1
  for c in $(cat /proc/"$np"/task/*/children 2>/dev/null); do
    if awk '/^NSpid:/{exit !($NF == 1)}' "/proc/$c/status" 2>/dev/null; then echo "$c"; return 0; fi
  done
  return 1
}
host_index() { # host name -> index
  local n=$1
  case $n in h[0-9]*) ((CLICKHOUSE)) && return 1; echo "${n#h}" ;; ch[0-9]*) ((CLICKHOUSE)) || return 1; echo "${n#ch}" ;; *) return 1 ;; esac
}

# ------------------------------------------------------------------ ZooKeeper (ClickHouse labs)
zk_4lw() { (exec 3<>"/dev/tcp/$NET.1/2181" && printf '%s' "$1" >&3 && timeout 2 cat <&3) 2>/dev/null; }
zk_start() {
  local Z=$DIR/zk
  mkdir -p "$Z/data" "$Z/log"
  cat > "$Z/zoo.cfg" <<EOF
# ZooKeeper of chops lab $NAME (standalone)
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$Z/data
clientPort=2181
clientPortAddress=$NET.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,srvr,mntr,conf,cons
EOF
  (cd "$Z" && exec setsid java -Xmx256m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
     -Dzookeeper.admin.enableServer=false \
     -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
     org.apache.zookeeper.server.ZooKeeperServerMain "$Z/zoo.cfg" </dev/null >"$Z/log/zookeeper.log" 2>&1 7>&- 8>&- 9>&-) &
  echo $! > "$Z/zk.pid"
}
zk_wait() {
  local deadline=$(( $(date +%s) + WAIT ))
  until zk_4lw srvr | grep -q '^Mode: standalone'; do
    pid_is "$(cat "$DIR/zk/zk.pid")" "$DIR/zk/zoo.cfg" || { tail -20 "$DIR/zk/log/zookeeper.log" >&2; die "ZooKeeper died"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "ZooKeeper not ready after ${WAIT}s"
    sleep 0.1
  done
}

# ------------------------------------------------------------------ client files
write_client_files() {
  local i name addr
  : > "$DIR/known_hosts.tmp"; : > "$DIR/ssh_config.tmp"
  for ((i = 1; i <= HOSTS; i++)); do
    name=$(host_name "$i"); addr=$(host_addr "$i")
    printf '%s %s\n' "$addr" "$(awk '{print $1" "$2}' "$(hdir "$i")/ssh_host_ed25519_key.pub")" >> "$DIR/known_hosts.tmp"
    cat >> "$DIR/ssh_config.tmp" <<EOF
Host $name
  HostName $addr
  Port 22
  User root
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  HostKeyAlgorithms ssh-ed25519
  BatchMode yes
  ConnectTimeout 5
  LogLevel ERROR

EOF
  done
  mv -f "$DIR/known_hosts.tmp" "$DIR/known_hosts"; mv -f "$DIR/ssh_config.tmp" "$DIR/ssh_config"

  # hosts.json
  {
    echo "["
    for ((i = 1; i <= HOSTS; i++)); do
      name=$(host_name "$i"); addr=$(host_addr "$i")
      local key; key=$(awk '{print $1" "$2}' "$(hdir "$i")/ssh_host_ed25519_key.pub")
      printf '  {"name": "%s", "address": "%s", "port": 22, "hostKey": "%s", "hostKeyLine": "%s %s", "shard": "%s", "replica": "%s"}%s\n' \
        "$name" "$addr" "$key" "$addr" "$key" "$(host_shard "$i")" "$name" "$([ "$i" -lt "$HOSTS" ] && echo ,)"
    done
    echo "]"
  } > "$DIR/hosts.json"

  # inventory.yml (format of /work/main/inventory.yml)
  {
    cat <<EOF
# chops inventory of lab "$NAME" (rendered by test/lab/lab.sh; do not edit)
version: 1

defaults:
  ssh:
    user: root
    port: 22
    identity_file: $DIR/id_ed25519
    known_hosts: $DIR/known_hosts
    trust_on_first_use: false
    connect_timeout: 10s
    keepalive_interval: 15s
    sudo: false
  clickhouse:
    http_port: 8123
    tcp_port: 9000
    user: default
    service: clickhouse-server
    data_dir: /var/lib/clickhouse
    error_log: /var/log/clickhouse-server/clickhouse-server.err.log
  gates:
    max_delay: 10s
    max_queue_size: 20
    max_inserts_in_queue: 10
    max_log_lag: 10
    allow_mutations: false
    max_active_queries: 1
    wait_timeout: 2m
    poll_interval: 200ms

state:
  dir: $DIR/state
  log_retention: 30d

clusters:
  lab:
    shards:
EOF
    local last=""
    for ((i = 1; i <= HOSTS; i++)); do
      local sh; sh=$(host_shard "$i")
      if [ "$sh" != "$last" ]; then
        printf '      - name: "%s"\n        replicas:\n' "$sh"; last=$sh
      fi
      printf '          - host: %s\n            address: %s\n' "$(host_name "$i")" "$(host_addr "$i")"
      if ((CLICKHOUSE)); then printf '            replica_name: %s\n' "$(host_name "$i")"; fi
    done
  } > "$DIR/inventory.yml"
  mkdir -p "$DIR/state"
}

ssh_lab() { ssh -F "$DIR/ssh_config" "$@"; }

wait_ssh() { # wait_ssh i
  local i=$1 name H deadline
  name=$(host_name "$i"); H=$(hdir "$i"); deadline=$(( $(date +%s) + WAIT ))
  until ssh_lab -o ConnectTimeout=2 "$name" true 2>/dev/null; do
    pid_is "$(cat "$H/nspawn.pid")" "$(nspawn_pattern "$i")" || { tail -30 "$H/nspawn.log" >&2; log "$name: container died"; return 1; }
    [ "$(date +%s)" -lt "$deadline" ] || {
      tail -30 "$H/nspawn.log" >&2
      run_in "$i" 'systemctl is-system-running; systemctl --failed --no-pager; systemctl status --no-pager ssh; journalctl -b --no-pager -n 40' >&2 || true
      log "$name: no ssh after ${WAIT}s"; return 1; }
    sleep 0.1
  done
}

ch_http() { # ch_http i SQL  (POST, fail on HTTP error)
  curl -sS --fail-with-body -m 200 "http://$(host_addr "$1"):8123/" --data-binary "$2"
}
wait_ch() { # wait_ch i  -> server answers and sees ZooKeeper
  local i=$1 deadline=$(( $(date +%s) + WAIT )) out
  until out=$(ch_http "$i" "SELECT count() FROM system.zookeeper WHERE path = '/'" 2>/dev/null) && [ "${out:-0}" -ge 1 ] 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || {
      run_in "$i" 'systemctl status --no-pager clickhouse-server; tail -20 /var/log/clickhouse-server/clickhouse-server.err.log' >&2 || true
      log "$(host_name "$i"): ClickHouse not ready (with ZooKeeper) after ${WAIT}s"; return 1; }
    sleep 0.1
  done
}

run_in() { # run_in i CMD : sh -c CMD inside the container (nsenter into its namespaces)
  local i=$1 lp; shift
  lp=$(leader_pid "$i") || { log "$(host_name "$i") is not running"; return 125; }
  nsenter -t "$lp" -m -u -i -n -p -C -r -w -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
    /bin/sh -c "$*"
}

load_env() {
  [ -f "$DIR/lab.env" ] || return 1
  # shellcheck disable=SC1091
  source "$DIR/lab.env"
}

# ------------------------------------------------------------------ commands
do_down() {
  local t0 i H p name
  t0=$(now)
  if [ ! -d "$DIR" ]; then
    # no state, but a lab killed earlier may have left processes, interfaces and cgroups
    kill_cgroup_leftovers
    cleanup_network_leftovers
    remove_cgroups
    log "nothing else to do ($DIR absent)"
    return 0
  fi
  load_env || true
  # 1. containers (in parallel): SIGTERM to systemd-nspawn = clean halt of the container
  local pids=()
  for H in "$DIR"/hosts/*; do
    [ -d "$H" ] || continue
    (
      p=$(cat "$H/nspawn.pid" 2>/dev/null || true)
      stop_pid "$p" "--directory=$H/root" 20 || true
      for p in $(pids_with "--directory=$H/root"); do   # pid file lost (failed up)
        pid_is "$p" systemd-nspawn && { log "stray nspawn pid $p for $H"; stop_pid "$p" "--directory=$H/root" 20 || true; }
      done
    ) & pids+=($!)
  done
  # 2. ZooKeeper
  if [ -d "$DIR/zk" ]; then
    ( stop_pid "$(cat "$DIR/zk/zk.pid" 2>/dev/null || true)" "$DIR/zk/zoo.cfg" 20 || true
      for p in $(pids_with "$DIR/zk/zoo.cfg"); do pid_is "$p" ZooKeeperServerMain && stop_pid "$p" "$DIR/zk/zoo.cfg" 20; done ) & pids+=($!)
  fi
  for p in "${pids[@]}"; do wait "$p" || true; done
  kill_cgroup_leftovers
  # 3. overlays, network namespaces, bridge
  local busy=0
  for H in "$DIR"/hosts/*; do
    [ -d "$H" ] || continue
    name=${H##*/}
    for _ in $(seq 1 30); do mountpoint -q "$H/root" 2>/dev/null || break; umount "$H/root" 2>/dev/null || sleep 0.2; done
    if mountpoint -q "$H/root" 2>/dev/null; then umount -l "$H/root" 2>/dev/null || true; fi
    if mountpoint -q "$H/root" 2>/dev/null; then log "$H/root still mounted"; busy=1; fi
    if [ -e "/run/netns/chops-$NAME-$name" ]; then ip netns del "chops-$NAME-$name" 2>/dev/null || true; fi
  done
  cleanup_network_leftovers
  remove_cgroups
  ((busy)) && die "some overlay still mounted; state kept in $DIR"
  case $DIR in "$ROOT"/?*) rm -rf --one-file-system "$DIR" ;; *) die "refusing to remove $DIR" ;; esac
  log "down in $(elapsed "$t0")s"
}

do_up() {
  [[ $HOSTS =~ ^[0-9]+$ ]] && ((HOSTS >= 1 && HOSTS <= 200)) || die "--hosts must be 1..200"
  if ((CLICKHOUSE)); then
    ((HOSTS == 4)) || { [ -z "${CHOPS_LAB_ANY_CH_HOSTS:-}" ] && die "--clickhouse labs have 4 hosts (2 shards x 2 replicas)"; }
    NET=${NET:-10.231.$(( 0x${LABID:0:2} % 200 + 20 ))}
  else
    NET=${NET:-127.0.$(( 0x${LABID:0:2} % 200 + 20 ))}
  fi
  [[ $NET =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "--net must be 3 octets, e.g. 127.0.40 or 10.231.40"
  ((HOSTS + 10 <= 254)) || die "too many hosts for one /24"
  if [[ $NET == 127.* ]]; then MODE=loopback; else MODE=bridge; fi
  if ((CLICKHOUSE)) && [ "$MODE" = loopback ]; then
    die "--clickhouse needs a non-loopback --net (each node needs its own network namespace; see header)"
  fi
  local T0; T0=$(now)
  ensure_host_packages
  mkdir -p "$ROOT"
  if [ -d "$DIR" ]; then log "lab exists: taking it down first (fresh state)"; do_down; fi
  # address conflicts with another lab or service
  local i
  if [ "$MODE" = loopback ]; then
    for ((i = 1; i <= HOSTS; i++)); do
      ss -Hltn "src $(host_addr "$i")" 2>/dev/null | grep -q . && die "$(host_addr "$i") already has listeners (another lab on --net $NET?)"
    done
    ss -Hltn 'sport = :22' 2>/dev/null | awk '{print $4}' | grep -Eq '^(0\.0\.0\.0|\*|\[::\]):22$' && die "something listens on *:22 on this machine; lab sshds cannot bind"
  else
    ip -4 addr show | grep -qF " $NET.1/" && die "$NET.1 already on an interface (another lab on --net $NET?)"
  fi
  BASE=$(ensure_base)
  mkdir -p "$DIR/hosts"
  cat > "$DIR/lab.env" <<EOF
NAME=$NAME
HOSTS=$HOSTS
CLICKHOUSE=$CLICKHOUSE
NET=$NET
MODE=$MODE
BASE=$BASE
EOF
  if [ -z "${CHOPS_LAB_KEEP_ON_FAIL:-}" ]; then
    trap 'rc=$?; if ((rc)); then log "up failed (rc $rc): tearing down"; trap - EXIT; do_down || true; fi; exit $rc' EXIT
  fi
  ssh-keygen -q -t ed25519 -N '' -C "chops-lab-$NAME" -f "$DIR/id_ed25519"
  if ((CLICKHOUSE)); then printf '%s\n' "$CH_OPS_PASSWORD" > "$DIR/ch_ops_password"; chmod 600 "$DIR/ch_ops_password"; fi
  if [ "$MODE" = bridge ]; then
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
  fi
  ((CLICKHOUSE)) && zk_start
  local t1; t1=$(now)
  for ((i = 1; i <= HOSTS; i++)); do prepare_host "$BASE" "$i"; done
  for ((i = 1; i <= HOSTS; i++)); do start_host "$i"; done
  write_client_files
  log "$HOSTS containers starting ($MODE net $NET.0/24, prepared in $(elapsed "$t1")s)"
  local pids=() rc=0 p
  for ((i = 1; i <= HOSTS; i++)); do wait_ssh "$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || die "some hosts did not come up"
  log "ssh ready on $HOSTS hosts after $(elapsed "$T0")s"
  if ((CLICKHOUSE)); then
    zk_wait
    pids=()
    for ((i = 1; i <= HOSTS; i++)); do ssh_lab "$(host_name "$i")" systemctl start clickhouse-server & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    ((rc == 0)) || die "systemctl start clickhouse-server failed"
    pids=()
    for ((i = 1; i <= HOSTS; i++)); do wait_ch "$i" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    ((rc == 0)) || die "ClickHouse not ready"
    log "ClickHouse up on $HOSTS nodes after $(elapsed "$T0")s; applying schema ON CLUSTER"
    ch_http 1 "CREATE DATABASE IF NOT EXISTS lab ON CLUSTER lab" >/dev/null
    ch_http 1 "CREATE TABLE IF NOT EXISTS lab.events_local ON CLUSTER lab (d Date DEFAULT toDate(ts), ts DateTime, id UInt64, v String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/lab/events_local', '{replica}') PARTITION BY toYYYYMM(d) ORDER BY id" >/dev/null
    ch_http 1 "CREATE TABLE IF NOT EXISTS lab.events ON CLUSTER lab AS lab.events_local ENGINE = Distributed(lab, lab, events_local, cityHash64(id))" >/dev/null
    for ((i = 1; i <= HOSTS; i++)); do
      [ "$(ch_http "$i" "SELECT count() FROM system.tables WHERE database = 'lab'")" = 2 ] || die "$(host_name "$i"): schema missing"
    done
  fi
  trap - EXIT
  log "lab up in $(elapsed "$T0")s: ssh -F $DIR/ssh_config $(host_name 1); inventory $DIR/inventory.yml"
  echo "$DIR"
}

do_status() {
  load_env || { echo "lab $NAME: not up"; return 3; }
  local i rc=0 name lp st
  echo "lab $NAME: $HOSTS hosts, $MODE net $NET.0/24, dir $DIR"
  for ((i = 1; i <= HOSTS; i++)); do
    name=$(host_name "$i")
    if lp=$(leader_pid "$i"); then
      st=$(run_in "$i" 'systemctl is-system-running 2>/dev/null' || true)
      printf '  %-5s %-14s nspawn=%s pid1=%s system=%s' "$name" "$(host_addr "$i")" "$(cat "$(hdir "$i")/nspawn.pid")" "$lp" "$st"
      if ((CLICKHOUSE)); then printf ' clickhouse=%s' "$(run_in "$i" 'systemctl is-active clickhouse-server' || true)"; fi
      echo
    else
      printf '  %-5s %-14s down\n' "$name" "$(host_addr "$i")"; rc=3
    fi
  done
  if ((CLICKHOUSE)); then
    if pid_is "$(cat "$DIR/zk/zk.pid" 2>/dev/null)" "$DIR/zk/zoo.cfg"; then
      echo "  zk    $NET.1:2181 pid=$(cat "$DIR/zk/zk.pid") $(zk_4lw srvr | grep -E '^Mode' || echo 'not answering')"
    else echo "  zk    down"; rc=3; fi
  fi
  return $rc
}

do_exec() {
  load_env || die "lab $NAME is not up"
  ((${#EXEC_ARGS[@]} >= 2)) || die "usage: lab.sh exec --name NAME HOST [--] CMD..."
  local i
  i=$(host_index "${EXEC_ARGS[0]}") && ((i >= 1 && i <= HOSTS)) || die "no host ${EXEC_ARGS[0]} in lab $NAME"
  run_in "$i" "${EXEC_ARGS[*]:1}"
}

case $CMD in
  up) mkdir -p "$ROOT"; exec 7>"$ROOT/.$NAME.lock"; flock 7; do_up ;;
  down)
    mkdir -p "$ROOT"; exec 7>"$ROOT/.$NAME.lock"
    # an `up` of the same lab may be running; labs started by an older lab.sh leaked this lock
    # into their container processes, so do not wait forever.
    flock -w 30 7 || log "lock $ROOT/.$NAME.lock still busy after 30s; going on"
    do_down ;;
  status) do_status ;;
  exec) do_exec ;;
  list) ls -1 "$ROOT" 2>/dev/null | grep -v '^\.' || true ;;
  *) usage ;;
esac
