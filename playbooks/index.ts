// The playbooks chops knows, loaded on demand so `chops --help` stays fast.
import type { Playbook } from '../src/engine/playbook.js';

export const PLAYBOOKS: Record<string, () => Promise<{ default: Playbook<any> }>> = {
  facts: () => import('./facts.js'),
  exec: () => import('./exec.js'),
  'rolling-restart': () => import('./rolling-restart.js'),
  'rolling-upgrade': () => import('./rolling-upgrade.js'),
  'backup-install': () => import('./backup-install.js'),
  'move-data': () => import('./move-data.js'),
  'move-data-cleanup': () => import('./move-data-cleanup.js'),
  'prepare-disk': () => import('./prepare-disk.js'),
  'config-push': () => import('./config-push.js'),
};

export async function loadPlaybook(name: string): Promise<Playbook<any>> {
  // Object.hasOwn: `__proto__`, `constructor` and `toString` are properties of every object.
  const load = typeof name === 'string' && Object.hasOwn(PLAYBOOKS, name) ? PLAYBOOKS[name] : undefined;
  if (!load) {
    const { UsageError } = await import('../src/errors.js');
    const { show } = await import('../src/inventory/values.js');
    throw new UsageError(`unknown playbook ${show(String(name))}`, { hint: `available: ${Object.keys(PLAYBOOKS).join(', ')} (chops playbooks)` });
  }
  return (await load()).default;
}
