// What `chops graph NAME` can draw: every playbook of playbooks/index.ts (from its own phases,
// for the given parameters), and flows defined next to the code they describe (FLOWS).
import type { Host, Inventory } from '../inventory/types.js';
import type { Phase, Playbook } from '../engine/playbook.js';
import { UsageError } from '../errors.js';
import { type Diagram, type FlowGraph, flowToDiagram } from './diagram.js';
import { playbookDiagram } from './playbook-flow.js';

/** Flowcharts that are not playbooks, by the name `chops graph` knows them under. */
export const FLOWS: Record<string, { description: string; load: () => Promise<FlowGraph> }> = {
  'backup-agent': {
    description: 'the backup agent installed by backup-install (templates/backup/agent-flow.ts, checked against the script)',
    load: async () => (await import('../../templates/backup/agent-flow.js')).AGENT_FLOW,
  },
};

export async function drawableNames(): Promise<string[]> {
  const { PLAYBOOKS } = await import('../../playbooks/index.js');
  return [...Object.keys(PLAYBOOKS), ...Object.keys(FLOWS)];
}

export interface DrawOptions {
  /** Raw playbook parameters (as from the command line); required ones default to placeholders. */
  raw?: Record<string, unknown>;
  /** With an inventory, rolling phases are drawn per shard with the selected replicas. */
  inventory?: Inventory;
  selected?: Host[];
}

export async function diagramFor(name: string, o: DrawOptions = {}): Promise<Diagram> {
  const flow = FLOWS[name];
  if (flow) return flowToDiagram(name, await flow.load());
  const { PLAYBOOKS, loadPlaybook } = await import('../../playbooks/index.js');
  if (!PLAYBOOKS[name]) {
    throw new UsageError(`unknown playbook or flow "${name}"`, { hint: `available: ${(await drawableNames()).join(', ')}` });
  }
  const pb = await loadPlaybook(name);
  const { parseParams } = await import('../engine/params.js');
  const params = parseParams(pb, withPlaceholders(pb, o.raw ?? {}));
  const inventory = o.inventory ?? emptyInventory();
  let phases: Phase[];
  try {
    phases = pb.phases(params, inventory);
  } catch (err) {
    if (o.inventory) throw err;
    throw new NeedsInventory(`playbook ${name} cannot be drawn without an inventory (its phases read it): ${(err as Error).message}`, {
      hint: `give one: chops graph ${name} -i inventory.yml`,
      cause: err,
    });
  }
  const hosts = o.selected ?? o.inventory?.hosts;
  return playbookDiagram(title(name, o.raw ?? {}), phases, hosts ? { hosts } : undefined);
}

/** The playbook builds its phases from the inventory (backup-install reads its `backup:` section). */
export class NeedsInventory extends UsageError {}

/** A required parameter the operator did not give is drawn as <name>: the flow, not the values. */
function withPlaceholders(pb: Playbook, raw: Record<string, unknown>): Record<string, unknown> {
  const out = { ...raw };
  for (const p of pb.params) {
    if (!p.required || out[p.name] !== undefined) continue;
    if (p.type === 'string' || p.type === 'strings') out[p.name] = `<${p.name}>`;
    else if (p.type === 'choice' && p.choices?.length) out[p.name] = p.choices[0];
    else if (p.type === 'boolean') out[p.name] = true;
    else if (p.type === 'duration') out[p.name] = '1s';
    else out[p.name] = 1;
  }
  return out;
}

function title(name: string, raw: Record<string, unknown>): string {
  const args = Object.entries(raw).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => (x === true ? `--${k}` : `--${k} ${String(x)}`)));
  return [name, ...args].join(' ');
}

function emptyInventory(): Inventory {
  return { path: '(none)', hash: '', clusters: [], hosts: [], stateDir: '', logRetentionDays: 0 };
}
