// ClickHouse lab nodes as tests see them from this machine: SQL over HTTP on a fresh
// connection, /ping, uptimes (who restarted), and "wait until the cluster is idle".
import http from 'node:http';
import { sleep } from './process.js';

export interface LabNode {
  name: string;
  address: string;
  shard: string;
  replica: string;
}

/**
 * Run SQL on NODE over HTTP (default user), on a fresh connection that is closed afterwards: an
 * idle kept-alive connection would hold the server's shutdown for seconds and skew timings.
 * The body on 200, an Error with ClickHouse's text otherwise.
 */
export function chQuery(
  node: LabNode,
  sql: string,
  opts: { timeoutMs?: number; settings?: Record<string, string | number>; user?: string; password?: string } = {},
): Promise<string> {
  const qs = new URLSearchParams(Object.entries(opts.settings ?? {}).map(([k, v]) => [k, String(v)]));
  const headers: Record<string, string> = { connection: 'close' };
  if (opts.user) headers.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: node.address, port: 8123, path: `/?${qs}`, method: 'POST', agent: false, timeout: opts.timeoutMs ?? 10_000, headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c));
        res.on('error', reject);
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${node.name}: HTTP ${res.statusCode}: ${body.trim().slice(0, 300)}`))));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${node.name}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(sql);
  });
}

/** GET /ping on a fresh connection: 'up' (Ok.), 'down' (refused, reset, error status) or 'timeout'. */
export function ping(node: LabNode, timeoutMs = 1000): Promise<'up' | 'down' | 'timeout'> {
  return new Promise((resolve) => {
    const req = http.get({ host: node.address, port: 8123, path: '/ping', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 && body.startsWith('Ok.') ? 'up' : 'down'));
      res.on('error', () => resolve('down'));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', () => resolve('down'));
  });
}

/** uptime() of every node in seconds (NaN when it does not answer), read at about the same moment. */
/** When each node's server started (ms since the epoch, from uptime() and the moment it answered; NaN: no answer). */
export interface Uptimes {
  startedAt: Record<string, number>;
}

export async function uptimes(nodes: LabNode[]): Promise<Uptimes> {
  // A reading that fails is tried again (a loaded lab answers late); a node still not answering
  // after that reads NaN, which restartedBetween counts as restarted.
  const read = async (n: LabNode): Promise<number> => {
    for (let i = 0; ; i++) {
      try {
        const up = Number(await chQuery(n, 'SELECT uptime()', { timeoutMs: 3000 }));
        return Date.now() - up * 1000;
      } catch {
        if (i === 2) return NaN;
        await sleep(300);
      }
    }
  };
  const vals = await Promise.all(nodes.map(read));
  return { startedAt: Object.fromEntries(nodes.map((n, i) => [n.name, vals[i]])) };
}

/**
 * Names of the nodes whose server (re)started between two uptimes() readings: its start moved
 * later by more than 1.5 s (uptime() counts whole seconds; each reading is timed when it answered).
 */
export function restartedBetween(a: Uptimes, b: Uptimes): string[] {
  return Object.keys(a.startedAt).filter((n) => Number.isNaN(a.startedAt[n]) || !(b.startedAt[n] <= a.startedAt[n] + 1500));
}

/** Wait until every node answers SELECT 1 and every replica has an empty queue and is writable. */
export async function waitClusterIdle(nodes: LabNode[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const rows = await Promise.all(
        nodes.map((n) =>
          chQuery(n, "SELECT sum(queue_size), sum(is_readonly), min(active_replicas) FROM system.replicas WHERE database = 'lab'", { timeoutMs: 3000 }),
        ),
      );
      last = rows.map((r, i) => `${nodes[i].name}: ${r.trim()}`).join('; ');
      if (rows.every((r) => /^0\t0\t2$/.test(r.trim()))) return;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`cluster not idle after ${timeoutMs} ms: ${last}`);
    await sleep(200);
  }
}
