// Variants of an inventory for one test (a different known_hosts, a host moved, a bad value):
// the one way tests write them, next to the original so runs share its state dir and lock.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { readRunStateIn } from './run-state.js';

/** Write INVENTORY with EDIT applied (to the parsed YAML, in place) as <inventory>-SUFFIX.yml; its path. */
export function inventoryVariant(inventoryPath: string, suffix: string, edit: (doc: any) => void): string {
  const doc = parseYaml(readFileSync(inventoryPath, 'utf8'));
  edit(doc);
  const out = inventoryPath.replace(/\.yml$/, `-${suffix}.yml`);
  writeFileSync(out, stringifyYaml(doc));
  return out;
}

/** Same, editing the text (for inputs YAML would normalise away: anchors, odd scalars). */
export function inventoryTextVariant(inventoryPath: string, suffix: string, edit: (text: string) => string): string {
  const out = inventoryPath.replace(/\.yml$/, `-${suffix}.yml`);
  writeFileSync(out, edit(readFileSync(inventoryPath, 'utf8')));
  return out;
}

/** A run's state as chops reads it: state.yml with the run's journal folded in. */
export function readRunState(inventoryPath: string, runId: string): any {
  const inv = parseYaml(readFileSync(inventoryPath, 'utf8'));
  return readRunStateIn(path.resolve(path.dirname(inventoryPath), inv.state.dir), runId);
}

/**
 * An inventory of `connection: local` hosts, one cluster `c1`, a shard per list of host names, its
 * state under DIR/state (for engine tests that run on this machine's shells).
 */
export function localInventoryText(dir: string, shards: string[][]): string {
  const rows = shards.map((s) => `      - replicas: [${s.map((h) => `{host: ${h}, connection: local}`).join(', ')}]`);
  return `version: 1\nstate: {dir: ${dir}/state}\nclusters:\n  c1:\n    shards:\n${rows.join('\n')}\n`;
}
