// Traffic around a rolling run on the ClickHouse lab: synchronous inserts through the Distributed
// table (which batches were acknowledged), and a /ping sampler (which replicas were down when).
// Both on fresh connections, as a client fleet would see the cluster.
import { type LabNode, chQuery, ping } from './clickhouse.js';
import { sleep } from './process.js';

/** Insert a batch of 10 rows (ids batch*100+k) every INTERVAL ms through lab.events; a refused batch goes to the next node. */
export function startInserter(nodes: LabNode[], intervalMs = 50) {
  const acked: number[] = [];
  let failed = 0;
  let stop = false;
  let target = 0;
  const loop = (async () => {
    for (let batch = 1; !stop; batch++) {
      const rows = Array.from({ length: 10 }, (_, k) => `(now(), ${batch * 100 + k}, 'b${batch}')`).join(',');
      try {
        await chQuery(nodes[target], `INSERT INTO lab.events (ts, id, v) VALUES ${rows}`, { settings: { insert_distributed_sync: 1 }, timeoutMs: 10_000 });
        acked.push(batch);
      } catch {
        failed++;
        target = (target + 1) % nodes.length;
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

/** Ping every node every INTERVAL ms and keep the timeline. */
export function startSampler(nodes: LabNode[], intervalMs = 50) {
  const samples: Array<{ t: number; state: Record<string, 'up' | 'down' | 'timeout'> }> = [];
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

/** Samples where two replicas of one shard were not up at once, as "time: a and b". */
export function twoDownAtOnce(nodes: LabNode[], samples: Array<{ t: number; state: Record<string, string> }>): string[] {
  const shards = [...new Set(nodes.map((n) => n.shard))].map((s) => nodes.filter((n) => n.shard === s));
  const out: string[] = [];
  for (const s of samples)
    for (const shard of shards) {
      const down = shard.filter((n) => s.state[n.name] !== 'up').map((n) => n.name);
      if (down.length > 1) out.push(`${new Date(s.t).toISOString()}: ${down.join(' and ')}`);
    }
  return out;
}

/** Acknowledged batches whose rows are not all on the replicas (read per shard from lab.events_local; replicas must agree). */
export async function lostBatches(nodes: LabNode[], acked: number[]): Promise<{ lost: number[]; disagree: string[] }> {
  const shards = [...new Set(nodes.map((n) => n.shard))].map((s) => nodes.filter((n) => n.shard === s));
  const present = new Set<number>();
  const disagree: string[] = [];
  for (const shard of shards) {
    const per = await Promise.all(shard.map((n) => chQuery(n, 'SELECT id FROM lab.events_local ORDER BY id')));
    if (per.some((x) => x !== per[0])) disagree.push(shard.map((n) => n.name).join('/'));
    for (const id of per[0].split('\n').filter(Boolean)) present.add(Number(id));
  }
  return { lost: acked.filter((b) => !Array.from({ length: 10 }, (_, k) => b * 100 + k).every((id) => present.has(id))), disagree };
}
