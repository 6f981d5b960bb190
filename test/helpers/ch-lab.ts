// Moved to test/support/ (kept so older imports keep working): the lab handle (lab.ts), SQL and
// liveness over HTTP (clickhouse.ts), processes and the CLI (process.ts, cli.ts), inventory
// variants and run state (inventory.ts).
import { clickhouseLab, type TestLab } from '../support/lab.js';
import { labOpen } from '../lab/lab.js';
import path from 'node:path';

export { REPO, sleep, startProcess, runProcess, type ProcResult, type RunningProcess } from '../support/process.js';
export { chQuery, ping, uptimes, restartedBetween, waitClusterIdle, type LabNode } from '../support/clickhouse.js';
export { chops, runIdOf } from '../support/cli.js';
export { inventoryVariant, readRunState } from '../support/inventory.js';
export { labSh } from '../support/lab.js';
export type ChLab = TestLab;

/**
 * A fresh ClickHouse lab NAME (2 shards × 2 replicas), or with REUSE (a lab directory) a running
 * one that is never torn down. Prefer clickhouseLab() from test/support/lab.ts (CHOPS_TEST_REUSE_LAB=1).
 */
export async function chLabUp(name: string, reuse?: string): Promise<TestLab> {
  if (!reuse) return clickhouseLab(name);
  const lab = labOpen(path.basename(reuse), reuse);
  return {
    lab,
    name: lab.name,
    dir: lab.dir,
    inventoryPath: lab.inventoryPath,
    nodes: lab.hosts.map((h) => ({ name: h.name, address: h.address, shard: h.shard, replica: h.replica })),
    down: async () => {},
  };
}
