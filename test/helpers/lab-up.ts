// Bring up a ClickHouse lab for an integration test (test/lab/lab.ts), or reuse one that is
// already up with CHOPS_TEST_REUSE_LAB=1 (left up afterwards), for quick iterations.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { labOpen, labUp, labExec as labExecIn, type Lab } from '../lab/lab.js';

export interface TestLab {
  name: string;
  dir: string;
  inventoryPath: string;
  lab: Lab;
  down(): Promise<void>;
}

const ROOT = process.env.CHOPS_LAB_ROOT ?? '/var/tmp/chops-lab';

export async function upClickHouseLab(name: string): Promise<TestLab> {
  const dir = path.join(ROOT, name);
  if (process.env.CHOPS_TEST_REUSE_LAB === '1' && existsSync(path.join(dir, 'inventory.yml'))) {
    const lab = labOpen(name, dir);
    return { name, dir, inventoryPath: lab.inventoryPath, lab, down: async () => {} };
  }
  const lab = await labUp({ name, hosts: 4, clickhouse: true });
  return { name, dir: lab.dir, inventoryPath: lab.inventoryPath, lab, down: () => lab.down() };
}

/** Run a shell command as root inside a lab host (no ssh); its stdout. */
export async function labExec(t: TestLab, host: string, cmd: string): Promise<string> {
  return (await labExecIn(t.lab, host, cmd)).stdout;
}
