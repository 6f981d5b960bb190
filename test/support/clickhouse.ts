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
export async function uptimes(nodes: LabNode[]): Promise<{ at: number; up: Record<string, number> }> {
  const at = Date.now();
  const vals = await Promise.all(nodes.map((n) => chQuery(n, 'SELECT uptime()', { timeoutMs: 3000 }).then(Number, () => NaN)));
  return { at, up: Object.fromEntries(nodes.map((n, i) => [n.name, vals[i]])) };
}

/** Names of the nodes whose server (re)started between two uptimes() readings (1.5 s slack). */
export function restartedBetween(a: { at: number; up: Record<string, number> }, b: { at: number; up: Record<string, number> }): string[] {
  const gap = (b.at - a.at) / 1000;
  return Object.keys(a.up).filter((n) => Number.isNaN(a.up[n]) || !(b.up[n] >= a.up[n] + gap - 1.5));
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
