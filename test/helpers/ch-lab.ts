// Helpers for tests and benchmarks against the replicated ClickHouse lab (test/lab/lab.ts): talk to the
// nodes over HTTP from this machine, run commands inside a container, run the chops CLI as a
// child process, and write variants of the lab inventory.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { type Lab, labExec, labOpen, labUp } from '../lab/lab.js';
import { readRunStateIn } from './run-state.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface LabNode {
  name: string;
  address: string;
  shard: string;
  replica: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Run SQL on NODE over HTTP (default user), on a fresh connection that is closed afterwards: an
 * idle kept-alive connection would hold the server's shutdown for seconds and skew timings.
 * The body on 200, an Error with ClickHouse's text otherwise.
 */
export function chQuery(node: LabNode, sql: string, opts: { timeoutMs?: number; settings?: Record<string, string | number> } = {}): Promise<string> {
  const qs = new URLSearchParams(Object.entries(opts.settings ?? {}).map(([k, v]) => [k, String(v)]));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: node.address, port: 8123, path: `/?${qs}`, method: 'POST', agent: false, timeout: opts.timeoutMs ?? 10_000, headers: { connection: 'close' } },
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
        nodes.map((n) => chQuery(n, "SELECT sum(queue_size), sum(is_readonly), min(active_replicas) FROM system.replicas WHERE database = 'lab'", { timeoutMs: 3000 })),
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

export interface ChLab {
  lab: Lab;
  name: string;
  dir: string;
  inventoryPath: string;
  nodes: LabNode[];
  /** Tear the lab down (idempotent); a no-op for a reused lab. */
  down(): Promise<void>;
}

/**
 * Bring up a fresh ClickHouse lab NAME (4 nodes, 2 shards × 2 replicas; test/lab/lab.ts), or with
 * REUSE (a lab directory, e.g. from CHOPS_TEST_LAB) use a running one and never tear it down.
 */
export async function chLabUp(name: string, reuse?: string): Promise<ChLab> {
  const lab = reuse ? labOpen(path.basename(reuse), reuse) : await labUp({ name, hosts: 4, clickhouse: true });
  return {
    lab,
    name: lab.name,
    dir: lab.dir,
    inventoryPath: lab.inventoryPath,
    nodes: lab.hosts.map((h) => ({ name: h.name, address: h.address, shard: h.shard, replica: h.replica })),
    down: async () => {
      if (!reuse) await lab.down();
    },
  };
}

/** Run SHELL_CMD as root inside a lab container (nsenter; works with sshd or ClickHouse down); its stdout. */
export async function labSh(lab: ChLab, host: string, shellCmd: string): Promise<string> {
  return (await labExec(lab.lab, host, shellCmd)).stdout;
}

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunningProcess {
  pid: number;
  done: Promise<ProcResult>;
  kill(sig: NodeJS.Signals): void;
}

/** Spawn a process; ONLINE sees every stdout line as it arrives. */
export function startProcess(cmd: string, args: string[], opts: { onLine?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): RunningProcess {
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) opts.onLine?.(l);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<ProcResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 }));
  });
  return { pid: child.pid!, done, kill: (sig) => child.kill(sig) };
}

export function runProcess(cmd: string, args: string[]): Promise<ProcResult> {
  return startProcess(cmd, args).done;
}

/** The built CLI: node bin/chops.js ARGS. */
export function chops(args: string[], opts: { onLine?: (line: string) => void } = {}): RunningProcess {
  return startProcess(process.execPath, [path.join(REPO, 'bin/chops.js'), ...args], opts);
}

/** `run <id>: …` — the first line of a plain-output run. */
export function runIdOf(stdout: string): string | undefined {
  return /^run (\S+):/m.exec(stdout)?.[1];
}

/**
 * Write a variant of the lab inventory next to it (same state dir, so runs share the lock and
 * state) and return its path. EDIT changes the parsed YAML in place.
 */
export function inventoryVariant(inventoryPath: string, suffix: string, edit: (doc: any) => void): string {
  const doc = parseYaml(readFileSync(inventoryPath, 'utf8'));
  edit(doc);
  const out = inventoryPath.replace(/\.yml$/, `-${suffix}.yml`);
  writeFileSync(out, stringifyYaml(doc));
  return out;
}

/** Read a run's state (state.yml with its journal folded in). */
export function readRunState(inventoryPath: string, runId: string): any {
  const inv = parseYaml(readFileSync(inventoryPath, 'utf8'));
  return readRunStateIn(inv.state.dir, runId);
}
