// state.yml: the whole run state, written as JSON (which is YAML 1.2: `yaml` and any YAML tool
// read it) with the fields log pruning needs first, so that it can read a few hundred bytes of
// each past run instead of the whole file. Files written by older chops (block-style YAML from
// its own emitter) still load.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../errors.js';
import type { Redactor } from '../redact.js';
import { redactJson } from './json.js';
import type { RunOutcome, RunState, StepState } from './model.js';
import { checkRunState } from './schema.js';

/** The text of state.yml for STATE, errors, notes, data and memory redacted. */
export function serializeState(state: RunState, r?: Redactor): string {
  const red = <T>(v: T): T => (r && v !== undefined ? (redactJson(v, r) as T) : v);
  const doc = {
    // the head: what pruning reads (see readStateHead)
    version: state.version,
    id: state.id,
    outcome: state.outcome,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    pid: state.pid,
    controller: state.controller,
    journalEpoch: state.journalEpoch,
    // the rest, in any order
    playbook: state.playbook,
    cluster: state.cluster,
    inventory: state.inventory,
    inventoryHash: state.inventoryHash,
    paramsHash: state.paramsHash,
    params: state.params,
    ...(state.limit ? { limit: state.limit } : {}),
    ...(state.error !== undefined ? { error: red(state.error) } : {}),
    steps: r
      ? state.steps.map((ph) => ({
          ...ph,
          steps: ph.steps.map((st) => ({
            name: st.name,
            hosts: Object.fromEntries(Object.entries(st.hosts).map(([h, s]) => [h, redactStep(s, r)])),
          })),
        }))
      : state.steps,
    memory: red(state.memory),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** A step state as it goes to disk: its texts and data redacted. */
export function redactStep(s: StepState, r?: Redactor): StepState {
  if (!r || (s.error === undefined && s.note === undefined && s.data === undefined)) return s;
  return {
    ...s,
    ...(s.error !== undefined ? { error: r.redact(s.error) } : {}),
    ...(s.note !== undefined ? { note: r.redact(s.note) } : {}),
    ...(s.data !== undefined ? { data: redactJson(s.data, r) } : {}),
  };
}

/** Parse and check state.yml of run ID; a problem is a UsageError naming the file and the fix. */
export function parseStateFile(text: string, file: string, id: string): RunState {
  const bad = (why: string, cause?: unknown) =>
    new UsageError(`run state ${file} is corrupt: ${why}`, {
      hint: `inspect or restore the file; if the run is not needed any more, delete ${join(file, '..')} and start a new run with \`chops run\``,
      cause,
    });
  let doc: unknown;
  try {
    // JSON.parse is the fast path for what this chops writes; YAML for files of older chops.
    doc = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw bad((err as Error).message.split('\n')[0], err);
  }
  const st = checkRunState(doc);
  if (typeof st === 'string') throw bad(st);
  if (st.id !== id) throw bad(`id ${JSON.stringify(st.id)} does not match its directory ${id}`);
  return st;
}

export interface StateHead {
  outcome: RunOutcome;
  updatedAt: string;
  pid: number;
  controller: string;
  journalEpoch: number;
}

const HEAD_BYTES = 1024;

/**
 * The head of a state file (outcome, last update, owner, journal epoch) from its first bytes,
 * without reading the rest. Undefined when the file has no such head (written by an older
 * chops, or not by chops): read it whole then.
 */
export async function readStateHead(file: string): Promise<StateHead | undefined> {
  const fh = await fsp.open(file, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    text = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  const end = text.indexOf('\n  "playbook": ');
  if (!text.startsWith('{') || end < 0) return undefined;
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(`${text.slice(0, end).replace(/,$/, '')}\n}`);
  } catch {
    return undefined;
  }
  const ok =
    typeof h.outcome === 'string' &&
    typeof h.updatedAt === 'string' &&
    typeof h.pid === 'number' &&
    typeof h.controller === 'string' &&
    (h.journalEpoch === undefined || Number.isInteger(h.journalEpoch));
  if (!ok) return undefined;
  return {
    outcome: h.outcome as RunOutcome,
    updatedAt: h.updatedAt as string,
    pid: h.pid as number,
    controller: h.controller as string,
    journalEpoch: (h.journalEpoch as number | undefined) ?? 0,
  };
}
