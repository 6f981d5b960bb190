// The playbooks chops knows, loaded on demand so `chops --help` stays fast.
import type { Playbook } from '../src/engine/playbook.js';

export const PLAYBOOKS: Record<string, () => Promise<{ default: Playbook<any> }>> = {
  facts: () => import('./facts.js'),
  exec: () => import('./exec.js'),
  'rolling-restart': () => import('./rolling-restart.js'),
  'move-data': () => import('./move-data.js'),
  'move-data-cleanup': () => import('./move-data-cleanup.js'),
  'prepare-disk': () => import('./prepare-disk.js'),
};

export async function loadPlaybook(name: string): Promise<Playbook<any>> {
  const load = PLAYBOOKS[name];
  if (!load) {
    const { UsageError } = await import('../src/errors.js');
    throw new UsageError(`unknown playbook "${name}"`, { hint: `available: ${Object.keys(PLAYBOOKS).join(', ')} (chops playbooks)` });
  }
  return (await load()).default;
}
