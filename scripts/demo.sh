#!/usr/bin/env bash
# demo.sh - the main job on a built-in local default: a replicated ClickHouse lab on this machine
# (4 containers: 2 shards x 2 replicas, real clickhouse-server 18.16 under systemd + ZooKeeper),
# then chops checks it, plans and runs a gated rolling restart, and shows the cluster again.
# The lab stays up afterwards to play with; `test/lab/lab.sh down --name demo` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
test/lab/lab.sh up --name demo --hosts 4 --clickhouse
INV=${CHOPS_LAB_ROOT:-/var/tmp/chops-lab}/demo/inventory.yml
chops() { node bin/chops.js "$@"; }
set -x
chops inventory check -i "$INV"
chops status -i "$INV" || true
chops plan rolling-restart -i "$INV"
chops run rolling-restart -i "$INV" --yes
chops status -i "$INV"
chops runs -i "$INV"
set +x
echo
echo "The lab is still running. Try: node bin/chops.js run facts -i $INV"
echo "Tear it down with: test/lab/lab.sh down --name demo"
