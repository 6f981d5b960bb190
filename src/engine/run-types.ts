// What a run is given and what it returns (src/engine/runner.ts re-exports these).
import type { Host, Inventory } from '../inventory/types.js';
import type { RunState } from '../run/state/model.js';
import type { RunStore } from '../run/state/store.js';
import type { CommandListener } from '../transport/types.js';
import type { Output } from './output.js';
import type { Phase, Playbook } from './playbook.js';
import type { Session } from './session.js';

export interface ExecuteOptions {
  playbook: Playbook;
  params: Record<string, unknown>;
  inventory: Inventory;
  selected: Host[];
  plan: boolean;
  output: Output;
  /** The playbook's phases for these parameters, when the caller has built them already. */
  phases?: Phase[];
  parallelShards: number;
  parallelHosts: number;
  /** Run mode: state to update (a fresh one, or a resumed one). */
  state?: RunState;
  store?: RunStore;
  /** Every command run/recorded, for the run log. */
  onCommand?: CommandListener;
  /** Connections already being opened for this run (Session.warm); otherwise the runner opens its own. */
  session?: Session;
}

export interface ExecuteResult {
  ok: boolean;
  /** What each step reported (notes, skip reasons), in the order they finished. */
  outcomes: Array<{ host: string; phase: string; step: string; note?: string; skipped?: string; failed?: string }>;
  error?: FailureInfo;
  results: Array<{ host: string; phase: string; step: string; data: unknown }>;
  session: Session;
  interrupted: boolean;
}

export interface FailureInfo {
  host: string;
  phase: string;
  step: string;
  error: unknown;
}
