// Load on a ClickHouse lab while a playbook works on it: an inserter writing through the
// Distributed table (synchronously, so an acknowledged batch is on a replica) and a sampler
// pinging every node (fresh connection each time), with the checks every rolling test makes:
// never two replicas of a shard down, every acknowledged batch present on both replicas.
import assert from 'node:assert/strict';
import { type LabNode, chQuery, ping, waitClusterIdle } from './clickhouse.js';
import { sleep } from './process.js';

/** Insert a batch of 10 rows every INTERVAL ms through lab.events on NODES (ids from FIRST*100). */
export function startInserter(nodes: LabNode[], intervalMs = 50, first = 1) {
  const acked: number[] = [];
  let failed = 0;
  let stop = false;
  let target = 0;
  const loop = (async () => {
    for (let batch = first; !stop; batch++) {
      const rows = Array.from({ length: 10 }, (_, k) => `(now(), ${batch * 100 + k}, 'b${batch}')`).join(',');
      try {
        await chQuery(nodes[target], `INSERT INTO lab.events (ts, id, v) VALUES ${rows}`, { settings: { insert_distributed_sync: 1 }, timeoutMs: 10_000 });
        acked.push(batch);
      } catch {
        failed++;
        target = (target + 1) % nodes.length; // that node is going down: use another one
      }
      await sleep(intervalMs);
    }
  })();
  return {
    acked,
    get failed() {
      return failed;
    },
    async stop() {
      stop = true;
      await loop;
    },
  };
}

export type Sample = { t: number; state: Record<string, 'up' | 'down' | 'timeout'> };

/** Ping every node every INTERVAL ms (fresh connection each time) and keep the timeline. */
export function startSampler(nodes: LabNode[], intervalMs = 50) {
  const samples: Sample[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const t = Date.now();
      const states = await Promise.all(nodes.map((n) => ping(n, 1000)));
      samples.push({ t, state: Object.fromEntries(nodes.map((n, i) => [n.name, states[i]])) });
      await sleep(Math.max(0, intervalMs - (Date.now() - t)));
    }
  })();
  return {
    samples,
    async stop() {
      stop = true;
      await loop;
    },
  };
}

export const shardsOf = (nodes: LabNode[]): LabNode[][] => [...new Set(nodes.map((n) => n.shard))].map((s) => nodes.filter((n) => n.shard === s));

/** At no sampled moment were two replicas of one shard unreachable; the names seen down, and the largest gap between samples. */
export function assertNeverTwoDown(nodes: LabNode[], samples: Sample[]): { seenDown: Set<string>; maxGap: number } {
  const seenDown = new Set<string>();
  for (const s of samples) {
    for (const shard of shardsOf(nodes)) {
      const down = shard.filter((n) => s.state[n.name] !== 'up').map((n) => n.name);
      for (const n of down) seenDown.add(n);
      assert.ok(down.length < 2, `at ${new Date(s.t).toISOString()} shard ${shard[0].shard} had ${down.join(' and ')} down at once`);
    }
  }
  const gaps = samples.slice(1).map((s, i) => s.t - samples[i].t);
  return { seenDown, maxGap: gaps.length ? Math.max(...gaps) : 0 };
}

/** Replicas converge to the same rows and every acknowledged batch is there; the batches missing. */
export async function lostBatches(nodes: LabNode[], acked: number[]): Promise<number[]> {
  await waitClusterIdle(nodes);
  const present = new Set<number>();
  for (const shard of shardsOf(nodes)) {
    const perReplica = await Promise.all(shard.map((n) => chQuery(n, 'SELECT id FROM lab.events_local ORDER BY id')));
    assert.equal(perReplica[0], perReplica[1], `replicas ${shard.map((n) => n.name).join('/')} of shard ${shard[0].shard} hold the same rows`);
    for (const id of perReplica[0].split('\n').filter(Boolean)) present.add(Number(id));
  }
  return acked.filter((b) => !Array.from({ length: 10 }, (_, k) => b * 100 + k).every((id) => present.has(id)));
}
