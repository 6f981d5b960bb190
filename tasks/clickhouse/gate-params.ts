// The gated playbooks' flags (rolling-restart, exec --rolling): one per threshold of
// src/gates/thresholds.ts, checked by the same range check as the inventory's `gates:`. They
// override the inventory for one run, on every host it touches (e.g. `--wait-timeout 30m` for a
// replica known to have a long catch-up); the gates read the result with gatesFor(ctx).
import type { ParamSpec, StepContext } from '../../src/engine/playbook.js';
import { THRESHOLDS, effectiveGates, thresholdCheck, type GateSettings } from '../../src/gates/thresholds.js';

export const GATE_PARAMS: ParamSpec[] = THRESHOLDS.map((t) => ({
  name: t.flag,
  type: t.kind === 'duration' ? 'duration' : t.kind === 'count' ? 'int' : 'boolean',
  description: `gates: ${t.doc} (overrides gates.${t.key})`,
  check: thresholdCheck(t),
}));

export type GateParams = Partial<Record<string, unknown>>;

/** The thresholds the gates of this step obey on its host: inventory, then this run's flags. */
export function gatesFor(ctx: StepContext<any>): GateSettings {
  return effectiveGates(ctx.host.def.gates, ctx.params as Record<string, unknown>);
}
