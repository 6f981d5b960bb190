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
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@"
  log "$tier passed in $(( $(date +%s) - t ))s"
}
for tier in $TIERS; do
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
log "all tiers ($TIERS) passed in $(( $(date +%s) - t0 ))s"
