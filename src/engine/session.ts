// The connections of one run: one transport per host, opened lazily on first use and reused
// by every step and port forward; wrapped by the plan recorder in plan mode.
import type { Host, Inventory } from '../inventory/types.js';
import { HostHandle } from '../host.js';
import type { CommandListener, Transport } from '../transport/types.js';
import { PlanTransport, type PlannedChange } from '../transport/plan.js';
import { SshTransport } from '../transport/ssh.js';
import { LocalTransport } from '../transport/local.js';

export class Session {
  private handles = new Map<string, HostHandle>();
  private plans: PlanTransport[] = [];

  constructor(
    readonly inventory: Inventory,
    readonly plan: boolean,
    private listener?: CommandListener,
    private stepOf?: (host: string) => string | undefined,
  ) {}

  /**
   * Who hears of every command, and which step each host runs: a session opened before its run
   * exists (connecting while the run's state is created) is bound to the run's runner here.
   */
  bind(listener: CommandListener, stepOf: (host: string) => string | undefined): void {
    this.listener = listener;
    this.stepOf = stepOf;
  }

  /** Start connecting to HOSTS in the background (a failure is reported by their first command). */
  warm(hosts: readonly Host[]): void {
    for (const h of hosts) this.handle(h).transport.warm?.();
  }

  handle(host: Host | string): HostHandle {
    const def = typeof host === 'string' ? this.inventory.hosts.find((h) => h.name === host) : host;
    if (!def) throw new Error(`no host ${String(host)} in the inventory`);
    let h = this.handles.get(def.name);
    if (!h) {
      const listener: CommandListener = (ev) => this.listener?.(ev);
      const real: Transport = def.connection === 'local' ? new LocalTransport(def, listener) : new SshTransport(def, listener);
      let t: Transport = real;
      if (this.plan) {
        const p = new PlanTransport(real, listener, (h) => this.stepOf?.(h));
        this.plans.push(p);
        t = p;
      }
      h = new HostHandle(def, t, this.plan);
      const name = def.name;
      h.logSql = (kind, statement, code, durationMs, note) =>
        this.listener?.({ host: name, kind, result: { command: statement, stdout: code === 0 ? note : '', stderr: code === 0 ? '' : note, code, durationMs } });
      this.handles.set(def.name, h);
    }
    return h;
  }

  plannedChanges(): PlannedChange[] {
    return this.plans.flatMap((p) => p.changes);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.handles.values()].map((h) => h.transport.close()));
  }
}
