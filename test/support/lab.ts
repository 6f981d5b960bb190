// The one lab handle for tests and benches: bring up a lab of the test's own name (test/lab/lab.ts),
// or, with CHOPS_TEST_REUSE_LAB=1, reuse that lab when it is already up (and leave it up), for
// quick iterations on one test file. The only reuse switch there is.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Lab, type LabUpOptions, labExec, labOpen, labUp } from '../lab/lab.js';
import type { LabNode } from './clickhouse.js';

export const REUSE = process.env.CHOPS_TEST_REUSE_LAB === '1';
const ROOT = process.env.CHOPS_LAB_ROOT ?? '/var/tmp/chops-lab';

export interface TestLab {
  lab: Lab;
  name: string;
  dir: string;
  inventoryPath: string;
  /** The hosts as ClickHouse nodes (address, shard, replica). */
  nodes: LabNode[];
  /** Tear the lab down (idempotent); a no-op for a reused lab. */
  down(): Promise<void>;
}

export async function testLab(opts: LabUpOptions): Promise<TestLab> {
  const dir = path.join(ROOT, opts.name);
  const reused = REUSE && existsSync(path.join(dir, 'inventory.yml'));
  const lab = reused ? labOpen(opts.name, dir) : await labUp(opts);
  return {
    lab,
    name: lab.name,
    dir: lab.dir,
    inventoryPath: lab.inventoryPath,
    nodes: lab.hosts.map((h) => ({ name: h.name, address: h.address, shard: h.shard, replica: h.replica })),
    down: async () => {
      if (!reused) await lab.down();
    },
  };
}

/** A 2 shards × 2 replicas ClickHouse lab (ZooKeeper on this machine). */
export function clickhouseLab(name: string): Promise<TestLab> {
  return testLab({ name, hosts: 4, clickhouse: true });
}

/** Run SHELL_CMD as root inside a lab container (nsenter; works with sshd or ClickHouse down); its stdout. */
export async function labSh(t: { lab: Lab } | Lab, host: string, shellCmd: string): Promise<string> {
  const lab = 'lab' in t ? t.lab : t;
  return (await labExec(lab, host, shellCmd)).stdout;
}
