// ClickHouse over HTTP through the host's own SSH connection (a port forward to 127.0.0.1:http_port
// on the server), with what 18.16 needs from a client:
//   - every query has a query_id (chops-<random>); on timeout or abort a `KILL QUERY ... ASYNC` is
//     sent, because a client-side abort does not cancel anything on 18.16;
//   - errors parsed from the 18.16 text (the official client leaves .code undefined);
//   - the official client's console logger silenced (it would garble listr2's output);
//   - in plan mode queries still run (gates show real facts) but read-only (readonly=2), and
//     commands are recorded in the plan instead of sent.
// @clickhouse/client is imported lazily: `chops --help` must not pay for it.
// Over 300 lines on purpose: the 18.16 workarounds (query ids, KILL on abort, error parsing,
// inline literals) only make sense next to each other; splitting them would hide why each exists.
import { randomBytes } from 'node:crypto';
import type { HostHandle } from '../host.js';
import type { Host } from '../inventory/types.js';
import type { RunContext } from '../engine/playbook.js';
import type { Forward } from '../transport/types.js';
import { readSecret } from '../inventory/secrets.js';
import { ClickHouseError, clickHouseErrorName, parseClickHouseError, shortQuery } from './errors.js';
import { sql } from './sql.js';

export interface ChQueryOptions {
  /** Deadline of this query (default 30 s); on expiry KILL QUERY is sent and a ClickHouseError thrown. */
  timeoutMs?: number;
  /** Abort this query (KILL QUERY is sent too). */
  signal?: AbortSignal;
  /** Extra settings for this query only. */
  settings?: Record<string, string | number | boolean>;
}

export interface ChClient {
  /** Inventory name of the host this client talks to. */
  readonly host: string;
  /**
   * Rows of a SELECT (JSONEachRow). Values are as ClickHouse sends them in JSON: UInt64/Int64
   * arrive as strings (convert with Number()), smaller integers and floats as numbers.
   * Build SQL with sql`` from ./sql.js, never by concatenating values.
   */
  query<T = Record<string, unknown>>(sql: string, opts?: ChQueryOptions): Promise<T[]>;
  /** A statement without a result (SYSTEM ..., ALTER ..., INSERT ... SELECT). Recorded, not sent, in plan mode. */
  command(sql: string, opts?: ChQueryOptions): Promise<void>;
  /** HTTP /ping answered (never throws). */
  ping(opts?: { timeoutMs?: number }): Promise<boolean>;
  /** Close the client and its port forward. */
  close(): Promise<void>;
}

export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
const PING_TIMEOUT_MS = 5_000;
const KILL_TIMEOUT_MS = 5_000;

/**
 * The run's client for HOST: one per host per run, cached in run.shared under `ch:<host>` (as a
 * Promise<ChClient>, so concurrent first calls share one forward). A failed open is not cached.
 */
export function chClient(run: RunContext, host: Host): Promise<ChClient> {
  const key = `ch:${host.name}`;
  const cached = run.shared.get(key) as Promise<ChClient> | undefined;
  if (cached) return cached;
  const p = openChClient(run.handle(host));
  run.shared.set(key, p);
  p.catch(() => {
    if (run.shared.get(key) === p) run.shared.delete(key);
  });
  return p;
}

/** Close every client cached in run.shared (the forwards also close with the session). */
export async function closeChClients(shared: Map<string, unknown>): Promise<void> {
  const all: Promise<unknown>[] = [];
  for (const [k, v] of shared) {
    if (!k.startsWith('ch:')) continue;
    shared.delete(k);
    all.push(Promise.resolve(v as Promise<ChClient>).then((c) => c.close()));
  }
  await Promise.allSettled(all);
}

/** A client outside a run (e.g. `chops status`): forward over HANDLE's connection, credentials from the inventory. */
export async function openChClient(handle: HostHandle): Promise<ChClient> {
  const c = handle.def.clickhouse;
  const password = c.password ? await readSecret(c.password, `${handle.def.where || handle.name}: clickhouse.password`) : '';
  const fwd = await handle.transport.forward('127.0.0.1', c.httpPort);
  try {
    const { createClient, ClickHouseLogLevel } = await import('@clickhouse/client');
    const inner = createClient({
      url: `http://127.0.0.1:${fwd.localPort}`,
      username: c.user,
      password,
      // Our own per-query timer enforces deadlines (and sends KILL QUERY); this is only a backstop.
      request_timeout: 3_600_000,
      log: { LoggerClass: SilentLogger, level: ClickHouseLogLevel.OFF },
      // 18.16's keep_alive_timeout is 3 s: drop idle sockets before the server does.
      keep_alive: { enabled: true, idle_socket_ttl: 1_500 },
    });
    return new HttpChClient(handle, inner, fwd);
  } catch (err) {
    await fwd.close();
    throw err;
  }
}

/** The official client's logger writes to the console; chops renders its own output. */
class SilentLogger {
  trace(): void {}
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
}

type Inner = import('@clickhouse/client').ClickHouseClient;

class HttpChClient implements ChClient {
  private closed = false;

  constructor(
    private readonly handle: HostHandle,
    private readonly inner: Inner,
    private readonly fwd: Forward,
  ) {}

  get host(): string {
    return this.handle.name;
  }

  async query<T = Record<string, unknown>>(text: string, opts: ChQueryOptions = {}): Promise<T[]> {
    const settings: Record<string, string | number | boolean> = { ...opts.settings };
    // Plan mode reads real facts but can change nothing (readonly=2 still allows per-query settings).
    if (this.handle.plan) settings.readonly = 2;
    // Reads are idempotent: one retry when a kept-alive socket died under us (server restarted).
    return this.withRetry(() =>
      this.run(text, opts, settings, async (query_id, abort_signal, clickhouse_settings) => {
        const rs = await this.inner.query({ query: text, format: 'JSONEachRow', query_id, abort_signal, clickhouse_settings: clickhouse_settings as any });
        return (await rs.json()) as T[];
      }),
    );
  }

  async command(text: string, opts: ChQueryOptions = {}): Promise<void> {
    if (this.handle.plan && this.handle.transport.kind === 'plan') {
      // Recorded by the plan transport (attributed to the current step), never sent.
      await this.handle.transport.exec(`clickhouse-sql> ${shortQuery(text)}`);
      return;
    }
    await this.run(text, opts, { ...opts.settings }, async (query_id, abort_signal, clickhouse_settings) => {
      await this.inner.command({ query: text, query_id, abort_signal, clickhouse_settings: clickhouse_settings as any });
    });
  }

  async ping(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    if (this.closed) return false;
    const attempt = async (): Promise<boolean> => {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? PING_TIMEOUT_MS);
      try {
        const r = await this.inner.ping({ select: false, abort_signal: ac.signal });
        return r.success;
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    };
    return (await attempt()) || (await attempt());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inner.close().catch(() => {});
    await this.fwd.close().catch(() => {});
  }

  private async withRetry<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ClickHouseError && err.kind === 'connection' && isStaleSocket(err.cause)) return fn();
      throw err;
    }
  }

  private async run<R>(
    text: string,
    opts: ChQueryOptions,
    settings: Record<string, string | number | boolean>,
    send: (queryId: string, signal: AbortSignal, settings: Record<string, string | number | boolean>) => Promise<R>,
  ): Promise<R> {
    if (this.closed) throw new ClickHouseError(this.host, 'client already closed', { kind: 'connection', query: text });
    const timeoutMs = opts.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const queryId = `chops-${randomBytes(8).toString('hex')}`;
    const ac = new AbortController();
    let why: 'timeout' | 'aborted' | undefined;
    const timer = setTimeout(() => {
      why = 'timeout';
      ac.abort();
    }, timeoutMs);
    const onAbort = () => {
      why ??= 'aborted';
      ac.abort();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // The server stops by itself too (between blocks), in case our KILL cannot get through.
    if (settings.max_execution_time === undefined && timeoutMs >= 1000) settings.max_execution_time = Math.ceil(timeoutMs / 1000) + 1;
    const t0 = performance.now();
    const logged = (code: number, note: string) =>
      this.handle.logSql?.(
        settings.readonly !== undefined || /^\s*(SELECT|SHOW|DESCRIBE|EXISTS|WITH)\b/i.test(text) ? 'probe' : 'exec',
        `clickhouse[${queryId}]> ${text.replace(/\s+/g, ' ').trim()}`,
        code,
        performance.now() - t0,
        note,
      );
    try {
      const r = await send(queryId, ac.signal, settings);
      logged(0, Array.isArray(r) ? `${r.length} row(s)` : '');
      return r;
    } catch (err) {
      logged(1, String((err as Error)?.message ?? err).split('\n')[0]);
      if (why) {
        await this.kill(queryId);
        const what = why === 'timeout' ? `query did not finish within ${fmtSeconds(timeoutMs)}` : 'query aborted';
        throw new ClickHouseError(this.host, `${what} (sent KILL QUERY WHERE query_id = '${queryId}' ASYNC)`, {
          kind: why,
          query: text,
          cause: err,
          hint: why === 'timeout' ? 'the server is overloaded or the query waits on a lock or on ZooKeeper; check system.processes on it' : undefined,
        });
      }
      throw this.wrap(err, text);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A client abort does not cancel the query on 18.16: ask the server to kill it. Best effort. */
  private async kill(queryId: string): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), KILL_TIMEOUT_MS);
    try {
      // A chops- query id of its own: the idle gate does not count chops' KILL as someone's work.
      await this.inner.command({
        query: sql`KILL QUERY WHERE query_id = ${queryId} ASYNC`,
        query_id: `chops-kill-${randomBytes(6).toString('hex')}`,
        abort_signal: ac.signal,
      });
    } catch {
      // the server may be gone; the timeout error says what happened
    } finally {
      clearTimeout(timer);
    }
  }

  private wrap(err: unknown, text: string): ClickHouseError {
    const e = err as NodeJS.ErrnoException & { type?: string };
    const netCode = typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) ? e.code : undefined;
    const msg = String(e?.message ?? err);
    if (netCode || /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|Timeout error|other side closed/i.test(msg)) {
      const port = this.handle.def.clickhouse.httpPort;
      return new ClickHouseError(this.host, `server does not answer on 127.0.0.1:${port} (through the ssh connection): ${netCode ?? msg}`, {
        kind: 'connection',
        query: text,
        cause: err,
        hint: `check the service on ${this.host} (systemctl status ${this.handle.def.clickhouse.service}) and that it listens on 127.0.0.1:${port}`,
      });
    }
    const p = parseClickHouseError(msg);
    // 21.x+: the official client strips "Code: N." from the message and keeps it in err.code.
    const code = p.code ?? clientCode(e?.code);
    const type = p.type ?? e?.type ?? clickHouseErrorName(code);
    return new ClickHouseError(this.host, p.message, { kind: 'server', code, type, query: text, cause: err, hint: hintFor(code) });
  }
}

/** The official client's err.code for a server error: the ClickHouse code as a decimal string. */
function clientCode(code: unknown): number | undefined {
  return typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}

function isStaleSocket(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code === 'ECONNRESET' || e?.code === 'EPIPE' || /socket hang up|other side closed/i.test(String(e?.message ?? ''));
}

function hintFor(code: number | undefined): string | undefined {
  switch (code) {
    case 193:
    case 194:
    case 516:
      return 'check clickhouse.user / clickhouse.password in the inventory';
    case 242:
      return 'the table is read-only: ZooKeeper is unreachable or the replica lost its session';
    case 999:
    case 225:
      return 'ZooKeeper is unreachable from this server';
    default:
      return undefined;
  }
}

function fmtSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
