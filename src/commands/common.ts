// Options shared by the commands that touch hosts, and the inventory/limit plumbing.
import { resolve } from 'node:path';
import type { Host, Inventory } from '../inventory/types.js';
import { UsageError } from '../errors.js';
import { decimalInt, printable, show } from '../inventory/values.js';
import { PLAYBOOK_VERSION_FLAG } from './argv.js';

export interface GlobalFlags {
  inventory?: string;
  limit?: string;
  output?: string;
  json?: boolean;
  yes?: boolean;
  parallelShards?: number | string;
  parallelHosts?: number | string;
}

/**
 * The text of a chops flag given at most once: undefined when absent; a UsageError (exit 2) when
 * repeated, given without a value, empty, or carrying terminal control characters.
 */
export function flagText(flags: Record<string, unknown>, name: string, what = 'a value'): string | undefined {
  const v = flags[name];
  if (v === undefined || v === false) return undefined;
  if (Array.isArray(v)) {
    throw new UsageError(
      `--${name} was given ${v.length} times (${v.map((x) => (typeof x === 'string' ? show(x, 30) : '(no value)')).join(', ')}); give it once`,
      {
        hint: name === 'limit' ? 'name several hosts in one flag: --limit h1,h2' : `keep one --${name}`,
      },
    );
  }
  if (v === true) throw new UsageError(`--${name} needs ${what}`, { hint: `write --${name} VALUE` });
  const text = String(v);
  if (text.trim() === '') throw new UsageError(`--${name} is empty; it needs ${what}`, { hint: `an unset shell variable? write --${name} VALUE` });
  if (printable(text) !== text || text.includes('\n')) throw new UsageError(`--${name} contains control characters: ${show(text)}`);
  return text;
}

export async function openInventory(flags: GlobalFlags): Promise<Inventory> {
  const { loadInventory } = await import('../inventory/load.js');
  const file = flagText(flags as Record<string, unknown>, 'inventory', 'an inventory file') ?? 'inventory.yml';
  return loadInventory(resolve(file));
}

export async function selectHosts(inv: Inventory, flags: GlobalFlags | string | undefined): Promise<Host[]> {
  const { limitHosts } = await import('../inventory/load.js');
  const limit = typeof flags === 'object' ? flagText(flags as Record<string, unknown>, 'limit', 'host names (--limit h1,h2)') : flags;
  const sel = limitHosts(inv, limit);
  if (sel.length === 0) throw new UsageError('no hosts selected', { hint: 'check --limit against `chops inventory check`' });
  return sel;
}

/** A count flag (--parallel-shards): plain decimal digits, 1 to MAX (the same check as the inventory's integers). */
export function positiveInt(flags: Record<string, unknown>, name: string, dflt: number, max = 10_000): number {
  const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const text = flagText(flags, flags[name] !== undefined ? name : camel, 'a number');
  if (text === undefined) return dflt;
  const checked = decimalInt(text, 1, max);
  if (!checked.ok) throw new UsageError(`--${name}: ${checked.message}`, { hint: checked.hint });
  return checked.value;
}

/** Flags that belong to chops itself; everything else on `run`/`plan` is a playbook parameter. */
export const GLOBAL_KEYS = new Set([
  'inventory',
  'i',
  'limit',
  'output',
  'json',
  'yes',
  'y',
  'parallelShards',
  'parallel-shards',
  'parallelHosts',
  'parallel-hosts',
  'help',
  'h',
  'color',
  '--',
]);

/** cac gives both kebab and camel forms; playbook params are declared in kebab-case. */
export function playbookArgs(flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flags)) {
    if (GLOBAL_KEYS.has(k)) continue;
    // cac hands over unknown multi-word flags in camelCase only (--reboot-timeout -> rebootTimeout)
    const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (GLOBAL_KEYS.has(kebab)) continue;
    if (kebab !== k && kebab in flags) continue; // camelCase twin of a kebab-case key we have
    const name = kebab === PLAYBOOK_VERSION_FLAG ? 'version' : kebab; // a playbook's --version (argv.ts)
    Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true }); // `--__proto__` stays data
  }
  return out;
}

/**
 * The selected hosts and the other replicas of their shards (the gates and the topology check
 * connect to those too), in inventory order.
 */
export function hostsReached(inv: Inventory, selected: Host[]): Host[] {
  const shards = new Set(selected.map((h) => `${h.cluster}\0${h.shard}`));
  return inv.hosts.filter((h) => shards.has(`${h.cluster}\0${h.shard}`));
}

/**
 * Refuse (exit 2) before anything connects when the local SSH files of the hosts a command will
 * reach are unusable: a missing or directory identity_file, a missing known_hosts (see
 * transport/credentials.ts). `chops inventory check` reports the same as warnings.
 */
export async function assertCredentials(inv: Inventory, selected: Host[]): Promise<void> {
  const { credentialProblems } = await import('../transport/credentials.js');
  const problems = await credentialProblems(hostsReached(inv, selected));
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20).map((p) => `${printable(p.where, { oneLine: true })}: host ${p.host}: ${p.message}\n    fix: ${p.hint}`);
  if (problems.length > 20) shown.push(`... and ${problems.length - 20} more`);
  throw new UsageError(
    `the SSH files on this machine cannot work for ${new Set(problems.map((p) => p.host)).size} host(s); nothing was connected:\n${shown.join('\n')}`,
    {
      hint: 'fix the paths in the inventory (or create the files), then check with `chops inventory check`',
    },
  );
}
