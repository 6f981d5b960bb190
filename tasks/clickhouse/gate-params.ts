// Gate thresholds come from the inventory (`gates:`); these flags override them for one run, on
// every host it touches (e.g. `--wait-timeout 30m` for a replica known to have a long catch-up).
import type { ParamSpec } from '../../src/engine/playbook.js';
import type { GateSettings, Inventory } from '../../src/inventory/types.js';

export const GATE_PARAMS: ParamSpec[] = [
  { name: 'max-delay', type: 'duration', description: 'gates: replication delay allowed on peers and after start (overrides gates.max_delay)' },
  { name: 'max-queue-size', type: 'int', description: 'gates: replication queue allowed on peers (overrides gates.max_queue_size)' },
  { name: 'max-inserts-in-queue', type: 'int', description: 'gates: inserts in queue allowed on peers (overrides gates.max_inserts_in_queue)' },
  { name: 'max-log-lag', type: 'int', description: 'gates: log entries a peer may lag behind (overrides gates.max_log_lag)' },
  { name: 'allow-mutations', type: 'boolean', description: 'gates: stop a replica even with unfinished mutations (overrides gates.allow_mutations)' },
  { name: 'max-active-queries', type: 'int', description: 'gates: queries allowed to run when a replica stops (overrides gates.max_active_queries)' },
  { name: 'wait-timeout', type: 'duration', description: 'gates: deadline of every wait (overrides gates.wait_timeout)' },
  { name: 'poll-interval', type: 'duration', description: 'gates: longest pause between two checks (overrides gates.poll_interval)' },
];

export type GateParams = Partial<Record<(typeof GATE_PARAMS)[number]['name'], unknown>>;

/** Apply the flags that were given to every host's thresholds (the state file keeps them for resume). */
export function applyGateOverrides(p: GateParams, inventory: Inventory): void {
  const o: Partial<GateSettings> = {};
  const num = (k: string) => (p[k] === undefined ? undefined : Number(p[k]));
  if (p['max-delay'] !== undefined) o.maxDelaySeconds = num('max-delay')! / 1000;
  if (p['max-queue-size'] !== undefined) o.maxQueueSize = num('max-queue-size');
  if (p['max-inserts-in-queue'] !== undefined) o.maxInsertsInQueue = num('max-inserts-in-queue');
  if (p['max-log-lag'] !== undefined) o.maxLogLag = num('max-log-lag');
  if (p['allow-mutations'] !== undefined) o.allowMutations = Boolean(p['allow-mutations']);
  if (p['max-active-queries'] !== undefined) o.maxActiveQueries = num('max-active-queries');
  if (p['wait-timeout'] !== undefined) o.waitTimeoutSeconds = num('wait-timeout')! / 1000;
  if (p['poll-interval'] !== undefined) o.pollIntervalMs = num('poll-interval');
  if (Object.keys(o).length === 0) return;
  for (const h of inventory.hosts) h.gates = { ...h.gates, ...o };
}
