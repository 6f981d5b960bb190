// The shape a state file must have to be resumed from, declared once and checked in one pass.
// A problem is reported with its path in the document (`steps[1].steps[0].hosts.h1.status`).
// Keys this chops does not know are let through: a newer chops may add some.
import { type RunState, RUN_OUTCOMES, STEP_SCOPES, STEP_STATUSES } from './model.js';

/** A check returns the problem (path: what was expected, what was found) or undefined. */
export type Check = (v: unknown, path: string) => string | undefined;

const found = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `${typeof v} ${String(v)}`;
};
const expect =
  (what: string, test: (v: unknown) => boolean): Check =>
  (v, path) =>
    test(v) ? undefined : `${path || 'the document'}: expected ${what}, found ${found(v)}`;
const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export const str = expect('a string', (v) => typeof v === 'string');
export const num = expect('a number', (v) => typeof v === 'number' && Number.isFinite(v));
export const int = expect('an integer', (v) => Number.isInteger(v));
export const bool = expect('true or false', (v) => typeof v === 'boolean');
export const anything: Check = () => undefined;
export const oneOf = (values: readonly unknown[]): Check => expect(`one of ${values.join(', ')}`, (v) => values.includes(v));
export const optional =
  (c: Check): Check =>
  (v, path) =>
    v === undefined ? undefined : c(v, path);

export function list(item: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) return expect('a list', () => false)(v, path);
    for (let i = 0; i < v.length; i++) {
      const p = item(v[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  };
}

/** A mapping with any keys, every value checked by VALUE. */
export function record(value: Check): Check {
  return (v, path) => {
    if (!isMap(v)) return expect('a mapping', () => false)(v, path);
    for (const [k, x] of Object.entries(v)) {
      const p = value(x, `${path}.${k}`);
      if (p) return p;
    }
    return undefined;
  };
}

/** A mapping with these fields (wrap a field's check in optional() when it may be absent). */
export function object(fields: Record<string, Check>): Check {
  return (v, path) => {
    if (!isMap(v)) return expect('a mapping', () => false)(v, path);
    for (const [k, c] of Object.entries(fields)) {
      const p = c(v[k], path ? `${path}.${k}` : k);
      if (p) return p;
    }
    return undefined;
  };
}

const stepState = object({
  status: oneOf(STEP_STATUSES),
  startedAt: optional(str),
  finishedAt: optional(str),
  durationMs: optional(num),
  changed: optional(bool),
  error: optional(str),
  note: optional(str),
  data: anything,
});

export const RUN_STATE: Check = object({
  version: oneOf([1]),
  id: str,
  playbook: str,
  params: record(anything),
  paramsHash: str,
  inventory: str,
  inventoryHash: str,
  cluster: str,
  limit: optional(list(str)),
  createdAt: str,
  updatedAt: str,
  pid: int,
  controller: str,
  outcome: oneOf(RUN_OUTCOMES),
  error: optional(str),
  journalEpoch: optional(int),
  steps: list(object({ phase: str, scope: oneOf(STEP_SCOPES), steps: list(object({ name: str, hosts: record(stepState) })) })),
  memory: record(record(anything)),
});

/**
 * Check a parsed state document; returns it typed, or the first problem. Fields older chops did
 * not write (params: null, no memory) are filled in first.
 */
export function checkRunState(doc: unknown): RunState | string {
  if (!isMap(doc)) return 'not a YAML mapping';
  if (doc.version !== 1) return `unsupported version ${JSON.stringify(doc.version)} (this chops reads version 1)`;
  if (doc.params == null) doc.params = {};
  if (doc.memory == null) doc.memory = {};
  return RUN_STATE(doc, '') ?? (doc as unknown as RunState);
}
