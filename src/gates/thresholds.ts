// Every health-gate threshold, declared once. From this table come: the inventory's `gates:`
// section (src/inventory/schema.ts), the GateSettings type, the gated playbooks' --flags
// (GATE_PARAMS in tasks/clickhouse/gate-params.ts), the per-run override (effectiveGates: flags
// over the inventory, never mutating it) and the README table (scripts/readme-gates.ts writes it;
// test/unit/thresholds.test.ts fails when they differ). Values are checked by the same functions
// whether they come from inventory.yml or a flag (src/inventory/values.ts). Durations are
// milliseconds everywhere inside the code.
//
// To add a threshold: add one entry here, run `node --import tsx scripts/readme-gates.ts`, and
// read `gates.<prop>` where a gate decides.
import { DURATION_RANGES, decimalInt, durationMs, type Checked, type DurationRange } from '../inventory/values.js';
import { durationText } from '../duration.js';

interface ThresholdSpec {
  /** Key in the inventory's `gates:` (snake_case). */
  readonly key: string;
  /** Property of GateSettings (camelCase; durations end in Ms). */
  readonly prop: string;
  /** Command-line flag of the gated playbooks (--FLAG). */
  readonly flag: string;
  /** duration: milliseconds; count: integer; switch: boolean. */
  readonly kind: 'duration' | 'count' | 'switch';
  /** As written in inventory.yml. */
  readonly default: string | number | boolean;
  /** Inclusive range (milliseconds for durations). */
  readonly range: DurationRange;
  /** What it bounds, for the README and --help. */
  readonly doc: string;
}

const COUNT = { min: 0, max: 1_000_000_000 };
const SWITCH = { min: 0, max: 1 };

export const THRESHOLDS = [
  {
    key: 'max_delay',
    prop: 'maxDelayMs',
    flag: 'max-delay',
    kind: 'duration',
    default: '10s',
    range: DURATION_RANGES.maxDelay,
    doc: 'replication delay (absolute_delay) allowed on peers and after start',
  },
  {
    key: 'max_queue_size',
    prop: 'maxQueueSize',
    flag: 'max-queue-size',
    kind: 'count',
    default: 20,
    range: COUNT,
    doc: 'replication queue entries per table allowed on peers and after start',
  },
  {
    key: 'max_inserts_in_queue',
    prop: 'maxInsertsInQueue',
    flag: 'max-inserts-in-queue',
    kind: 'count',
    default: 10,
    range: COUNT,
    doc: 'inserts (GET_PART) in queue per table allowed on peers and after start',
  },
  {
    key: 'max_log_lag',
    prop: 'maxLogLag',
    flag: 'max-log-lag',
    kind: 'count',
    default: 10,
    range: COUNT,
    doc: 'shared-log entries not yet pulled (log_max_index - log_pointer) allowed on peers and after start',
  },
  {
    key: 'min_replicated_tables',
    prop: 'minReplicatedTables',
    flag: 'min-replicated-tables',
    kind: 'count',
    default: 1,
    range: COUNT,
    doc: 'replicated tables a replica must show (0 for a host without any): zero rows from a user without grants is not "healthy"',
  },
  {
    key: 'caught_up_for',
    prop: 'caughtUpForMs',
    flag: 'caught-up-for',
    kind: 'duration',
    default: '2s',
    range: { min: 0, max: 600_000 },
    doc: 'after start: how long the replica must stay within the thresholds above to count as caught up',
  },
  {
    key: 'allow_mutations',
    prop: 'allowMutations',
    flag: 'allow-mutations',
    kind: 'switch',
    default: false,
    range: SWITCH,
    doc: 'stop a replica even with unfinished mutations',
  },
  {
    key: 'max_active_queries',
    prop: 'maxActiveQueries',
    flag: 'max-active-queries',
    kind: 'count',
    default: 1,
    range: COUNT,
    doc: "queries (not chops' own) allowed to run when a replica stops",
  },
  {
    key: 'wait_timeout',
    prop: 'waitTimeoutMs',
    flag: 'wait-timeout',
    kind: 'duration',
    default: '5m',
    range: DURATION_RANGES.waitTimeout,
    doc: 'deadline of every wait',
  },
  {
    key: 'poll_interval',
    prop: 'pollIntervalMs',
    flag: 'poll-interval',
    kind: 'duration',
    default: '500ms',
    range: DURATION_RANGES.pollInterval,
    doc: 'longest pause between two checks',
  },
] as const satisfies readonly ThresholdSpec[];

export type Threshold = (typeof THRESHOLDS)[number];

type ValueOf<K> = K extends 'switch' ? boolean : number;

/** Thresholds of the health gates on one host, as the gates read them (durations in ms). */
export type GateSettings = { -readonly [T in Threshold as T['prop']]: ValueOf<T['kind']> };

/** The check of T's value as written on the command line (the inventory uses the same functions). */
export function thresholdCheck(t: Threshold): ((written: string) => Checked<number | boolean>) | undefined {
  if (t.kind === 'duration') return (w) => durationMs(w, t.range);
  if (t.kind === 'count') return (w) => decimalInt(w, t.range.min, t.range.max);
  return undefined; // booleans: the flag parser's true/false
}

export function rangeText(t: Threshold): string {
  if (t.kind === 'switch') return 'true / false';
  const show = (n: number) => (t.kind === 'duration' ? (n === 0 ? '0' : durationText(n)) : n.toLocaleString('en-US'));
  return `${show(t.range.min)} – ${show(t.range.max)}`;
}

/**
 * The thresholds that hold on a host for this run: its inventory `gates:`, with each threshold
 * given as a flag in PARAMS (already parsed: ms, integers, booleans) taking its place. Pure: the
 * inventory is never changed, and a resumed run (same params in its state) computes the same.
 */
export function effectiveGates(inventoryGates: GateSettings, params: Record<string, unknown> | undefined): GateSettings {
  const out: Record<string, unknown> = { ...inventoryGates };
  for (const t of THRESHOLDS) {
    const v = params?.[t.flag];
    if (v !== undefined) out[t.prop] = t.kind === 'switch' ? Boolean(v) : Number(v);
  }
  return out as GateSettings;
}

/** The README's table of thresholds (between the gates-table markers). */
export function thresholdsMarkdown(): string {
  const rows = THRESHOLDS.map((t) => `| \`${t.key}\` | \`--${t.flag}\` | ${String(t.default)} | ${rangeText(t)} | ${t.doc} |`);
  return ['| `gates:` key | flag | default | range | what it bounds |', '|---|---|---|---|---|', ...rows].join('\n');
}

export const README_BEGIN = '<!-- gates-table:begin (generated from src/gates/thresholds.ts by scripts/readme-gates.ts) -->';
export const README_END = '<!-- gates-table:end -->';

/** README text with the generated table in its marked block (the block must exist). */
export function withThresholdsTable(readme: string): string {
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) throw new Error('README.md has no gates-table block (add the begin/end markers)');
  return `${readme.slice(0, a + README_BEGIN.length)}\n${thresholdsMarkdown()}\n${readme.slice(b)}`;
}
