// Options shared by the commands that touch hosts, and the inventory/limit plumbing.
import { resolve } from 'node:path';
import type { Host, Inventory } from '../inventory/types.js';
import { UsageError } from '../errors.js';

export interface GlobalFlags {
  inventory?: string;
  limit?: string;
  output?: string;
  json?: boolean;
  yes?: boolean;
  parallelShards?: number | string;
  parallelHosts?: number | string;
}

export async function openInventory(flags: GlobalFlags): Promise<Inventory> {
  const { loadInventory } = await import('../inventory/load.js');
  return loadInventory(resolve(flags.inventory ?? 'inventory.yml'));
}

export async function selectHosts(inv: Inventory, limit: string | undefined): Promise<Host[]> {
  const { limitHosts } = await import('../inventory/load.js');
  const sel = limitHosts(inv, limit);
  if (sel.length === 0) throw new UsageError('no hosts selected', { hint: 'check --limit against `chops inventory check`' });
  return sel;
}

export function positiveInt(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Flags that belong to chops itself; everything else on `run`/`plan` is a playbook parameter. */
export const GLOBAL_KEYS = new Set(['inventory', 'i', 'limit', 'output', 'json', 'yes', 'y', 'parallelShards', 'parallel-shards', 'parallelHosts', 'parallel-hosts', 'help', 'h', 'color', '--']);

/** cac gives both kebab and camel forms; playbook params are declared in kebab-case. */
export function playbookArgs(flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flags)) {
    if (GLOBAL_KEYS.has(k)) continue;
    // cac hands over unknown multi-word flags in camelCase only (--reboot-timeout -> rebootTimeout)
    const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (GLOBAL_KEYS.has(kebab)) continue;
    if (kebab !== k && kebab in flags) continue; // camelCase twin of a kebab-case key we have
    out[kebab] = v;
  }
  return out;
}
