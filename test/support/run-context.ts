// A RunContext built by hand (as the Runner builds one), to call tasks and gates outside a full
// run: real handles over ssh through a Session, notes and events collected for assertions.
import type { RunContext, StepContext } from '../../src/engine/playbook.js';
import type { Host, Inventory } from '../../src/inventory/types.js';
import { Session } from '../../src/engine/session.js';
import { closeChClients } from '../../src/clickhouse/client.js';

export interface TestRunContext extends RunContext {
  session: Session;
  /** Every host.note() of handles used through stepContext(), in order. */
  notes: Array<{ host: string; text: string }>;
  /** Everything emit()ted. */
  events: Record<string, unknown>[];
  /** The StepContext a step on HOST would get. */
  stepContext<P = Record<string, unknown>>(host: Host | string, params?: P): StepContext<P>;
  /** Stop the run (run.signal) — what the Runner does on a failure or a signal. */
  stop(reason?: string): void;
  /** Close the ClickHouse clients and every connection. */
  close(): Promise<void>;
}

export function makeRunContext(inventory: Inventory, opts: { selected?: Array<Host | string>; plan?: boolean } = {}): TestRunContext {
  const session = new Session(inventory, opts.plan ?? false, () => {});
  const abort = new AbortController();
  const notes: TestRunContext['notes'] = [];
  const events: TestRunContext['events'] = [];
  const memories: Record<string, Record<string, unknown>> = {};
  const find = (h: Host | string): Host => {
    const def = typeof h === 'string' ? inventory.hosts.find((x) => x.name === h) : h;
    if (!def) throw new Error(`no host ${String(h)} in the inventory`);
    return def;
  };
  const ctx: TestRunContext = {
    inventory,
    selected: opts.selected ? opts.selected.map(find) : inventory.hosts,
    plan: opts.plan ?? false,
    handle: (h) => session.handle(h),
    peers: (h) => inventory.hosts.filter((x) => x.cluster === h.cluster && x.shard === h.shard && x.name !== h.name),
    shared: new Map(),
    signal: abort.signal,
    emit: (ev) => events.push(ev),
    session,
    notes,
    events,
    stepContext<P>(host: Host | string, params?: P): StepContext<P> {
      const handle = session.handle(find(host));
      handle.onNote = (text) => notes.push({ host: handle.name, text });
      const memory = (memories[handle.name] ??= {});
      return {
        host: handle,
        params: (params ?? {}) as P,
        run: ctx,
        memory: { get: <T>(k: string) => memory[k] as T | undefined, set: (k, v) => void (memory[k] = v) },
      };
    },
    stop(reason = 'stopped') {
      if (!abort.signal.aborted) abort.abort(new Error(reason));
    },
    async close() {
      await closeChClients(ctx.shared);
      await session.close();
    },
  };
  return ctx;
}
