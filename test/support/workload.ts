// What a maintenance run must not disturb, measured while it runs: a client inserting through
// the Distributed table (which batches were acknowledged) and a liveness sampler pinging every
// node (the timeline of who was up). Used by the lab tests that take replicas down.
import assert from 'node:assert/strict';
import { type LabNode, chQuery, ping, waitClusterIdle } from './clickhouse.js';
import { sleep } from './process.js';

/** Rows per inserted batch; batch B holds the ids B*100 … B*100+9. */
export const BATCH_ROWS = 10;

/** The ids of batch B (see startInserter). */
export function batchIds(batch: number): number[] {
  return Array.from({ length: BATCH_ROWS }, (_, k) => batch * 100 + k);
}

export interface Inserter {
  /** Batches the server acknowledged (synchronous Distributed insert), in order. */
  acked: number[];
  /** Batches refused (the next one went to another node). */
  readonly failed: number;
  stop(): Promise<void>;
}

/**
 * Insert a batch of BATCH_ROWS rows into lab.events every INTERVAL ms, synchronously
 * (insert_distributed_sync), batches numbered from FIRST; a node that refuses is left for the next one, as a client does.
 */
export function startInserter(nodes: LabNode[], intervalMs = 50, first = 1): Inserter {
  const acked: number[] = [];
  let failed = 0;
  let stop = false;
  let target = 0;
  const loop = (async () => {
    for (let batch = first; !stop; batch++) {
      const rows = batchIds(batch)
        .map((id) => `(now(), ${id}, 'b${batch}')`)
        .join(',');
      try {
        await chQuery(nodes[target], `INSERT INTO lab.events (ts, id, v) VALUES ${rows}`, { settings: { insert_distributed_sync: 1 }, timeoutMs: 10_000 });
        acked.push(batch);
      } catch {
        failed++;
        target = (target + 1) % nodes.length; // that node is down or going down: use another one
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

export interface LivenessSample {
  t: number;
  state: Record<string, 'up' | 'down' | 'timeout'>;
}

/** /ping every node every INTERVAL ms (a fresh connection each time) and keep the timeline. */
export function startSampler(nodes: LabNode[], intervalMs = 50): { samples: LivenessSample[]; stop(): Promise<void> } {
  const samples: LivenessSample[] = [];
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
export function assertNeverTwoDown(nodes: LabNode[], samples: LivenessSample[]): { seenDown: Set<string>; maxGap: number } {
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
  return acked.filter((b) => !batchIds(b).every((id) => present.has(id)));
}
