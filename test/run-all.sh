#!/usr/bin/env bash
# run-all.sh - every test chops has, on a fresh Debian machine as root:
#   unit tests (no hosts), diagrams through the real renderers (dot, Mermaid in headless
#   Chromium), the SSH lab (nspawn containers with real sshd/systemd), the
#   replicated ClickHouse lab (real clickhouse-server 18.16 + ZooKeeper), and the QEMU VM tier
#   (real disks, LVM, reboots). Installs what it needs (scripts/setup.sh), builds, runs, and
#   always tears its labs down. `TIERS="unit lab"` runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
TIERS=${TIERS:-"lint unit browser lab integration vm"}
ALL_TIERS=$TIERS
t0=$(date +%s)
log() { printf '\n[test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
scripts/setup.sh
export CHOPS_TEST_BUILT=1 # scripts/setup.sh built the bundle: the lab test files do not rebuild it
export NODE_OPTIONS="${NODE_OPTIONS:-} --no-warnings=ExperimentalWarning"
run() { # run TIER FILES...
  local tier=$1; shift
  [ $# -gt 0 ] || return 0
  log "$tier: $*"
  local t=$(date +%s)
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@" || return $?
  log "$tier passed in $(( $(date +%s) - t ))s"
}
# The VM tier runs beside the integration tier when both are asked for: a TCG guest keeps one
# core busy while the ClickHouse labs mostly wait on their servers, so side by side the suite
# takes about the longer of the two instead of their sum. Its output is printed when it ends;
# it is never killed half-way (its guests clean up after themselves), so a failure of either
# tier is reported after both ended.
vm_pid= beside_vm=
if [[ " $TIERS " == *" integration "* && " $TIERS " == *" vm "* ]]; then
  beside_vm=1
  TIERS=$(printf '%s\n' $TIERS | grep -vx vm | tr '\n' ' ')
fi
vm_log=$(mktemp /tmp/chops-vm-tier.XXXXXX)
trap 'rm -f "$vm_log"' EXIT
wait_vm() { # wait for the VM tier started beside integration; print its output; its status
  [ -n "$vm_pid" ] || return 0
  local rc=0; wait "$vm_pid" || rc=$?; vm_pid=
  cat "$vm_log"; [ $rc -eq 0 ] && log "vm (beside integration) passed" || log "vm (beside integration) FAILED"
  return $rc
}
for tier in $TIERS; do
  if [ "$tier" = integration ] && [ -n "$beside_vm" ]; then
    log "vm: test/vm/*.test.ts, beside the integration tier (output when it ends)"
    ( t=$(date +%s); node --import tsx --test --test-concurrency=1 --test-reporter=spec test/vm/*.test.ts && echo "[test] vm passed in $(( $(date +%s) - t ))s" ) >"$vm_log" 2>&1 &
    vm_pid=$!
    irc=0; run integration test/integration/*.test.ts || irc=$?
    vrc=0; wait_vm || vrc=$?
    [ $irc -eq 0 ] && [ $vrc -eq 0 ] || exit 1
    continue
  fi
  case $tier in
    lint) log 'lint: biome (lint + format) and madge (no import cycles)'
          npx biome ci --reporter=summary . && npx madge --circular --extensions ts src tasks playbooks facts templates >/dev/null && log 'lint passed' ;;
    unit) run unit test/unit/*.test.ts test/unit/*/*.test.ts ;;
    browser) run browser test/browser/*.test.ts ;;
    lab) run lab test/lab/*.test.ts ;;
    integration) run integration test/integration/*.test.ts ;;
    vm) run vm test/vm/*.test.ts ;;
    *) echo "unknown tier $tier" >&2; exit 2 ;;
  esac
done
log "all tiers ($ALL_TIERS) passed in $(( $(date +%s) - t0 ))s"
