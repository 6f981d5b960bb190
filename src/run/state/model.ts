// The run state's shape: which step ran on which host with what result, and what each host's
// steps chose to remember, so that an interrupted run can be resumed where it stopped.
// Types only (plus the constants the types are built from); behaviour lives next door.

export type StepStatus = 'pending' | 'started' | 'done' | 'failed' | 'skipped' | 'rolled-back';
export const STEP_STATUSES: readonly StepStatus[] = ['pending', 'started', 'done', 'failed', 'skipped', 'rolled-back'];

export interface StepState {
  status: StepStatus;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  changed?: boolean;
  error?: string;
  note?: string;
  /** The step's StepResult.data (JSON), for reports and timelines. */
  data?: unknown;
}

export type StepScope = 'each' | 'rolling' | 'once';
export const STEP_SCOPES: readonly StepScope[] = ['each', 'rolling', 'once'];
export type RunOutcome = 'running' | 'succeeded' | 'failed' | 'interrupted';
export const RUN_OUTCOMES: readonly RunOutcome[] = ['running', 'succeeded', 'failed', 'interrupted'];

/** Host key used by steps that run once for the whole cluster. */
export const ONCE_HOST = '*';

export interface PhaseState {
  phase: string;
  scope: StepScope;
  steps: Array<{ name: string; hosts: Record<string, StepState> }>;
}

/** host name -> key ('move-data.oldDir') -> JSON value. */
export type RunMemory = Record<string, Record<string, unknown>>;

export interface RunState {
  version: 1;
  id: string;
  playbook: string;
  params: Record<string, unknown>;
  paramsHash: string;
  /** Absolute path of the inventory file. */
  inventory: string;
  inventoryHash: string;
  cluster: string;
  limit?: string[];
  createdAt: string;
  updatedAt: string;
  pid: number;
  /** Hostname of the control machine. */
  controller: string;
  outcome: RunOutcome;
  error?: string;
  /**
   * Which journal file (runs/<id>/journal.<epoch>.jsonl) continues this state: the transitions
   * recorded since state.yml was last written whole. Absent in files of older chops (= 0).
   */
  journalEpoch?: number;
  /** phase index -> step name -> host name -> state (once-scoped steps use host "*") */
  steps: PhaseState[];
  /** What steps remembered per host (ctx.memory), for later steps, rollbacks and resumes. */
  memory: RunMemory;
}

/** What `create()` needs; the rest (id, hashes of params, times, pid, controller) is filled in. */
export interface RunInit {
  playbook: string;
  params: Record<string, unknown>;
  inventory: string;
  inventoryHash: string;
  cluster: string;
  limit?: string[];
  steps: PhaseState[];
}

/** One row of `chops runs`. */
export interface RunSummary {
  id: string;
  /** Absent when the state file could not be read (see `unreadable`). */
  playbook?: string;
  cluster?: string;
  outcome?: RunOutcome;
  createdAt?: string;
  updatedAt?: string;
  /** updatedAt - createdAt. */
  durationMs?: number;
  /** First failed step, when there is one. */
  failed?: { phase: string; step: string; host: string; error?: string };
  error?: string;
  /** outcome is 'running' and its process is alive on this controller. */
  active?: boolean;
  /** outcome is 'running' but its process is gone from this controller (crashed, killed). */
  crashed?: boolean;
  /** Why the state file could not be read. */
  unreadable?: string;
}
