// The backup agent's flow as data, for `chops graph` (issue 12) and for the README. Node ids are
// the agent's phase names (what it logs as "phase ID" and records in the status file); exit
// codes are its EX_* values. test/unit/backup-agent-flow.test.ts fails when this and the script
// (agent-body.ts) disagree.

export type FlowNodeKind = 'start' | 'step' | 'decision' | 'refusal' | 'end';

export interface FlowNode {
  id: string;
  label: string;
  kind: FlowNodeKind;
}

export interface FlowEdge {
  from: string;
  to: string;
  label?: string;
  /** The agent's exit code when the run ends along this edge. */
  exit?: number;
}

export const AGENT_EXIT_CODES = {
  EX_OK: 0,
  EX_USAGE: 2,
  EX_DISABLED: 3,
  EX_LOCKED: 4,
  EX_CREATE: 5,
  EX_UPLOAD: 6,
  EX_RETENTION: 7,
  EX_TOOL: 8,
  EX_TIMEOUT: 9,
  EX_LIST: 10,
  EX_SIGNAL: 11,
} as const;

export const AGENT_EXIT_MEANING: Record<number, string> = {
  0: 'backup created, uploaded and seen whole in the remote list; retention done',
  2: 'usage: unknown type or argument',
  3: 'disabled on this node (not the active replica of its shard)',
  4: 'node lock still busy after the bounded wait (another backup, or chops stopping the server)',
  5: 'create failed (e.g. no space left on device); partial backup and shadow/ removed',
  6: 'upload failed, or the upload is not a good backup in the remote list: never a base',
  7: 'retention failed (the new backup is good)',
  8: 'clickhouse-backup unusable: missing, unknown version, unreadable config',
  9: 'a clickhouse-backup command hit its deadline',
  10: 'the remote list could not be read or parsed: no DIFF base can be chosen safely',
  11: 'killed by TERM/INT/HUP (status records the phase)',
};

const E = AGENT_EXIT_CODES;

export const AGENT_FLOW: { nodes: FlowNode[]; edges: FlowEdge[] } = {
  nodes: [
    { id: 'start', label: 'start (full|diff)', kind: 'start' },
    { id: 'refuse-disabled', label: 'disabled on this node', kind: 'refusal' },
    { id: 'lock', label: 'take the node lock (flock, shared with chops)', kind: 'step' },
    { id: 'lock-busy', label: 'lock busy: wait (bounded)', kind: 'step' },
    { id: 'refuse-locked', label: 'still busy after the wait', kind: 'refusal' },
    { id: 'check', label: 'clickhouse-backup --version, config, list layout', kind: 'step' },
    { id: 'type', label: 'type?', kind: 'decision' },
    { id: 'choose-base', label: 'DIFF base = newest good backup in the remote list', kind: 'decision' },
    { id: 'no-base-full', label: 'no good base → FULL (warning)', kind: 'step' },
    { id: 'chain-full', label: 'chain too long or FULL too old → FULL', kind: 'step' },
    { id: 'create-full', label: 'create FULL', kind: 'step' },
    { id: 'create-diff', label: 'create DIFF', kind: 'step' },
    { id: 'upload', label: 'upload (--diff-from-remote BASE for a DIFF)', kind: 'step' },
    { id: 'verify', label: 'the remote list shows it whole', kind: 'decision' },
    { id: 'record-base', label: 'record as last good (a future base)', kind: 'step' },
    { id: 'retention', label: 'retention, keeping every base a kept backup needs', kind: 'step' },
    { id: 'write-error', label: 'write the error to the status file', kind: 'step' },
    { id: 'release', label: 'release the lock', kind: 'step' },
    { id: 'end', label: 'end', kind: 'end' },
  ],
  edges: [
    { from: 'start', to: 'refuse-disabled', label: 'not the active replica', exit: E.EX_DISABLED },
    { from: 'start', to: 'lock', label: 'enabled' },
    { from: 'lock', to: 'check', label: 'free' },
    { from: 'lock', to: 'lock-busy', label: 'busy' },
    { from: 'lock-busy', to: 'lock-busy', label: 'waiting (flock -w)' },
    { from: 'lock-busy', to: 'check', label: 'released in time' },
    { from: 'lock-busy', to: 'refuse-locked', label: 'deadline', exit: E.EX_LOCKED },
    { from: 'check', to: 'type', label: 'usable' },
    { from: 'check', to: 'write-error', label: 'no version / no config', exit: E.EX_TOOL },
    { from: 'type', to: 'create-full', label: 'full' },
    { from: 'type', to: 'choose-base', label: 'diff' },
    { from: 'choose-base', to: 'create-diff', label: 'good base' },
    { from: 'choose-base', to: 'no-base-full', label: 'none' },
    { from: 'choose-base', to: 'chain-full', label: 'chain ≥ max or FULL older than the interval' },
    { from: 'choose-base', to: 'write-error', label: 'list unreadable', exit: E.EX_LIST },
    { from: 'no-base-full', to: 'create-full' },
    { from: 'chain-full', to: 'create-full' },
    { from: 'create-full', to: 'upload', label: 'ok' },
    { from: 'create-diff', to: 'upload', label: 'ok' },
    { from: 'create-full', to: 'write-error', label: 'failed (leftovers removed)', exit: E.EX_CREATE },
    { from: 'create-diff', to: 'write-error', label: 'failed (leftovers removed)', exit: E.EX_CREATE },
    { from: 'create-full', to: 'write-error', label: 'deadline', exit: E.EX_TIMEOUT },
    { from: 'create-diff', to: 'write-error', label: 'deadline', exit: E.EX_TIMEOUT },
    { from: 'upload', to: 'verify', label: 'exit 0' },
    { from: 'upload', to: 'write-error', label: 'failed: never a base', exit: E.EX_UPLOAD },
    { from: 'upload', to: 'write-error', label: 'deadline', exit: E.EX_TIMEOUT },
    { from: 'verify', to: 'record-base', label: 'good' },
    { from: 'verify', to: 'write-error', label: 'missing or broken', exit: E.EX_UPLOAD },
    { from: 'record-base', to: 'retention' },
    { from: 'retention', to: 'release', label: 'ok', exit: E.EX_OK },
    { from: 'retention', to: 'write-error', label: 'delete failed', exit: E.EX_RETENTION },
    { from: 'write-error', to: 'release' },
    { from: 'release', to: 'end' },
  ],
};

/** Exit codes reachable only outside the graph's steps (usage before start, any signal). */
export const AGENT_EXITS_OUTSIDE_FLOW = [E.EX_USAGE, E.EX_SIGNAL] as const;
