// Canaries for a rolling phase: N replicas (never two of one shard) do the phase's work first,
// a soak step watches them, and only then the rest of the replicas follow. Built from three
// ordinary phases (Phase.hosts picks the hosts of each), so the runner, the run state, resume
// and the graph need nothing else: a resumed run skips the canaries and the soak once they are
// done, and repeats a soak that was interrupted.
import { UsageError } from '../errors.js';
import { groupByShard } from '../inventory/topology.js';
import type { Phase, PhaseHost, Step } from './playbook.js';

/**
 * The first N canaries of SELECTED: the first selected replica of each shard, shards in
 * inventory order, so no shard ever has two. More canaries than shards is a usage error.
 */
export function pickCanaries<H extends PhaseHost>(selected: H[], n: number): H[] {
  const shards = groupByShard(selected);
  if (n > shards.length) {
    throw new UsageError(`--canary ${n}: the selection has ${shards.length} shard(s), and canaries are never two replicas of one shard`, {
      hint: `give --canary 1 to ${shards.length}`,
    });
  }
  return shards.slice(0, n).map((replicas) => replicas[0]);
}

/** PHASE as [canaries, soak, the rest]; COUNT 0 leaves it as it is. */
export function withCanaries<P>(phase: Phase<P>, count: number, soak: Step<P>): Phase<P>[] {
  if (count <= 0) return [phase];
  const canaries = <H extends PhaseHost>(sel: H[]) => pickCanaries(phase.hosts ? phase.hosts(sel) : sel, count);
  return [
    { ...phase, name: `${phase.name}: canaries`, hosts: canaries },
    { name: 'soak', scope: 'once', steps: [soak] },
    {
      ...phase,
      name: `${phase.name}: the rest`,
      hosts: <H extends PhaseHost>(sel: H[]) => {
        const c = new Set(canaries(sel).map((h) => h.name));
        return (phase.hosts ? phase.hosts(sel) : sel).filter((h) => !c.has(h.name));
      },
    },
  ];
}
