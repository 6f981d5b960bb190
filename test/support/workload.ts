// What a maintenance run must not disturb, measured while it runs: a client inserting through
// the Distributed table (which batches were acknowledged) and a liveness sampler pinging every
// node (the timeline of who was up). Used by the lab tests that take replicas down.
import { type LabNode, chQuery, ping } from './clickhouse.js';
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
 * (insert_distributed_sync); a node that refuses is left for the next one, as a client does.
 */
export function startInserter(nodes: LabNode[], intervalMs = 50): Inserter {
  const acked: number[] = [];
  let failed = 0;
  let stop = false;
  let target = 0;
  const loop = (async () => {
    for (let batch = 1; !stop; batch++) {
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
