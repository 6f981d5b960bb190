// Bring up (or reuse) a ClickHouse lab for an integration test: test/lab/lab.ts's labUp when it
// exists, lab.sh directly otherwise. CHOPS_TEST_REUSE_LAB=1 reuses a lab of that name that is
// already up (and leaves it up), for quick iterations.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO, runProcess } from './ch-lab.js';

export interface TestLab {
  name: string;
  dir: string;
  inventoryPath: string;
  down(): Promise<void>;
}

const ROOT = process.env.CHOPS_LAB_ROOT ?? '/var/tmp/chops-lab';

export async function upClickHouseLab(name: string): Promise<TestLab> {
  const dir = path.join(ROOT, name);
  const inventoryPath = path.join(dir, 'inventory.yml');
  if (process.env.CHOPS_TEST_REUSE_LAB === '1' && existsSync(inventoryPath)) {
    return { name, dir, inventoryPath, down: async () => {} };
  }
  const labTs = path.join(REPO, 'test/lab/lab.ts');
  if (existsSync(labTs)) {
    const { labUp } = (await import(labTs)) as any;
    const up = await labUp({ name, hosts: 4, clickhouse: true });
    return { name, dir: up.dir ?? path.dirname(up.inventoryPath), inventoryPath: up.inventoryPath, down: () => up.down() };
  }
  const sh = path.join(REPO, 'test/lab/lab.sh');
  const r = await runProcess('bash', [sh, 'up', '--name', name, '--hosts', '4', '--clickhouse']);
  if (r.code !== 0) throw new Error(`lab.sh up --name ${name} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return {
    name,
    dir,
    inventoryPath,
    down: async () => {
      await runProcess('bash', [sh, 'down', '--name', name]);
    },
  };
}
