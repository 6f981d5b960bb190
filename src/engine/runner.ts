// Runs a playbook: phases in order, each by its scope, orchestrated by listr2 and drawn by chops'
// own display (engine/live.ts); every step's status goes to the state file as it happens so
// `chops resume` can continue from the exact step. The work is split by job:
//   listr-tree.ts   the task tree: phase order, scope order (rolling: shards ∥, replicas in turn), skips
//   step-exec.ts    one step on one host: state marks, plan restatement, memory, rollback
//   verify-hosts.ts every host and gate peer reached before the first change
import type { ListrSilentRenderer } from 'listr2';
import { type Phase, type RunContext, phaseHosts } from './playbook.js';
import { Session } from './session.js';
import type { CommandListener } from '../transport/types.js';
import { StepExecutor } from './step-exec.js';
import { type ListrCtx, describeScope, phaseTasks } from './listr-tree.js';
import { verifyHosts } from './verify-hosts.js';
import type { ExecuteOptions, ExecuteResult } from './run-types.js';

export type { ExecuteOptions, ExecuteResult, FailureInfo } from './run-types.js';
export { HostsUnverifiedError } from './verify-hosts.js';

export class Runner {
  private abort = new AbortController();
  private session: Session;
  private ctx: RunContext;
  private phases: Phase[];
  private steps: StepExecutor;
  /** Which step each host is running now, so the run log can attribute every command. */
  readonly currentStep = new Map<string, string>();

  constructor(private readonly o: ExecuteOptions) {
    const listener: CommandListener = (ev) => o.onCommand?.(ev);
    const stepOf = (h: string) => this.currentStep.get(h);
    // A plan must never run on a session that sends commands for real (nor the other way round).
    if (o.session && o.session.plan !== o.plan) throw new Error(`a ${o.plan ? 'plan' : 'run'} was given a ${o.session.plan ? 'plan' : 'run'} session`);
    if (o.session) o.session.bind(listener, stepOf);
    this.session = o.session ?? new Session(o.inventory, o.plan, listener, stepOf);
    this.phases = o.phases ?? o.playbook.phases(o.params, o.inventory);
    this.ctx = {
      runId: o.state?.id,
      inventory: o.inventory,
      selected: o.selected,
      plan: o.plan,
      handle: (h) => this.session.handle(h),
      peers: (h) => o.inventory.hosts.filter((x) => x.cluster === h.cluster && x.shard === h.shard && x.name !== h.name),
      shared: new Map(),
      signal: this.abort.signal,
      emit: (ev) => o.output.event(ev),
    };
    this.steps = new StepExecutor(o, this.session, this.ctx, this.currentStep, (reason) => this.stop(reason));
  }

  get phaseList(): Phase[] {
    return this.phases;
  }

  /** Open the selected hosts' connections in the background while the run is being set up. */
  preconnect(): void {
    this.session.warm(this.o.selected);
  }

  /** Close every connection (execute() does this itself when it ends, unless told keepOpen). */
  close(): Promise<void> {
    return this.session.close();
  }

  /** Stop starting new work (a signal, or the first failure). */
  stop(reason: string): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Error(reason));
  }

  /** Reach and verify every host the run will touch and every gate peer, before the first change (verify-hosts.ts). */
  verifyHosts(): Promise<void> {
    return verifyHosts(this.o.selected, this.phases, this.ctx.peers, this.session);
  }

  /**
   * Run the phases, then close every connection — unless keepOpen: the caller then closes them
   * (close()) after saving the outcome, so that the hosts' sshd tear their sessions down (tens
   * of ms of both cores at the end of a 20-host run here) after the save, not during it.
   */
  async execute(opts: { keepOpen?: boolean } = {}): Promise<ExecuteResult> {
    const { Listr, SilentRenderer } = await import('listr2');
    const o = this.o;
    const tasks = phaseTasks(this.phases, { o, session: this.session, steps: this.steps, signal: this.abort.signal });
    // listr2 orchestrates (order, concurrency, skips); it never draws. The operator sees
    // chops' own display (engine/output.ts), which costs the same whatever the fan-out.
    const list = new Listr<ListrCtx, ListrSilentRenderer, ListrSilentRenderer>(tasks, {
      concurrent: false,
      exitOnError: true,
      renderer: SilentRenderer,
      fallbackRenderer: SilentRenderer,
      registerSignalListeners: false,
    });
    o.output.begin(this.displayShape());
    try {
      await list.run();
    } catch {
      // the failure is recorded in this.steps.failure with its context; listr's copy is not needed
    } finally {
      o.output.end();
    }
    if (!opts.keepOpen) await this.session.close();
    const failure = this.steps.failure;
    return {
      ok: !failure && !this.abort.signal.aborted,
      error: failure,
      results: this.steps.results,
      outcomes: this.steps.outcomes,
      session: this.session,
      interrupted: !failure && this.abort.signal.aborted,
    };
  }

  /** What the live display needs to know up front: phases, their hosts (by shard) and steps. */
  private displayShape() {
    const sel = this.o.selected;
    return this.phases.map((ph) => ({
      name: ph.name,
      scope: describeScope(ph),
      steps: ph.steps.map((s) => s.name),
      hosts: ph.scope === 'once' ? sel.slice(0, 1).map((h) => h.name) : phaseHosts(ph, sel).map((h) => h.name),
      group: ph.scope === 'rolling' ? Object.fromEntries(phaseHosts(ph, sel).map((h) => [h.name, `shard ${h.cluster}/${h.shardName}`])) : undefined,
    }));
  }
}

export { groupByShard } from '../inventory/topology.js';

export { errorText } from '../errors.js';
