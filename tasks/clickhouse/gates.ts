// Health gates between replicas (/work/shared/notes/health-gates.md): before a replica is taken
// down its peers must be up and caught up and it must have nothing in flight; after it is started
// it must be a caught-up replica again before the next replica of the shard goes.
//
// Every gate polls until it passes or its deadline (host.def.gates.waitTimeoutSeconds) passes, and
// then throws a GateError naming the host, the gate and the last value seen: a gate never lets a
// run silently continue. A peer whose service is stopped fails at once instead of after the full
// deadline. Thresholds come from the inventory (host.def.gates).
//
// Waits are NOT cut short by run.signal: when the run stops (a failure on another shard), a
// replica that has started its steps finishes them (see Runner), and "wait until healthy" is
// exactly what must finish.
//
// Plan mode: the facts are real (read-only queries run), but nothing is waited for: each gate is
// checked once; a refusal (peer down) fails the plan as the run would, anything a run would wait
// for is reported in the step's note.
import type { RunContext, StepContext, StepResult } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import type { Host } from '../../src/inventory/types.js';
import { ChopsError, GateError } from '../../src/errors.js';
import { chClient, type ChClient } from '../../src/clickhouse/client.js';
import { ClickHouseError } from '../../src/clickhouse/errors.js';
import { sql } from '../../src/clickhouse/sql.js';
import { shq } from '../../src/quote.js';
import { serviceState, type ServiceState } from './service.js';

// ------------------------------------------------------------------ reusable pieces

/** One row of system.replicas, numbers normalised (18.16 sends UInt64 as strings). */
export interface ReplicaRow {
  database: string;
  table: string;
  isReadonly: boolean;
  isSessionExpired: boolean;
  queueSize: number;
  insertsInQueue: number;
  mergesInQueue: number;
  /** log_max_index - log_pointer, never negative (a caught-up replica's pointer is one past the max). */
  logLag: number;
  absoluteDelay: number;
  activeReplicas: number;
  totalReplicas: number;
}

/** system.replicas of the server behind CLIENT (every replicated table). */
export async function replicaStatus(client: ChClient, opts: { timeoutMs?: number } = {}): Promise<ReplicaRow[]> {
  const rows = await client.query<Record<string, unknown>>(
    `SELECT database, table, is_readonly, is_session_expired, queue_size, inserts_in_queue, merges_in_queue,
            greatest(toInt64(log_max_index) - toInt64(log_pointer), 0) AS log_lag,
            absolute_delay, active_replicas, total_replicas
     FROM system.replicas ORDER BY database, table`,
    { timeoutMs: opts.timeoutMs ?? 10_000 },
  );
  return rows.map((r) => ({
    database: String(r.database),
    table: String(r.table),
    isReadonly: Number(r.is_readonly) !== 0,
    isSessionExpired: Number(r.is_session_expired) !== 0,
    queueSize: Number(r.queue_size),
    insertsInQueue: Number(r.inserts_in_queue),
    mergesInQueue: Number(r.merges_in_queue),
    logLag: Number(r.log_lag),
    absoluteDelay: Number(r.absolute_delay),
    activeReplicas: Number(r.active_replicas),
    totalReplicas: Number(r.total_replicas),
  }));
}

export interface ReplicaSummary {
  tables: number;
  readonly: string[];
  sessionExpired: string[];
  queueSize: number;
  insertsInQueue: number;
  maxLogLag: number;
  maxDelay: number;
  /** Tables where active_replicas < total_replicas, as "db.t (1/2)". */
  missingReplicas: string[];
}

export function summarizeReplicas(rows: ReplicaRow[]): ReplicaSummary {
  const name = (r: ReplicaRow) => `${r.database}.${r.table}`;
  return {
    tables: rows.length,
    readonly: rows.filter((r) => r.isReadonly).map(name),
    sessionExpired: rows.filter((r) => r.isSessionExpired).map(name),
    queueSize: rows.reduce((a, r) => a + r.queueSize, 0),
    insertsInQueue: rows.reduce((a, r) => a + r.insertsInQueue, 0),
    maxLogLag: rows.reduce((a, r) => Math.max(a, r.logLag), 0),
    maxDelay: rows.reduce((a, r) => Math.max(a, r.absoluteDelay), 0),
    missingReplicas: rows.filter((r) => r.activeReplicas < r.totalReplicas).map((r) => `${name(r)} (${r.activeReplicas}/${r.totalReplicas} active)`),
  };
}

export interface GateCheck<T = unknown> {
  ok: boolean;
  /** What was observed, for progress notes and the timeout message: "queue_size=12, absolute_delay=40". */
  value: string;
  /** Which gate this value belongs to, when one poll evaluates several. */
  gate?: string;
  /** Stop now with this message: waiting cannot help (e.g. the peer's service is stopped). */
  fatal?: string;
  data?: T;
}

export interface GateOutcome<T = unknown> {
  passed: boolean;
  elapsedMs: number;
  value: string;
  gate: string;
  data?: T;
}

export interface PollOptions {
  timeoutMs: number;
  intervalMs: number;
  hint?: string;
  /** Check once instead of waiting (plan mode): the outcome says whether it passed. */
  once?: boolean;
  /** Stop polling quietly (a sibling gate already failed); the outcome is "not passed". */
  signal?: AbortSignal;
  /** Message of the GateError on timeout (default: `not passed after Ns`). */
  timeoutMessage?: (seconds: number) => string;
}

/**
 * Evaluate CHECK every intervalMs until it passes; throw a GateError (host, gate, last value) when
 * the deadline passes or the check says `fatal`. An exception from CHECK (the server not answering
 * yet) is a failed poll, not a failed gate. Progress goes to host.note(), throttled.
 */
export async function pollGate<T>(host: HostHandle, gate: string, o: PollOptions, check: () => Promise<GateCheck<T>>): Promise<GateOutcome<T>> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  let last: GateCheck<T> = { ok: false, value: 'not checked yet' };
  let lastNote = '';
  let lastNoteAt = 0;
  let attempt = 0;
  for (;;) {
    try {
      host.facts.clear(); // each poll reads the host afresh
      last = await check();
    } catch (err) {
      last = { ok: false, value: errorValue(err) };
    }
    const elapsedMs = Date.now() - t0;
    if (last.ok) return { passed: true, elapsedMs, value: last.value, gate: last.gate ?? gate, data: last.data };
    if (last.fatal) throw new GateError(host.name, last.gate ?? gate, last.value, last.fatal, { hint: o.hint });
    if (o.once || o.signal?.aborted) return { passed: false, elapsedMs, value: last.value, gate: last.gate ?? gate, data: last.data };
    if (Date.now() >= deadline) {
      const secs = Math.round(o.timeoutMs / 1000);
      throw new GateError(host.name, last.gate ?? gate, last.value, o.timeoutMessage?.(secs) ?? `not passed after ${secs}s`, { hint: o.hint });
    }
    const text = `waiting for "${last.gate ?? gate}": ${last.value}`;
    if (text !== lastNote || Date.now() - lastNoteAt > 5_000) {
      host.note(`${text} (${Math.max(0, Math.ceil((deadline - Date.now()) / 1000))}s left)`);
      lastNote = text;
      lastNoteAt = Date.now();
    }
    // Poll fast at first and back off to the configured interval: a restarted server usually
    // answers within a second, and noticing it a whole poll interval late is pure downtime.
    const interval = Math.min(o.intervalMs, 25 * 1.5 ** attempt++);
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), o.signal);
  }
}

function errorValue(err: unknown): string {
  if (err instanceof ClickHouseError) {
    if (err.kind === 'connection') return 'server not answering';
    if (err.kind === 'timeout') return 'query timed out';
    return `error: ${err.code !== undefined ? `Code ${err.code}: ` : ''}${err.serverMessage.split('\n')[0].slice(0, 200)}`;
  }
  return `error: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function pollOptions(h: Host, plan: boolean, extra: Partial<PollOptions> = {}): PollOptions {
  return { timeoutMs: h.gates.waitTimeoutSeconds * 1000, intervalMs: h.gates.pollIntervalMs, once: plan, ...extra };
}

/** A plan's result for a gate a run would wait for: the facts now, no failure. */
function planNote(o: GateOutcome, h: Host): StepResult {
  return { changed: false, note: `gate "${o.gate}" not passing now: ${o.value} (a run would wait up to ${h.gates.waitTimeoutSeconds}s)`, data: { passedNow: false, gate: o.gate, value: o.value } };
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;

/** Wait for all, but once one fails stop the others (they see SIGNAL aborted) and throw the first error. */
async function allOrFirstError<T>(items: T[], fn: (item: T, signal: AbortSignal) => Promise<unknown>): Promise<unknown[]> {
  const ac = new AbortController();
  let first: unknown;
  const results = await Promise.allSettled(
    items.map((it) =>
      fn(it, ac.signal).catch((err) => {
        if (first === undefined) first = err;
        ac.abort();
        throw err;
      }),
    ),
  );
  if (first !== undefined) throw first;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
}

// ------------------------------------------------------------------ before stopping a replica

export interface PeerReport {
  host: string;
  tables: number;
  queueSize: number;
  maxDelay: number;
  passed: boolean;
  value: string;
}

/**
 * Before stopping ctx.host: every OTHER replica of its shard (from the inventory) answers and
 * every replicated table there is writable, has a live ZooKeeper session, a small queue and log
 * lag, all replicas active, and max(absolute_delay) within bounds. A peer whose service is not
 * running (or whose host does not answer ssh) fails at once.
 */
export async function checkPeersBeforeStop(ctx: StepContext): Promise<StepResult> {
  const self = ctx.host.def;
  const peers = ctx.run.peers(self);
  if (peers.length === 0) {
    // Nothing to protect: a single-replica shard is offline while its only replica is down.
    return { changed: false, note: `no other replica in shard ${self.shardName}: stopping ${self.name} takes the shard offline`, data: { peers: [] } };
  }
  const reports = (await allOrFirstError(peers, (p, signal) => checkOnePeer(ctx, p, signal))) as PeerReport[];
  if (ctx.run.plan && reports.some((r) => !r.passed)) {
    const bad = reports.filter((r) => !r.passed);
    return { changed: false, note: `gate "peers healthy" not passing now: ${bad.map((r) => `${r.host}: ${r.value}`).join('; ')} (a run would wait up to ${self.gates.waitTimeoutSeconds}s)`, data: { peers: reports } };
  }
  return {
    changed: false,
    note: `peers healthy: ${reports.map((r) => `${r.host} (queue ${r.queueSize}, delay ${r.maxDelay}s)`).join(', ')}`,
    data: { peers: reports },
  };
}

async function checkOnePeer(ctx: StepContext, peer: Host, signal: AbortSignal): Promise<PeerReport> {
  const self = ctx.host.def;
  const g = self.gates;
  const ph = ctx.run.handle(peer);
  const refuse = (why: string) => `refusing to stop ${self.name}: its peer ${peer.name} (shard ${peer.shardName}) is down/unhealthy: ${why}`;
  const hint = `bring ${peer.name} back to a healthy, caught-up replica first (chops status), then rerun/resume`;

  // A stopped peer cannot become healthy by waiting: fail fast. `unknown` (custom status command
  // output, or systemctl missing) falls through to the wait.
  const st = await peerServiceState(ph);
  if (st.state === 'inactive' || st.state === 'failed' || st.state === 'unreachable') {
    throw refusal(self.name, 'peers healthy', `${peer.name}: ${st.detail}`, refuse(st.detail), hint);
  }

  let client: ChClient;
  try {
    client = await chClient(ctx.run, peer);
  } catch (err) {
    throw refusal(self.name, 'peers healthy', `${peer.name}: ${errorValue(err)}`, refuse(`cannot open a ClickHouse connection: ${(err as Error).message}`), hint);
  }

  const outcome = await pollGate(
    ctx.host,
    'peers healthy',
    pollOptions(self, ctx.run.plan, {
      hint,
      signal,
      timeoutMessage: (s) => `not passed after ${s}s: refusing to stop ${self.name} while its peer ${peer.name} (shard ${peer.shardName}) is unhealthy or behind`,
    }),
    async (): Promise<GateCheck<PeerReport>> => {
      let rows: ReplicaRow[];
      try {
        rows = await replicaStatus(client);
      } catch (err) {
        if (err instanceof ClickHouseError && err.kind === 'connection') {
          const again = await peerServiceState(ph);
          if (again.state === 'inactive' || again.state === 'failed' || again.state === 'unreachable') {
            return { ok: false, value: `${peer.name}: ${again.detail}`, fatal: refuse(again.detail) };
          }
          return { ok: false, value: `${peer.name}: server not answering (service ${again.state})` };
        }
        throw err;
      }
      const s = summarizeReplicas(rows);
      const problems: string[] = [];
      if (s.readonly.length) problems.push(`read-only: ${s.readonly.join(', ')}`);
      if (s.sessionExpired.length) problems.push(`ZooKeeper session expired: ${s.sessionExpired.join(', ')}`);
      if (s.missingReplicas.length) problems.push(`inactive replicas: ${s.missingReplicas.join(', ')}`);
      const perTable = (f: (r: ReplicaRow) => number, max: number, label: string) =>
        rows.filter((r) => f(r) > max).forEach((r) => problems.push(`${r.database}.${r.table} ${label}=${f(r)} > ${max}`));
      perTable((r) => r.queueSize, g.maxQueueSize, 'queue_size');
      perTable((r) => r.insertsInQueue, g.maxInsertsInQueue, 'inserts_in_queue');
      perTable((r) => r.logLag, g.maxLogLag, 'log_lag');
      const healthy = problems.length === 0;
      const caughtUp = s.maxDelay <= g.maxDelaySeconds;
      if (!caughtUp) problems.push(`absolute_delay=${s.maxDelay}s > ${g.maxDelaySeconds}s`);
      const value = problems.length ? `${peer.name}: ${problems.join('; ')}` : `${peer.name}: queue_size=${s.queueSize}, absolute_delay=${s.maxDelay}`;
      const report: PeerReport = { host: peer.name, tables: s.tables, queueSize: s.queueSize, maxDelay: s.maxDelay, passed: problems.length === 0, value };
      return { ok: problems.length === 0, value, gate: healthy ? 'peers caught up' : 'peers healthy', data: report };
    },
  );
  return outcome.data ?? { host: peer.name, tables: 0, queueSize: 0, maxDelay: 0, passed: outcome.passed, value: outcome.value };
}

async function peerServiceState(h: HostHandle): Promise<{ state: ServiceState | 'unreachable'; detail: string }> {
  try {
    const state = await serviceState(h);
    return { state, detail: `service ${h.def.clickhouse.service} is ${state}` };
  } catch (err) {
    return { state: 'unreachable', detail: `host does not answer over ssh: ${(err as Error).message.split('\n')[0]}` };
  }
}

function refusal(host: string, gate: string, value: string, message: string, hint: string): GateError {
  const e = new GateError(host, gate, value, message, { hint });
  // The operator reads the refusal first; gate and value stay available on the error.
  e.message = `${message} (gate "${gate}")`;
  return e;
}

/** Queue entries older than this that are not executing do not block a stop (they are not "in flight"). */
export const OLD_QUEUE_ENTRY_SECONDS = 600;
/** An entry that failed this many times is stuck: waiting will not drain it. */
export const STUCK_ENTRY_TRIES = 100;

export interface SelfReport {
  queueInFlight: number;
  stuckEntries: number;
  unfinishedMutations: number;
  pendingDistributedFiles: number;
  activeQueries: number;
}

/**
 * Before stopping ctx.host, on the replica itself: nothing in flight in the replication queue
 * (old non-executing entries aside), no stuck entries, no unfinished mutations (unless
 * gates.allowMutations), no pending Distributed sends (.bin files, 18.16 has no
 * system.distribution_queue), and at most gates.maxActiveQueries other queries running.
 * All evaluated together each poll, waited for with one deadline.
 */
export async function checkSelfBeforeStop(ctx: StepContext): Promise<StepResult> {
  const h = ctx.host.def;
  const g = h.gates;
  const client = await chClient(ctx.run, h);
  const distDirs = await distributedDirs(client, h);
  const outcome = await pollGate(ctx.host, 'replica idle', pollOptions(h, ctx.run.plan, { hint: `see what keeps ${h.name} busy: system.replication_queue, system.mutations, system.processes; raise gates.wait_timeout for big catch-ups` }), async (): Promise<GateCheck<SelfReport>> => {
    const [queue, mutations, processes, pending] = await Promise.all([
      client.query<Record<string, unknown>>(
        sql`SELECT database, table, type, is_currently_executing, num_tries, last_exception,
                   toUInt32(greatest(now() - create_time, 0)) AS age
            FROM system.replication_queue`,
        { timeoutMs: 10_000 },
      ),
      g.allowMutations
        ? Promise.resolve([] as Record<string, unknown>[])
        : client.query<Record<string, unknown>>(`SELECT database, table, mutation_id FROM system.mutations WHERE NOT is_done`, { timeoutMs: 10_000 }),
      // Our own probes (query_id chops-*) are not the replica's work.
      client.query<Record<string, unknown>>(`SELECT query_id, user, elapsed, query FROM system.processes WHERE query_id NOT LIKE 'chops-%'`, { timeoutMs: 10_000 }),
      pendingDistributedFiles(ctx.host, distDirs),
    ]);
    const stuck = queue.filter((q) => String(q.last_exception ?? '') !== '' && Number(q.num_tries) > STUCK_ENTRY_TRIES);
    const inFlight = queue.filter((q) => !stuck.includes(q) && (Number(q.is_currently_executing) !== 0 || Number(q.age) < OLD_QUEUE_ENTRY_SECONDS));
    const report: SelfReport = {
      queueInFlight: inFlight.length,
      stuckEntries: stuck.length,
      unfinishedMutations: mutations.length,
      pendingDistributedFiles: pending.count,
      activeQueries: processes.length,
    };
    const failing: Array<[string, string]> = [];
    if (inFlight.length) failing.push(['nothing in flight', `replication_queue=${inFlight.length} (${countBy(inFlight, (q) => String(q.type))})`]);
    if (stuck.length) failing.push(['no stuck entries', `stuck_entries=${stuck.length} (${stuck.slice(0, 2).map((q) => `${q.database}.${q.table} ${q.type}: ${String(q.last_exception).split('\n')[0].slice(0, 120)}`).join('; ')})`]);
    if (mutations.length) failing.push(['mutations done', `unfinished_mutations=${mutations.length} (${mutations.slice(0, 3).map((m) => `${m.database}.${m.table} ${m.mutation_id}`).join(', ')})`]);
    if (pending.error) failing.push(['pending distributed sends', `cannot check: ${pending.error}`]);
    else if (pending.count) failing.push(['pending distributed sends', `pending_distributed_files=${pending.count} (${pending.sample.join(', ')})`]);
    if (processes.length > g.maxActiveQueries) failing.push(['active queries', `active_queries=${processes.length} > ${g.maxActiveQueries} (${processes.slice(0, 2).map((p) => `${p.user}: ${String(p.query).replace(/\s+/g, ' ').slice(0, 60)}`).join('; ')})`]);
    if (!failing.length) return { ok: true, value: 'idle', data: report };
    return { ok: false, gate: failing.map(([n]) => n).join(' + '), value: failing.map(([, v]) => v).join(', '), data: report };
  });
  if (!outcome.passed) return planNote(outcome, h);
  return { changed: false, note: `idle (queue empty, no mutations, no pending sends, no queries)${outcome.elapsedMs > 1000 ? ` after ${fmtS(outcome.elapsedMs)}` : ''}`, data: { ...outcome.data, waitedMs: outcome.elapsedMs } };
}

function countBy<T>(items: T[], key: (t: T) => string): string {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return [...m].map(([k, n]) => `${k}:${n}`).join(' ');
}

/** ClickHouse's escapeForFileName: [A-Za-z0-9_] kept, every other byte as %XX. */
export function escapeForFileName(name: string): string {
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Data directories of the Distributed tables on the server (where 18.16 queues async inserts as .bin files). */
export async function distributedDirs(client: ChClient, h: Host): Promise<string[]> {
  // SELECT *: data_path(s) exist only in newer versions; 18.16 has neither.
  const rows = await client.query<Record<string, unknown>>(`SELECT * FROM system.tables WHERE engine = 'Distributed'`, { timeoutMs: 10_000 });
  const base = h.clickhouse.dataDir.replace(/\/+$/, '');
  const dirs: string[] = [];
  for (const r of rows) {
    if (Array.isArray(r.data_paths) && r.data_paths.length) dirs.push(...r.data_paths.map(String));
    else if (typeof r.data_path === 'string' && r.data_path) dirs.push(r.data_path);
    else dirs.push(`${base}/data/${escapeForFileName(String(r.database))}/${escapeForFileName(String(r.name))}/`);
  }
  return dirs;
}

/** .bin files waiting to be sent in DIRS (tmp/ and broken/ are never sent, so not counted). */
export async function pendingDistributedFiles(host: HostHandle, dirs: string[]): Promise<{ count: number; sample: string[]; error?: string }> {
  if (dirs.length === 0) return { count: 0, sample: [] };
  // A missing directory is an empty queue; any other find error means we could not look.
  const script = `for d in ${dirs.map((d) => shq(d)).join(' ')}; do [ -e "$d" ] || continue; find "$d" -type f -name '*.bin' -not -path '*/tmp/*' -not -path '*/broken/*' 2>&1 || echo "chops-find-failed: $d"; done`;
  const r = await host.runString('probe', script, { nothrow: true, timeoutMs: 30_000 });
  if (r.code !== 0) return { count: 0, sample: [], error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  const lines = r.stdout.split('\n').filter(Boolean);
  const errors = lines.filter((l) => !l.startsWith('/'));
  const files = lines.filter((l) => l.startsWith('/') && l.endsWith('.bin'));
  if (errors.length) return { count: files.length, sample: files.slice(0, 3), error: errors[0] };
  return { count: files.length, sample: files.slice(0, 3) };
}

// ------------------------------------------------------------------ after starting a replica

export interface HealthyReport {
  /** From SINCE until /ping and SELECT 1 worked. */
  answeredAfterMs: number;
  /** From SINCE until every gate passed. */
  caughtUpAfterMs: number;
  /** How long this step waited. */
  waitedMs: number;
  tables: number;
  queueSize: number;
  maxDelay: number;
  newErrorCount: number;
  newErrors: string[];
}

/**
 * After (re)starting ctx.host's server at SINCE: it answers (/ping and SELECT 1; the client
 * reconnects through the same forward, the ssh connection survived the restart), every replicated
 * table is writable with a live session, caught up (sum(queue_size) and the log lag ≤ maxQueue,
 * default 0, and max(absolute_delay) ≤ gates.max_delay) and sees all replicas of its shard active. New <Error>
 * lines in the error log since SINCE are reported in the note and data, as a WARNING, not a
 * failure: a restart routinely logs transient errors (peers and ZooKeeper reconnecting), and the
 * gates above are what decide health. Timings in data for the benchmark.
 */
export async function waitReplicaHealthy(
  ctx: StepContext,
  opts: {
    since: Date;
    /** Queue entries (and shared-log entries not yet pulled) still counted as caught up; default 0. */
    maxQueue?: number;
  },
): Promise<StepResult> {
  const h = ctx.host.def;
  const g = h.gates;
  const since = opts.since.getTime();
  const t0 = Date.now();
  const timeoutMs = g.waitTimeoutSeconds * 1000;
  const deadline = t0 + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  const client = await chClient(ctx.run, h);
  const hint = `look at ${h.clickhouse.errorLog} and \`journalctl -u ${h.clickhouse.service}\` on ${h.name}`;

  const answered = await pollGate(ctx.host, 'server answers', pollOptions(h, ctx.run.plan, { timeoutMs: left(), hint }), async () => {
    if (await client.ping({ timeoutMs: 3_000 })) {
      const r = await client.query<{ one: number }>('SELECT 1 AS one', { timeoutMs: 5_000 });
      if (Number(r[0]?.one) === 1) return { ok: true, value: 'Ok.' };
      return { ok: false, value: `SELECT 1 returned ${JSON.stringify(r)}` };
    }
    const st = await serviceState(ctx.host).catch(() => 'unknown' as const);
    // systemd gave up on the unit (crash loop, bad config): waiting cannot help.
    if (st === 'failed') return { ok: false, value: `/ping failed, service ${h.clickhouse.service} is failed`, fatal: `${h.clickhouse.service} failed to start` };
    return { ok: false, value: `/ping failed (service ${st})` };
  });
  if (!answered.passed) return planNote(answered, h);
  const answeredAfterMs = Date.now() - since;

  const maxQueue = opts.maxQueue ?? 0;
  const caught = await pollGate(ctx.host, 'replica caught up', pollOptions(h, ctx.run.plan, { timeoutMs: left(), hint: `${hint}; SELECT * FROM system.replication_queue on ${h.name} shows what it waits for` }), async (): Promise<GateCheck<ReplicaSummary>> => {
    const s = summarizeReplicas(await replicaStatus(client));
    if (s.readonly.length || s.sessionExpired.length) {
      return { ok: false, gate: 'replica writable', value: [s.readonly.length ? `read-only: ${s.readonly.join(', ')}` : '', s.sessionExpired.length ? `session expired: ${s.sessionExpired.join(', ')}` : ''].filter(Boolean).join('; '), data: s };
    }
    // log_lag too: right after a start the queue can look empty before the replica has pulled
    // the shared log entries it missed (its log_pointer is still behind).
    const value = `queue_size=${s.queueSize}, absolute_delay=${s.maxDelay}${s.maxLogLag ? `, log_lag=${s.maxLogLag}` : ''}`;
    if (s.queueSize > maxQueue || s.maxLogLag > maxQueue || s.maxDelay > g.maxDelaySeconds) return { ok: false, gate: 'replica caught up', value, data: s };
    if (s.missingReplicas.length) return { ok: false, gate: 'replica sees its shard', value: `inactive replicas: ${s.missingReplicas.join(', ')}`, data: s };
    return { ok: true, value, data: s };
  });
  if (!caught.passed) return planNote(caught, h);
  const caughtUpAfterMs = Date.now() - since;

  const errors = await newErrorLines(ctx.host, opts.since);
  const s = caught.data!;
  const report: HealthyReport = {
    answeredAfterMs,
    caughtUpAfterMs,
    waitedMs: Date.now() - t0,
    tables: s.tables,
    queueSize: s.queueSize,
    maxDelay: s.maxDelay,
    newErrorCount: errors.count,
    newErrors: errors.lines,
  };
  const warn = errors.error
    ? `; could not read ${h.clickhouse.errorLog}: ${errors.error}`
    : errors.count
      ? `; WARNING: ${errors.count} new <Error> line(s) in ${h.clickhouse.errorLog} since the start, last: ${errors.lines[errors.lines.length - 1]?.slice(0, 160)}`
      : '';
  if (errors.count) ctx.run.emit({ type: 'warning', host: h.name, gate: 'no new errors', count: errors.count, lines: errors.lines });
  return {
    changed: false,
    note: `healthy ${fmtS(caughtUpAfterMs)} after start (answered after ${fmtS(answeredAfterMs)}, ${s.tables} replicated table(s))${warn}`,
    data: report,
  };
}

/**
 * `<Error>` lines of the server's error log written at or after SINCE (at most the last 50).
 * The log's timestamps are the server's local time: SINCE is converted with the host's own
 * `date`, and compared as text ("YYYY.MM.DD hh:mm:ss" sorts by time). Lines without a timestamp
 * (stack traces) are skipped.
 */
export async function newErrorLines(host: HostHandle, since: Date): Promise<{ count: number; lines: string[]; error?: string }> {
  const epoch = Math.floor(since.getTime() / 1000);
  const log = host.def.clickhouse.errorLog;
  const script =
    `[ -e ${shq(log)} ] || exit 0; ` +
    `s=$(date -d @${epoch} '+%Y.%m.%d %H:%M:%S') || exit 3; ` +
    `tail -n 20000 ${shq(log)} | awk -v s="$s" 'substr($0,1,19) ~ /^[0-9][0-9][0-9][0-9]\\.[0-9][0-9]\\.[0-9][0-9] / && substr($0,1,19) >= s && index($0, "<Error>") > 0'`;
  const r = await host.runString('probe', script, { nothrow: true, timeoutMs: 15_000 });
  if (r.code !== 0) return { count: 0, lines: [], error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  const lines = r.stdout.split('\n').filter(Boolean);
  return { count: lines.length, lines: lines.slice(-50) };
}

// ------------------------------------------------------------------ topology

export interface TopologyFinding {
  host: string;
  message: string;
}

/**
 * Compare the inventory with what the servers say, for EVERY inventory host of the cluster(s)
 * being worked on (not only --limit): each server's macros (shard, replica) must match its
 * inventory entry, and its system.clusters entry for the cluster must have the inventory's shard
 * count and replicas per shard. Nodes are identified by macros (18.16's is_local is per shard).
 * Any mismatch throws a ChopsError listing all of them. Hosts that cannot be asked are listed in
 * the note (requireAll: fail instead). Meant for a `once` step at the start of a playbook.
 */
export async function checkTopology(ctx: StepContext, opts: { requireAll?: boolean } = {}): Promise<StepResult> {
  const run = ctx.run;
  const clusters = run.inventory.clusters.filter((c) => run.selected.some((s) => s.cluster === c.name));
  const hosts = clusters.flatMap((c) => c.shards.flatMap((s) => s.replicas));
  const results = await Promise.all(hosts.map((h) => topologyOf(run, h)));
  const mismatches: string[] = [];
  const unverified: TopologyFinding[] = [];
  const clusterFindings = new Map<string, string[]>();
  for (const [i, h] of hosts.entries()) {
    const r = results[i];
    if ('error' in r) {
      unverified.push({ host: h.name, message: r.error });
      continue;
    }
    const shard = r.macros.shard;
    const replica = r.macros.replica;
    if (shard !== h.shardName || replica !== h.replicaName) {
      mismatches.push(`inventory says ${h.name} is shard ${h.shardName} replica ${h.replicaName}, the server's macros say shard ${shard ?? '(no shard macro)'} replica ${replica ?? '(no replica macro)'}`);
    }
    const cluster = clusters.find((c) => c.name === h.cluster)!;
    const want = cluster.shards.map((s) => s.replicas.length);
    let finding: string | undefined;
    if (r.clusterShards.length === 0) {
      finding = `the server has no cluster "${h.cluster}" in system.clusters (remote_servers)`;
    } else if (r.clusterShards.length !== want.length || r.clusterShards.some((n, j) => n !== want[j])) {
      finding = `system.clusters says cluster ${h.cluster} has ${describeShards(r.clusterShards)}, the inventory has ${describeShards(want)}`;
    }
    if (finding) {
      if (!clusterFindings.has(finding)) clusterFindings.set(finding, []);
      clusterFindings.get(finding)!.push(h.name);
    }
  }
  for (const [finding, names] of clusterFindings) mismatches.push(`${names.join(', ')}: ${finding}`);
  // A host that does not answer cannot be compared, and is noted rather than refused: the
  // per-replica gates refuse to stop its peers and fail its own "idle" check, so an unverified
  // host is never changed and never loses a peer because of this.
  if (opts.requireAll) for (const u of unverified) mismatches.push(`${u.host}: cannot check: ${u.message}`);
  if (mismatches.length) {
    throw new ChopsError(`topology mismatch between the inventory and the servers:\n  - ${mismatches.join('\n  - ')}`, {
      hint: 'fix the inventory (shard `name`, `replica_name`, shard membership) or the servers\' <macros>/<remote_servers>; chops does not work on a cluster whose layout it cannot trust',
    });
  }
  const checked = hosts.length - unverified.length;
  const shards = clusters.reduce((a, c) => a + c.shards.length, 0);
  return {
    changed: false,
    note: `inventory matches the servers: ${checked}/${hosts.length} replica(s) checked, ${shards} shard(s) in ${clusters.map((c) => c.name).join(', ')}${unverified.length ? `; NOT checked: ${unverified.map((u) => `${u.host} (${u.message})`).join('; ')}` : ''}`,
    data: { checked: hosts.filter((_, i) => !('error' in results[i])).map((h) => h.name), unverified },
  };
}

function describeShards(replicasPerShard: number[]): string {
  return `${replicasPerShard.length} shard(s) with ${replicasPerShard.join('/')} replicas`;
}

interface HostTopology {
  macros: Record<string, string | undefined>;
  /** Replica count per shard_num (index 0 = shard 1) of the host's cluster in system.clusters. */
  clusterShards: number[];
}

async function topologyOf(run: RunContext, h: Host): Promise<HostTopology | { error: string }> {
  try {
    const client = await chClient(run, h);
    const [macros, clusterRows] = await Promise.all([
      client.query<{ macro: string; substitution: string }>(`SELECT macro, substitution FROM system.macros`, { timeoutMs: 10_000 }),
      client.query<{ shard_num: number; replicas: string }>(sql`SELECT shard_num, count() AS replicas FROM system.clusters WHERE cluster = ${h.cluster} GROUP BY shard_num ORDER BY shard_num`, { timeoutMs: 10_000 }),
    ]);
    const m: Record<string, string> = {};
    for (const r of macros) m[r.macro] = r.substitution;
    const clusterShards: number[] = [];
    for (const r of clusterRows) clusterShards[Number(r.shard_num) - 1] = Number(r.replicas);
    for (let i = 0; i < clusterShards.length; i++) clusterShards[i] ??= 0;
    return { macros: m, clusterShards };
  } catch (err) {
    return { error: err instanceof ClickHouseError ? errorValue(err) : (err as Error).message.split('\n')[0] };
  }
}
