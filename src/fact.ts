// Facts, in the manner of pyinfra: a fact is a read-only command plus a pure parser. Tasks read
// the state of a host only through facts, so the same parser serves the gates, `chops status`,
// the `facts` playbook and the plan, and is tested on captured output without any host
// (test/unit/facts/). Concrete facts live in facts/<area>/<name>.ts.
import type { Host } from './inventory/types.js';

/** What the fact's command printed and how it exited (facts decide themselves what a code means). */
export interface FactOutput {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Fact<T, A = void> {
  /** Shown in logs and errors: "block devices", "service state". */
  readonly name: string;
  /** The read-only POSIX sh command that gathers it (build it with sh`` / shq, never by concatenation). */
  command(arg: A, host: Host): string;
  /** Pure: the command's output → the value. Throw a ChopsError when the output cannot be understood. */
  parse(out: FactOutput, arg: A, host: Host): T;
  /** Kill the command after this long (default 30 s): a fact that hangs must not hang the run. */
  timeoutMs?: number;
}

export function defineFact<T, A = void>(fact: Fact<T, A>): Fact<T, A> {
  return fact;
}

/** Cache key of one reading of FACT with ARG on a host. */
export function factKey(fact: Fact<unknown, any>, arg: unknown): string {
  return arg === undefined ? fact.name : `${fact.name}\0${JSON.stringify(arg)}`;
}

/**
 * The facts read on one host during the step that host is running. Open only while a step runs
 * on the host (the runner opens and closes it), dropped whenever that step changes the host
 * (host.$, putFile) and at every poll of a gate. Outside a step of its own — a peer read from
 * another replica's gate — a host's facts are always read afresh: nothing else keeps them true.
 */
export class FactCache {
  private values = new Map<string, Promise<unknown>>();
  private active = false;

  /** A step starts on this host: cache from now on, from nothing. */
  open(): void {
    this.values.clear();
    this.active = true;
  }

  /** The step ended: forget, and stop caching. */
  close(): void {
    this.values.clear();
    this.active = false;
  }

  get<T>(key: string, read: () => Promise<T>): Promise<T> {
    if (!this.active) return read();
    let v = this.values.get(key) as Promise<T> | undefined;
    if (!v) {
      v = read();
      this.values.set(key, v);
      // A failed reading is not cached: the next ask tries again.
      v.catch(() => this.values.get(key) === v && this.values.delete(key));
    }
    return v;
  }

  clear(): void {
    this.values.clear();
  }
}

/**
 * A fact read from the host's ClickHouse server: a read-only query plus a pure parser of its rows
 * (JSONEachRow values as ClickHouse sends them: UInt64 as strings). Read with readQueryFact
 * through the run's client for the host; cached by the host's FactCache with the same rules as a
 * command fact (per step, dropped after a change and at every poll of a gate).
 */
export interface QueryFact<T, A = void> {
  readonly name: string;
  /** The SELECT (build values in with sql`` from src/clickhouse/sql.ts). */
  query(arg: A, host: Host): string;
  /** Pure: rows → the value. Throw a ChopsError when the rows cannot be understood. */
  parse(rows: Record<string, unknown>[], arg: A, host: Host): T;
  timeoutMs?: number;
}

export function defineQueryFact<T, A = void>(fact: QueryFact<T, A>): QueryFact<T, A> {
  return fact;
}

/** What readQueryFact needs of a ClickHouse client (src/clickhouse/client.ts's ChClient fits). */
export interface FactQueryClient {
  query<R = Record<string, unknown>>(sql: string, opts?: { timeoutMs?: number }): Promise<R[]>;
}

/** Read FACT on HOST through CLIENT, cached in HOST's fact cache (key prefixed `sql:`). */
export function readQueryFact<T, A>(host: { def: Host; facts: FactCache }, client: FactQueryClient, fact: QueryFact<T, A>, arg?: A): Promise<T> {
  const key = `sql:${arg === undefined ? fact.name : `${fact.name}\0${JSON.stringify(arg)}`}`;
  return host.facts.get(key, async () =>
    fact.parse(await client.query(fact.query(arg as A, host.def), { timeoutMs: fact.timeoutMs ?? 10_000 }), arg as A, host.def),
  );
}
