// Per-host memory of a move (what a later step, a rollback or a resumed run needs): figures
// (downtime, bytes), the volume's fstab entry, row counts before the stop. The engine's
// ctx.memory (persisted in the run state) is used when the engine has it; otherwise an in-process
// map, and every step re-derives what it can from the host's real state anyway.
import type { StepContext } from '../../src/engine/playbook.js';

export interface Memory {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

export function memoryOf(ctx: StepContext<any>): Memory {
  const m = (ctx as unknown as { memory?: Memory }).memory;
  if (m && typeof m.get === 'function') return m;
  const k = `move-data.memory:${ctx.host.name}`;
  let map = ctx.run.shared.get(k) as Map<string, unknown> | undefined;
  if (!map) ctx.run.shared.set(k, (map = new Map()));
  const mm = map;
  return { get: <T>(key: string) => mm.get(key) as T | undefined, set: (key, value) => void mm.set(key, value) };
}

/** Keys, namespaced by area (TEAM.md). */
export const MEM = {
  volume: 'move-data.volume',
  passes: 'move-data.passes',
  stoppedAt: 'move-data.stoppedAt',
  healthyAt: 'move-data.healthyAt',
  bytesOnline: 'move-data.bytesOnline',
  bytesOffline: 'move-data.bytesOffline',
  countsBefore: 'move-data.countsBefore',
  identical: 'move-data.provenIdentical',
  lockHolder: 'move-data.backupLockPid',
  swapped: 'move-data.swapped',
} as const;
