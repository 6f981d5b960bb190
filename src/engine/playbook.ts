// The shape of a playbook: ordered phases, each with a scope, each a list of steps.
// A playbook file should read like the operator's runbook; see playbooks/*.ts.
import type { Host, Inventory } from '../inventory/types.js';
import type { HostHandle } from '../host.js';
import type { RunEvent } from './events.js';

/**
 * each:    every selected host runs the phase's steps, hosts in parallel.
 * rolling: shards in parallel (up to --parallel-shards); inside a shard one replica at a time,
 *          each replica running all the phase's steps before the next replica starts.
 * once:    the steps run a single time, on the first selected host.
 */
export type Scope = 'each' | 'rolling' | 'once';

export interface RunContext {
  /** The run's id (absent in plan mode): names per-run markers a step leaves on a host. */
  runId?: string;
  inventory: Inventory;
  /** Hosts selected by --limit (all hosts when no limit), in inventory order. */
  selected: Host[];
  plan: boolean;
  /** Handle of any inventory host (opened lazily; one connection per host per run). */
  handle(host: Host | string): HostHandle;
  /** The other replicas of HOST's shard, from the inventory (not only the selected ones). */
  peers(host: Host): Host[];
  /** Per-run cache shared by tasks (ClickHouse clients, facts). */
  shared: Map<string, unknown>;
  /** Aborted when the run stops (first failure elsewhere, or a signal). */
  signal: AbortSignal;
  /** Emit a structured event (JSON output, run log, report): one of the kinds in src/engine/events.ts. */
  emit(event: RunEvent): void;
}

/**
 * What this run remembers about one host, persisted in the run state: a value set by a step is on
 * disk before that step counts as done, and is there for later steps and phases, for rollbacks
 * and for a resumed run (the version before an upgrade, the directory moved aside, a device).
 * Keys are namespaced by area ('move-data.oldDir'); values must be JSON.
 */
export interface HostMemory {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

export interface StepContext<P = Record<string, unknown>> {
  host: HostHandle;
  params: P;
  run: RunContext;
  memory: HostMemory;
}

export type StepResult = void | {
  /** Did the step change the host? (false = already in the desired state) */
  changed?: boolean;
  /** Short reason shown instead of running (idempotence: "already mounted"). */
  skipped?: string;
  /** Structured result for --json and the summary (facts, command output). */
  data?: unknown;
  /** One line for the operator. */
  note?: string;
};

export interface Step<P = any> {
  /** Unique within its phase; used in state, logs and resume. */
  name: string;
  /** Destroys or replaces data: the run asks "Type YES" unless --yes. */
  destructive?: boolean;
  /**
   * Takes a server out of service (stops ClickHouse, reboots, runs an operator's command between
   * the health gates): the run asks "Type YES" unless --yes, and refuses without a terminal.
   */
  disruptive?: boolean;
  /**
   * A read-only check whose verdict goes stale (health gates, topology). A resumed run checks it
   * again unless the work it guards (a later step of the same host and phase) has already begun.
   */
  gate?: boolean;
  // Descriptive only (drawn by `chops graph`, shown by `chops report`); the engine ignores them.
  /** One line: what the step does, in the operator's words. */
  description?: string;
  /** When the step does nothing and says so ("already stopped"). */
  skipIf?: string;
  /** What a step that polls waits for before the next one may start (a health gate after work). */
  waitsFor?: string;
  /** The replica stops serving when this step begins ('starts') / serves again once it passed ('ends'). */
  downtime?: 'starts' | 'ends';
  run(ctx: StepContext<P>): Promise<StepResult>;
  /** Undo this step on a host whose later step failed (reverse order, same phase). */
  rollback?(ctx: StepContext<P>): Promise<void>;
}

export interface Phase<P = any> {
  name: string;
  scope: Scope;
  steps: Step<P>[];
  /**
   * Rolling phases: is this replica serving right now? Asked by a resumed run for a replica whose
   * work had begun before the crash. Serving → its gates are checked again, whatever the state
   * file says (nothing is taken down on the strength of a gate that passed before a crash); not
   * serving → it is already down, and the run continues with the step that brings it back.
   * Without it a resumed run re-checks the gates of every replica still in progress.
   */
  replicaServing?(ctx: StepContext<P>): Promise<boolean>;
  /**
   * Which of the selected hosts this phase works on (default: all of them, in inventory order).
   * A pure function of the selection, so a resumed run gets the same hosts: a canary phase
   * (pickCanaries) and the phase of the others after it. A 'once' phase always runs on the first
   * selected host.
   */
  hosts?<H extends PhaseHost>(selected: H[]): H[];
}

/** What Phase.hosts may look at of a host (the graph passes its topology's hosts). */
export type PhaseHost = Pick<Host, 'name' | 'cluster' | 'shard' | 'shardName' | 'replica'>;

/** The hosts PHASE works on. */
export function phaseHosts<H extends PhaseHost>(phase: Pick<Phase, 'hosts'>, selected: H[]): H[] {
  return phase.hosts ? phase.hosts(selected) : selected;
}

export interface ParamSpec {
  name: string;
  type: 'string' | 'strings' | 'boolean' | 'int' | 'duration' | 'choice';
  description: string;
  choices?: string[];
  default?: unknown;
  required?: boolean;
  /** Parse and check the value as written (int/duration flags), when it mirrors an inventory setting checked the same way. */
  check?(written: string): { ok: true; value: number | boolean } | { ok: false; message?: string; hint?: string };
}

export interface Playbook<P = any> {
  name: string;
  description: string;
  params: ParamSpec[];
  /** Build the ordered phases for these (validated) parameters. */
  phases(params: P, inventory: Inventory): Phase<P>[];
  /** Text printed after a run (tables of facts, command output); JSON mode has the raw results. */
  summary?(results: Array<{ host: string; phase: string; step: string; data: unknown }>, params: P): string | undefined;
}

export function definePlaybook<P>(p: Playbook<P>): Playbook<P> {
  return p;
}
